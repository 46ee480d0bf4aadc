//! Training: the sweep over clustering methods and k, the training loop, checkpoints, metrics and
//! results tables.

pub mod augment;
pub mod cache_key;
pub mod checkpoint;
pub mod finetune;
pub mod plots;

pub mod run;
pub mod swa;
pub mod sweep;
pub mod trainer;
