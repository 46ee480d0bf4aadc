//! Patch-to-cluster Vision Transformer (PaCa-ViT style) for 8-class facial emotion recognition.
//!
//! Data flow: `[B, 36, in_dim]` per-patch features → linear tokens + learned positions
//! (+ optional class token) → `depth` pre-norm blocks whose attention takes queries from the
//! patch tokens and keys/values from per-image cluster centroids → pooling → 8 logits.

pub mod activation;
pub mod assignment;
pub mod attention;
pub mod block;
pub mod config;
pub mod embed;
pub mod error;
pub mod grouping;
pub mod io;
pub mod parallel;
pub mod tokens;
pub mod vit;

pub use assignment::{clustered_assignment, hard_assignment, identity_assignment};
pub use attention::{PatchAttention, PatchAttentionConfig};
pub use block::{Block, Mlp};
pub use config::{Assignment, AttentionKind, ModelConfig, Pooling};
pub use error::ModelError;
pub use grouping::{Grouping, ParseGroupingError};
pub use io::{CONFIG_FILE, META_FILE, MODEL_FILE, ModelMeta, load_config, load_model, save_model};
pub use parallel::{Shard, data_parallel_grads, split_batch};
pub use tokens::TokenEmbedding;
pub use vit::Vit;
