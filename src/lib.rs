//! paca-fer: real-time facial-emotion recognition with patch-to-cluster attention.
//!
//! Data flows one way: frame → face → patches → embeddings → clusters → logits → label.

pub mod cli;
pub mod config;
pub mod data;
pub mod labels;
pub mod patch;
pub mod train;
