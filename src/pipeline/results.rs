//! What a run produces — per-frame results, stage times, the run's summary — and the
//! [`FrameSink`] the runner hands each frame to. Shared by the runner and the outputs, so
//! neither imports the other.

use std::sync::Arc;

use anyhow::Result;
use image::RgbImage;
use serde::Serialize;

use crate::face::FaceBox;
use crate::labels::{Emotion, NUM_CLASSES};

/// Milliseconds spent per stage on one frame.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StageMs {
    /// A full face-detection pass (0 on frames between passes; with the asynchronous
    /// detector, the pass whose boxes the frame used).
    pub detect: f64,
    /// Re-detection of known faces in windows around them, on frames between full passes.
    pub redetect: f64,
    /// Cropping and resizing faces to 96×96.
    pub crop: f64,
    /// Patch embedding.
    pub embed: f64,
    /// Per-face clustering.
    pub cluster: f64,
    /// The ViT.
    pub model: f64,
}

impl StageMs {
    /// Sum of all stages: the frame's processing time without queueing.
    pub fn total(&self) -> f64 {
        self.detect + self.redetect + self.crop + self.embed + self.cluster + self.model
    }

    /// Adds `other` stage by stage.
    pub fn add(&mut self, other: &StageMs) {
        self.detect += other.detect;
        self.redetect += other.redetect;
        self.crop += other.crop;
        self.embed += other.embed;
        self.cluster += other.cluster;
        self.model += other.model;
    }
}

/// One face in a frame's result.
#[derive(Debug, Clone)]
pub struct FaceResult {
    /// Box in frame pixels.
    pub bbox: FaceBox,
    /// Smoothed probabilities.
    pub probs: [f32; NUM_CLASSES],
    /// Most probable class after smoothing.
    pub label: Emotion,
    /// Track id (stable across frames).
    pub track: u64,
    /// Cluster id per patch (empty for models without hard clusters).
    pub clusters: Vec<u32>,
}

/// A processed frame.
pub struct FrameResult {
    /// Index in input order (0-based; gaps are dropped frames).
    pub index: u64,
    /// Capture time since the start of the run, ms.
    pub t_ms: f64,
    /// The frame's stream timestamp, ms (video files and streams; `None` for other sources).
    pub pts_ms: Option<f64>,
    /// The frame.
    pub image: Arc<RgbImage>,
    /// Faces found and classified.
    pub faces: Vec<FaceResult>,
    /// Stage times.
    pub stages: StageMs,
    /// Capture to end of classification, ms (includes queueing).
    pub latency_ms: f64,
}

/// The run's state shown beside each frame (heads-up display, logs).
#[derive(Debug, Clone, Default)]
pub struct RunStatus {
    /// Output frames per second over the last second.
    pub fps: f64,
    /// Frames dropped so far to stay current.
    pub dropped: u64,
    /// A source fault or stall to show, if any.
    pub alert: Option<String>,
}

/// Where the runner hands each processed frame, on the calling thread (which owns the window).
pub trait FrameSink {
    /// Takes one processed frame; an error stops the run.
    fn emit(&mut self, frame: &FrameResult, status: &RunStatus) -> Result<()>;
    /// No new frame for a while: stay responsive and show why.
    fn idle(&mut self, alert: &str);
    /// True once the user asked to stop (closed the window).
    fn closed(&self) -> bool;
    /// The run is over: flush what is buffered.
    fn finish(&mut self) -> Result<()>;
}

/// Latency samples a run keeps for its percentiles.
pub const LATENCY_SAMPLES: usize = 65_536;

/// Adds the value of output frame number `seen` (0-based) to a reservoir of at most
/// [`LATENCY_SAMPLES`] (Vitter's algorithm R, with a SplitMix64 hash of `seen` as the draw, so
/// runs are repeatable and paired series keep the same frames).
pub fn keep_sample(samples: &mut Vec<f64>, seen: u64, value: f64) {
    if samples.len() < LATENCY_SAMPLES {
        samples.push(value);
        return;
    }
    let mut z = seen.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let j = (z % (seen + 1)) as usize;
    if j < LATENCY_SAMPLES {
        samples[j] = value;
    }
}

/// Totals of a finished run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    /// Frames read from the source.
    pub frames_in: u64,
    /// Frames that reached the outputs.
    pub frames_out: u64,
    /// Frames dropped to stay current (live sources).
    pub dropped: u64,
    /// Undecodable or empty frames skipped.
    pub skipped: u64,
    /// Source faults seen (each retried).
    pub faults: u64,
    /// Faces classified.
    pub faces: u64,
    /// Wall time of the run, s.
    pub seconds: f64,
    /// Output frames per second.
    pub fps: f64,
    /// End-to-end latency per output frame, ms (every frame up to [`LATENCY_SAMPLES`], then a
    /// uniform sample of that many, so endless runs keep bounded memory).
    #[serde(skip)]
    pub latencies: Vec<f64>,
    /// Processing time (sum of stages) per output frame, ms (sampled like `latencies`).
    #[serde(skip)]
    pub service: Vec<f64>,
    /// Summed stage times over output frames, ms.
    pub stage_totals: StageMs,
    /// Why the run ended early, if the source failed for good.
    pub source_error: Option<String>,
}

impl RunSummary {
    /// Counts one output frame.
    pub fn record(&mut self, r: &FrameResult) {
        let seen = self.frames_out;
        self.frames_out += 1;
        self.faces += r.faces.len() as u64;
        keep_sample(&mut self.latencies, seen, r.latency_ms);
        keep_sample(&mut self.service, seen, r.stages.total());
        self.stage_totals.add(&r.stages);
    }
}

/// The `q`-quantile of `v` (nearest rank; 0 for no values).
pub fn percentile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let i = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1;
    s[i]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.95), 95.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[7.0], 0.95), 7.0);
    }
}
