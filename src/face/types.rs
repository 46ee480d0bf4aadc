//! Plain data types of the face stage: detected boxes and detector settings.

use crate::face::FaceError;

/// One detected face, in original-frame pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceBox {
    /// Left edge (pixels from the frame's left border).
    pub x: f32,
    /// Top edge (pixels from the frame's top border).
    pub y: f32,
    /// Box width in pixels.
    pub w: f32,
    /// Box height in pixels.
    pub h: f32,
    /// Detector confidence in [0, 1] (heat-map peak value).
    pub score: f32,
    /// Five (x, y) points: left eye, right eye, nose, mouth left, mouth right (image left/right).
    pub landmarks: [[f32; 2]; 5],
}

impl FaceBox {
    /// Box area in square pixels (0 for degenerate boxes).
    pub fn area(&self) -> f32 {
        self.w.max(0.0) * self.h.max(0.0)
    }

    /// Box centre (x, y), used to place crops.
    pub fn center(&self) -> (f32, f32) {
        (self.x + 0.5 * self.w, self.y + 0.5 * self.h)
    }

    /// Intersection over union with another box, for NMS and evaluation.
    pub fn iou(&self, other: &FaceBox) -> f32 {
        let ix = (self.x + self.w).min(other.x + other.w) - self.x.max(other.x);
        let iy = (self.y + self.h).min(other.y + other.h) - self.y.max(other.y);
        if ix <= 0.0 || iy <= 0.0 {
            return 0.0;
        }
        let inter = ix * iy;
        let union = self.area() + other.area() - inter;
        if union > 0.0 { inter / union } else { 0.0 }
    }

    /// True when the point (px, py) lies inside the box (borders included).
    pub fn contains(&self, px: f32, py: f32) -> bool {
        px >= self.x && px <= self.x + self.w && py >= self.y && py <= self.y + self.h
    }
}

/// Settings of [`FaceDetector`](crate::face::FaceDetector).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorConfig {
    /// Network input width in pixels; frames are resized to it (rounded to a multiple of 32),
    /// height follows the frame's aspect ratio. Smaller is faster but misses small faces.
    pub width: u32,
    /// Minimum heat-map score for a detection, in (0, 1).
    pub threshold: f32,
    /// IoU above which the lower-scored of two overlapping detections is dropped.
    pub nms_iou: f32,
    /// Network width of a re-detection window around a known face
    /// ([`FaceDetector::detect_near`](crate::face::FaceDetector::detect_near)).
    pub roi_width: u32,
}

impl Default for DetectorConfig {
    /// Width 320, threshold 0.5, NMS IoU 0.3 (CenterFace's published defaults for the last two),
    /// re-detection windows at 128 px (a face fills half of it: 64 px, well inside the sizes
    /// CenterFace finds).
    fn default() -> Self {
        Self {
            width: 320,
            threshold: 0.5,
            nms_iou: 0.3,
            roi_width: 128,
        }
    }
}

impl DetectorConfig {
    /// Largest accepted network width: beyond it the CPU cost explodes for no webcam benefit.
    pub const MAX_WIDTH: u32 = 4096;

    /// Checks every field's range, so a bad config fails at load time instead of mid-stream.
    pub fn validate(&self) -> Result<(), FaceError> {
        if self.width < 32 || self.width > Self::MAX_WIDTH {
            return Err(FaceError::Config(format!(
                "width {} outside 32..={}",
                self.width,
                Self::MAX_WIDTH
            )));
        }
        if self.roi_width < 32 || self.roi_width > Self::MAX_WIDTH {
            return Err(FaceError::Config(format!(
                "roi_width {} outside 32..={}",
                self.roi_width,
                Self::MAX_WIDTH
            )));
        }
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return Err(FaceError::Config(format!(
                "threshold {} outside (0, 1)",
                self.threshold
            )));
        }
        if !(self.nms_iou > 0.0 && self.nms_iou <= 1.0) {
            return Err(FaceError::Config(format!(
                "nms_iou {} outside (0, 1]",
                self.nms_iou
            )));
        }
        Ok(())
    }
}
