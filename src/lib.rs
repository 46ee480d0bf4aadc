//! paca-fer: real-time facial-emotion recognition with patch-to-cluster attention.
//!
//! Data flows one way: frame → face → patches → embeddings → clusters → logits → label.

pub mod assets;
pub mod backend;
pub mod classify;
pub mod cluster;
pub mod config;
pub mod data;
pub mod face;
pub mod files;
pub mod labels;
pub mod metrics;
pub mod model;
pub mod npy;
pub mod patch;
pub mod pipeline;
pub mod progress;
pub mod select;
#[cfg(test)]
mod shared_data;
pub mod sweep_results;
pub mod train;
pub mod zoo;
