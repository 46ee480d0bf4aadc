//! Errors of the face detection stage.

use std::path::PathBuf;

/// What the detector expects to find in its model file; quoted by the load errors.
pub const MODEL_EXPECTED: &str = "the CenterFace ONNX model (input `input.1` [N,3,H,W]; outputs \
     heat-map [N,1,H/4,W/4], scale [N,2,H/4,W/4], offset [N,2,H/4,W/4], landmarks [N,10,H/4,W/4])";

/// Everything that can go wrong while loading or running the face detector.
#[derive(Debug, thiserror::Error)]
pub enum FaceError {
    /// The model file does not exist or cannot be read.
    #[error("face model file `{path}` could not be read ({source}); expected {MODEL_EXPECTED}")]
    ModelRead {
        /// Path that was tried.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// The model file exists but is not a usable CenterFace ONNX model.
    #[error("face model file `{path}` is not usable: {reason}; expected {MODEL_EXPECTED}")]
    ModelInvalid {
        /// Path of the rejected file.
        path: PathBuf,
        /// Why it was rejected.
        reason: String,
    },
    /// A [`DetectorConfig`](crate::face::DetectorConfig) field is out of range.
    #[error("invalid face detector config: {0}")]
    Config(String),
    /// The network failed at run time (should not happen with a valid model).
    #[error("face detector inference failed: {0}")]
    Inference(String),
}
