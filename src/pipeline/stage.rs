//! The two model stages the runtime drives, as traits: face detection and face classification.
//! The real ones are [`FaceDetector`] and [`Classifier`] on any burn backend; tests put in
//! stand-ins (a failing classifier, say) to exercise the runner itself.

use anyhow::Result;
use burn::tensor::backend::Backend;
use image::RgbImage;

use crate::classify::{Classifier, Prediction, StageTimes};
use crate::face::{FaceBox, FaceDetector};

/// Finds the faces in a frame.
pub trait DetectFaces: Sync {
    /// Boxes (with landmarks) of the faces in `frame`.
    fn detect_faces(&self, frame: &RgbImage) -> Result<Vec<FaceBox>>;

    /// Boxes of the faces `priors` (from a recent frame) found again in `frame`, looking only
    /// near each; by default a full [`detect_faces`](Self::detect_faces).
    fn redetect_faces(&self, frame: &RgbImage, priors: &[FaceBox]) -> Result<Vec<FaceBox>> {
        let _ = priors;
        self.detect_faces(frame)
    }
}

/// Classifies cropped 96×96 faces.
pub trait ClassifyFaces: Sync {
    /// One prediction per face, and the time each inner stage took.
    fn classify_faces(&self, faces: &[RgbImage]) -> Result<(Vec<Prediction>, StageTimes)>;
}

impl<B: Backend> DetectFaces for FaceDetector<B>
where
    FaceDetector<B>: Sync,
{
    fn detect_faces(&self, frame: &RgbImage) -> Result<Vec<FaceBox>> {
        Ok(self.detect(frame)?)
    }

    fn redetect_faces(&self, frame: &RgbImage, priors: &[FaceBox]) -> Result<Vec<FaceBox>> {
        Ok(self.detect_near(frame, priors)?)
    }
}

impl<B: Backend> ClassifyFaces for Classifier<B>
where
    Classifier<B>: Sync,
{
    fn classify_faces(&self, faces: &[RgbImage]) -> Result<(Vec<Prediction>, StageTimes)> {
        self.classify_timed(faces)
    }
}
