//! The live runtime: frames from a source → face detection and crop → classification and
//! smoothing → overlay, JSONL and PNG outputs, in threads joined by bounded channels.
//!
//! Live sources (cameras) use lossy lanes that drop the oldest frame instead of queueing, so
//! what is shown is always current; recorded inputs use blocking lanes so every frame is
//! processed, in order, and the JSONL output is reproducible.

#[cfg(feature = "camera")]
pub mod camera;
mod capture;
pub mod channel;
pub mod frames;
#[cfg(feature = "gstreamer")]
pub mod gst;
pub mod output;
pub mod overlay;
pub mod results;
mod runner;
pub mod source;
pub mod stage;
pub mod track;
#[cfg(feature = "window")]
pub mod window;

pub use capture::RetryPolicy;
pub use results::{FaceResult, FrameResult, FrameSink, RunStatus, RunSummary, StageMs};
pub use runner::{RunOptions, run_pipeline};
pub use stage::{ClassifyFaces, DetectFaces};
