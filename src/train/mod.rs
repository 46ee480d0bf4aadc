//! Training: the sweep over clustering methods and k, metrics, and results tables.

pub mod metrics;
pub mod sweep;
