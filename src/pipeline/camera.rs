//! Live frames from a camera through nokhwa (V4L2 on Linux, AVFoundation on macOS).

use image::RgbImage;
use nokhwa::Camera;
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{ApiBackend, CameraIndex, RequestedFormat, RequestedFormatType};

use super::source::{FrameSource, SourceError, SourceOpener};

/// Hint appended to every "no camera" error.
const NO_CAMERA_HINT: &str = "no usable camera; list cameras with `paca-fer run --list-cameras`, or play recorded frames with --input PATH (an image, a folder of frames or a .gif)";

/// One camera, streaming at its highest frame rate, frames decoded to RGB.
pub struct CameraFrames {
    camera: Camera,
    index: u32,
}

impl CameraFrames {
    /// Opens camera `index` and starts its stream.
    pub fn open(index: u32) -> Result<Self, SourceError> {
        let format = RequestedFormat::new::<RgbFormat>(RequestedFormatType::AbsoluteHighestFrameRate);
        let mut camera = Camera::new(CameraIndex::Index(index), format)
            .map_err(|e| SourceError::Gone(format!("camera {index}: {e} ({NO_CAMERA_HINT})")))?;
        camera
            .open_stream()
            .map_err(|e| SourceError::Gone(format!("camera {index}: cannot start the stream: {e}")))?;
        Ok(Self { camera, index })
    }
}

impl FrameSource for CameraFrames {
    fn next_frame(&mut self) -> Result<Option<RgbImage>, SourceError> {
        let buffer = self
            .camera
            .frame()
            .map_err(|e| SourceError::Transient(format!("camera {}: read failed: {e}", self.index)))?;
        buffer
            .decode_image::<RgbFormat>()
            .map(Some)
            .map_err(|e| SourceError::Transient(format!("camera {}: undecodable frame: {e}", self.index)))
    }

    fn is_live(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!("camera {} ({})", self.index, self.camera.info().human_name())
    }
}

impl Drop for CameraFrames {
    fn drop(&mut self) {
        let _ = self.camera.stop_stream();
    }
}

/// Opener for camera `index`, run on the capture thread.
pub fn camera_opener(index: u32) -> SourceOpener {
    Box::new(move || Ok(Box::new(CameraFrames::open(index)?) as Box<dyn FrameSource>))
}

/// "index: name (description)" for every camera the platform reports.
pub fn list_cameras() -> Result<Vec<String>, String> {
    let infos = nokhwa::query(ApiBackend::Auto).map_err(|e| format!("cannot list cameras: {e}"))?;
    Ok(infos
        .iter()
        .map(|i| format!("{}: {} ({})", i.index(), i.human_name(), i.description()))
        .collect())
}
