//! Error type shared by configuration checks, input checks and checkpoint I/O.

use std::path::PathBuf;

/// Everything that can go wrong when building, feeding, saving or loading the model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The configuration is internally inconsistent (e.g. `d_model` not divisible by `heads`).
    #[error("invalid model config: {0}")]
    InvalidConfig(String),
    /// An input tensor or label slice does not have the shape the model expects.
    #[error("invalid model input: {0}")]
    InvalidInput(String),
    /// A checkpoint file does not exist.
    #[error("missing checkpoint file {}", path.display())]
    MissingFile {
        /// The file that was looked for.
        path: PathBuf,
    },
    /// A checkpoint file exists but could not be read, parsed or decoded (e.g. truncated).
    #[error("corrupt or unreadable checkpoint file {}: {reason}", path.display())]
    CorruptFile {
        /// The offending file.
        path: PathBuf,
        /// What the decoder reported.
        reason: String,
    },
    /// The weights in a checkpoint file do not fit the architecture its config describes.
    #[error("checkpoint {} does not match its config: {reason}", path.display())]
    ShapeMismatch {
        /// The weights file.
        path: PathBuf,
        /// The first mismatch found.
        reason: String,
    },
    /// Writing a checkpoint failed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
}
