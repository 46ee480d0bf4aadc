//! The public face detector: frame in, scored face boxes with landmarks out.

use std::path::Path;

use burn::prelude::Backend;
use image::RgbImage;

use crate::face::engine::Engine;
use crate::face::roi::{Window, continuation};
use crate::face::{DetectorConfig, FaceBox, FaceError, InputGeometry, decode, nms, to_planar_rgb};

/// Where the project ships the CenterFace model, relative to the project root.
pub const DEFAULT_MODEL_PATH: &str = "models/face/centerface.onnx";

/// burn backend used by [`FaceDetector::load`]: [`crate::backend::DetectCpu`] (burn-flex with the
/// `flex` feature, else burn-ndarray); pick another backend (CUDA) with [`FaceDetector::load_on`].
pub type DefaultBackend = crate::backend::DetectCpu;

/// CenterFace face detector on burn backend `B`, with its configuration.
#[derive(Debug)]
pub struct FaceDetector<B: Backend = DefaultBackend> {
    engine: Engine<B>,
    cfg: DetectorConfig,
}

impl FaceDetector<DefaultBackend> {
    /// Loads the CenterFace ONNX model from `path` on the default CPU backend; fails with an
    /// error naming the file (missing, unreadable or not the expected model) or the bad field.
    pub fn load(path: &Path, cfg: DetectorConfig) -> Result<Self, FaceError> {
        Self::load_on(path, cfg, &Default::default())
    }

    /// Loads the shipped CenterFace model ([`DEFAULT_MODEL_PATH`]) with settings `cfg`.
    pub fn load_shipped(cfg: DetectorConfig) -> Result<Self, FaceError> {
        Self::load(&crate::assets::locate(Path::new(DEFAULT_MODEL_PATH)), cfg)
    }
}

impl<B: Backend> FaceDetector<B> {
    /// Like [`FaceDetector::load_shipped`], on burn backend `B` and `device` (e.g. CUDA).
    pub fn load_shipped_on(cfg: DetectorConfig, device: &B::Device) -> Result<Self, FaceError> {
        Self::load_on(&crate::assets::locate(Path::new(DEFAULT_MODEL_PATH)), cfg, device)
    }

    /// Like [`FaceDetector::load`], on burn backend `B` and `device` (e.g. CUDA).
    pub fn load_on(path: &Path, cfg: DetectorConfig, device: &B::Device) -> Result<Self, FaceError> {
        cfg.validate()?;
        let bytes = std::fs::read(path).map_err(|source| FaceError::ModelRead {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |reason: String| FaceError::ModelInvalid {
            path: path.to_path_buf(),
            reason,
        };
        let engine = Engine::from_bytes(&bytes, device).map_err(invalid)?;
        log::debug!(
            "face detector: CenterFace loaded from {}, {cfg:?}",
            path.display()
        );
        let det = Self { engine, cfg };
        // One run proves the graph and the weights work together.
        det.detect(&RgbImage::new(64, 64))
            .map_err(|e| invalid(format!("test inference failed: {e}")))?;
        Ok(det)
    }

    /// The configuration this detector was loaded with.
    pub fn config(&self) -> &DetectorConfig {
        &self.cfg
    }

    /// Detects faces in `frame`; boxes and landmarks are in `frame` pixels, sorted by
    /// descending score, overlapping duplicates removed. An empty frame gives no faces.
    pub fn detect(&self, frame: &RgbImage) -> Result<Vec<FaceBox>, FaceError> {
        self.detect_at(frame, self.cfg.width)
    }

    /// Re-detects the faces `priors` (boxes from a recent frame) in `frame`, each in its
    /// [`Window`] at network width [`DetectorConfig::roi_width`]: a face that moved a little is
    /// found again at a fraction of a full pass's cost. A face not found near its prior is left
    /// out; faces that were not in `priors` are not looked for.
    pub fn detect_near(&self, frame: &RgbImage, priors: &[FaceBox]) -> Result<Vec<FaceBox>, FaceError> {
        let (fw, fh) = frame.dimensions();
        let mut found = Vec::with_capacity(priors.len());
        for prior in priors {
            let Some(win) = Window::around(prior, fw, fh) else {
                continue;
            };
            let view = image::imageops::crop_imm(frame, win.x, win.y, win.w, win.h).to_image();
            let boxes = self.detect_at(&view, self.cfg.roi_width)?;
            if let Some(b) = continuation(prior, boxes.into_iter().map(|b| win.to_frame(b))) {
                found.push(b);
            }
        }
        // Two priors on one face (or neighbours whose windows overlap) find it twice.
        Ok(nms(found, self.cfg.nms_iou))
    }

    /// One full pass over `frame` at network width `width`.
    fn detect_at(&self, frame: &RgbImage, width: u32) -> Result<Vec<FaceBox>, FaceError> {
        let (fw, fh) = frame.dimensions();
        if fw == 0 || fh == 0 {
            return Ok(Vec::new());
        }
        let geom = InputGeometry::new(fw, fh, width);
        let input = to_planar_rgb(frame, &geom);
        let out = self
            .engine
            .run(input, geom.net_w as usize, geom.net_h as usize)
            .map_err(FaceError::Inference)?;
        let maps = out.maps();
        maps.check().map_err(FaceError::Inference)?;
        let boxes = decode(&maps, &geom, self.cfg.threshold);
        Ok(nms(boxes, self.cfg.nms_iou))
    }
}
