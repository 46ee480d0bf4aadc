//! The four pipeline threads and their wiring.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use image::RgbImage;
use serde::Serialize;

use super::channel::{Lane, lane};
use super::output::Outputs;
use super::source::{SourceError, SourceOpener};
use super::track::{TrackConfig, Tracker};
use crate::backend::Cpu;
use crate::classify::Classifier;
use crate::face::{DEFAULT_MARGIN, FACE_SIZE, FaceBox, FaceDetector, crop_face};
use crate::labels::{Emotion, NUM_CLASSES};

/// Retry behaviour when a live source faults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// First back-off after a fault.
    pub initial: Duration,
    /// Longest back-off.
    pub max: Duration,
    /// A source failing (or stalled) for this long is gone for good.
    pub give_up: Duration,
}

impl Default for RetryPolicy {
    /// 50 ms doubling to 2 s; give up after 10 s without a good frame.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(50),
            max: Duration::from_secs(2),
            give_up: Duration::from_secs(10),
        }
    }
}

/// Everything the runtime needs besides the source and the models.
pub struct RunOptions {
    /// Run the detector on every n-th frame (1 = all); other frames reuse the last boxes.
    pub detect_every: u32,
    /// Run the detector on its own thread on the newest frame, and crop every frame with the
    /// latest boxes (keeps detection off the per-frame path; outputs depend on timing).
    pub detect_async: bool,
    /// Level the eyes when cropping.
    pub align: bool,
    /// Temporal smoothing.
    pub track: TrackConfig,
    /// Fault handling of live sources.
    pub retry: RetryPolicy,
    /// Stop after this many frames.
    pub max_frames: Option<u64>,
    /// Set to stop the run (Ctrl-C, window closed).
    pub stop: Arc<AtomicBool>,
    /// Queue length between stages.
    pub lane_capacity: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            detect_every: 1,
            detect_async: false,
            align: true,
            track: TrackConfig::default(),
            retry: RetryPolicy::default(),
            max_frames: None,
            stop: Arc::new(AtomicBool::new(false)),
            lane_capacity: 2,
        }
    }
}

/// Milliseconds spent per stage on one frame.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StageMs {
    /// Face detection (0 on frames that reuse boxes).
    pub detect: f64,
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
        self.detect + self.crop + self.embed + self.cluster + self.model
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
    /// The frame.
    pub image: Arc<RgbImage>,
    /// Faces found and classified.
    pub faces: Vec<FaceResult>,
    /// Stage times.
    pub stages: StageMs,
    /// Capture to end of classification, ms (includes queueing).
    pub latency_ms: f64,
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

struct Captured {
    index: u64,
    t: Instant,
    image: Arc<RgbImage>,
}

struct Cropped {
    cap: Captured,
    boxes: Vec<FaceBox>,
    crops: Vec<RgbImage>,
    stages: StageMs,
}

/// Counters shared by the stages.
#[derive(Default)]
struct Shared {
    frames_in: AtomicU64,
    skipped: AtomicU64,
    faults: AtomicU64,
    alert: Mutex<Option<String>>,
}

impl Shared {
    fn set_alert(&self, a: Option<String>) {
        if let Ok(mut g) = self.alert.lock() {
            *g = a;
        }
    }
}

/// What the capture thread needs (it is not scoped: a stalled source must not block exit).
struct CaptureCfg {
    stop: Arc<AtomicBool>,
    retry: RetryPolicy,
    max_frames: Option<u64>,
}

/// Reads frames until the end, a stop, or the source is gone for good (returned as the error).
fn capture(
    opener: SourceOpener,
    tx: Lane<Captured>,
    opts: CaptureCfg,
    shared: Arc<Shared>,
) -> Result<(), String> {
    let mut src = opener().map_err(|e| e.to_string())?;
    let live = src.is_live();
    log::info!("source: {}", src.describe());
    let mut backoff = opts.retry.initial;
    let mut failing_since: Option<Instant> = None;
    let mut size: Option<(u32, u32)> = None;
    let mut index = 0u64;
    while !opts.stop.load(Ordering::Relaxed) && opts.max_frames.is_none_or(|m| index < m) {
        let fault = match src.next_frame() {
            Ok(None) => break,
            Ok(Some(img)) if img.width() == 0 || img.height() == 0 => {
                Some(format!("{}: empty frame", src.describe()))
            }
            Ok(Some(img)) => {
                if size.is_some_and(|s| s != img.dimensions()) {
                    log::warn!(
                        "{}: frame size changed from {:?} to {:?}",
                        src.describe(),
                        size.unwrap_or_default(),
                        img.dimensions()
                    );
                }
                size = Some(img.dimensions());
                if failing_since.take().is_some() {
                    log::info!("{}: recovered", src.describe());
                    shared.set_alert(None);
                }
                backoff = opts.retry.initial;
                shared.frames_in.fetch_add(1, Ordering::Relaxed);
                let c = Captured {
                    index,
                    t: Instant::now(),
                    image: Arc::new(img),
                };
                index += 1;
                if tx.send(c).is_err() {
                    break;
                }
                None
            }
            Err(SourceError::Transient(m)) => Some(m),
            Err(SourceError::Gone(m)) => return Err(m),
        };
        if let Some(msg) = fault {
            shared.faults.fetch_add(1, Ordering::Relaxed);
            if !live {
                // A bad file in a recording: skip it and go on.
                log::warn!("skipping frame: {msg}");
                shared.skipped.fetch_add(1, Ordering::Relaxed);
                index += 1;
                continue;
            }
            let since = *failing_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= opts.retry.give_up {
                return Err(format!(
                    "{msg}; no good frame for {:.0} s, giving up",
                    since.elapsed().as_secs_f64()
                ));
            }
            log::warn!("{msg}; retrying in {} ms", backoff.as_millis());
            shared.set_alert(Some(format!("source fault, retrying: {msg}")));
            sleep_unless_stopped(backoff, &opts.stop);
            backoff = (backoff * 2).min(opts.retry.max);
        }
    }
    Ok(())
}

/// The next item, or `None` once the sender is gone or a stop was requested.
fn recv_or_stop<T>(rx: &Receiver<T>, stop: &AtomicBool) -> Option<T> {
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(v) => return Some(v),
            Err(RecvTimeoutError::Disconnected) => return None,
            Err(RecvTimeoutError::Timeout) if stop.load(Ordering::Relaxed) => return None,
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let end = Instant::now() + d;
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(10).min(end - Instant::now()));
    }
}

/// Latest detection published by the asynchronous detector.
type LatestBoxes = Arc<Mutex<(Vec<FaceBox>, f64)>>;

/// Detects (every n-th frame, or via the async detector) and crops faces.
fn detect_and_crop(
    detector: &FaceDetector<Cpu>,
    rx: Receiver<Captured>,
    tx: Lane<Cropped>,
    opts: &RunOptions,
    async_lane: Option<(Lane<Arc<RgbImage>>, LatestBoxes)>,
) -> Result<()> {
    let pool = stage_pool("detect")?;
    let mut last: Vec<FaceBox> = vec![];
    let every = opts.detect_every.max(1) as u64;
    let mut n = 0u64;
    while let Some(cap) = recv_or_stop(&rx, &opts.stop) {
        let mut stages = StageMs::default();
        match &async_lane {
            Some((to_detector, latest)) => {
                let _ = to_detector.send(Arc::clone(&cap.image));
                if let Ok(g) = latest.lock() {
                    last = g.0.clone();
                }
            }
            None if n.is_multiple_of(every) => {
                let t = Instant::now();
                last = pool.install(|| detector.detect(&cap.image))?;
                stages.detect = ms(t);
            }
            None => {}
        }
        n += 1;
        let t = Instant::now();
        let crops = last
            .iter()
            .map(|b| crop_face(&cap.image, b, DEFAULT_MARGIN, opts.align, FACE_SIZE))
            .collect();
        stages.crop = ms(t);
        if tx
            .send(Cropped {
                cap,
                boxes: last.clone(),
                crops,
                stages,
            })
            .is_err()
        {
            break;
        }
    }
    Ok(())
}

/// A one-thread rayon pool for one stage: burn-ndarray parallelises inside each op with rayon,
/// and stages sharing the global pool would queue behind each other's work; one core per
/// stage keeps each stage's latency steady.
fn stage_pool(name: &str) -> Result<rayon::ThreadPool> {
    let thread = format!("{name}-pool");
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .thread_name(move |_| thread.clone())
        .build()
        .map_err(|e| anyhow!("cannot start the {name} thread pool: {e}"))
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Classifies the crops and smooths each face's probabilities over time.
fn classify(
    clf: &Classifier<Cpu>,
    rx: Receiver<Cropped>,
    tx: Lane<FrameResult>,
    opts: &RunOptions,
    start: Instant,
) -> Result<()> {
    let pool = stage_pool("classify")?;
    let mut tracker = Tracker::new(opts.track);
    while let Some(c) = recv_or_stop(&rx, &opts.stop) {
        let (preds, times) = pool.install(|| clf.classify_timed(&c.crops))?;
        let mut stages = c.stages;
        stages.embed = times.embed;
        stages.cluster = times.cluster;
        stages.model = times.model;
        let raw: Vec<(FaceBox, [f32; NUM_CLASSES])> =
            c.boxes.iter().zip(&preds).map(|(b, p)| (*b, p.probs)).collect();
        let smoothed = tracker.update(&raw);
        let faces = c
            .boxes
            .iter()
            .zip(preds)
            .zip(smoothed)
            .map(|((b, p), s)| FaceResult {
                bbox: *b,
                probs: s.probs,
                label: Emotion::ALL[crate::labels::argmax(&s.probs)],
                track: s.track,
                clusters: p.clusters,
            })
            .collect();
        let r = FrameResult {
            index: c.cap.index,
            t_ms: (c.cap.t - start).as_secs_f64() * 1e3,
            latency_ms: ms(c.cap.t),
            image: c.cap.image,
            faces,
            stages,
        };
        if tx.send(r).is_err() {
            break;
        }
    }
    Ok(())
}

/// Runs the pipeline to the end of the input (or a stop), handing each result to `outputs` on
/// the calling thread (which owns the window, if any). A source gone for good ends the run with
/// `source_error` set; model or I/O failures are errors.
pub fn run_pipeline(
    opener: SourceOpener,
    live: bool,
    detector: FaceDetector<Cpu>,
    classifier: Classifier<Cpu>,
    opts: RunOptions,
    outputs: &mut Outputs,
) -> Result<RunSummary> {
    let start = Instant::now();
    let shared = Arc::new(Shared::default());
    let (cap_tx, cap_rx) = lane::<Captured>(opts.lane_capacity, live);
    let (crop_tx, crop_rx) = lane::<Cropped>(opts.lane_capacity, live);
    let (res_tx, res_rx) = lane::<FrameResult>(opts.lane_capacity, live);
    let drops = [
        cap_tx.drop_counter(),
        crop_tx.drop_counter(),
        res_tx.drop_counter(),
    ];
    let detector = Arc::new(detector);
    let latest: LatestBoxes = Arc::new(Mutex::new((vec![], 0.0)));
    let mut summary = RunSummary::default();

    let cap = {
        let cfg = CaptureCfg {
            stop: Arc::clone(&opts.stop),
            retry: opts.retry,
            max_frames: opts.max_frames,
        };
        let shared = Arc::clone(&shared);
        thread::Builder::new()
            .name("capture".into())
            .spawn(move || capture(opener, cap_tx, cfg, shared))?
    };
    let outcome: Result<Result<(), String>> = thread::scope(|s| {
        let shared = &shared;
        let opts = &opts;
        let async_lane = if opts.detect_async {
            let (tx, rx) = lane::<Arc<RgbImage>>(1, true);
            let det = Arc::clone(&detector);
            let published = Arc::clone(&latest);
            let stop = &opts.stop;
            let pool = stage_pool("detector")?;
            s.spawn(move || {
                for img in rx.iter() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let t = Instant::now();
                    match pool.install(|| det.detect(&img)) {
                        Ok(b) => {
                            if let Ok(mut g) = published.lock() {
                                *g = (b, ms(t));
                            }
                        }
                        Err(e) => log::error!("face detection failed: {e}"),
                    }
                }
            });
            Some((tx, Arc::clone(&latest)))
        } else {
            None
        };
        let det = {
            let detector = Arc::clone(&detector);
            s.spawn(move || detect_and_crop(&detector, cap_rx, crop_tx, opts, async_lane))
        };
        let clf = s.spawn(move || classify(&classifier, crop_rx, res_tx, opts, start));

        let mut fps = Fps::default();
        let mut last_frame = Instant::now();
        let mut out_err: Option<anyhow::Error> = None;
        loop {
            match res_rx.recv_timeout(Duration::from_millis(100)) {
                Ok(r) => {
                    last_frame = Instant::now();
                    let seen = summary.frames_out;
                    summary.frames_out += 1;
                    summary.faces += r.faces.len() as u64;
                    keep_sample(&mut summary.latencies, seen, r.latency_ms);
                    keep_sample(&mut summary.service, seen, r.stages.total());
                    add(&mut summary.stage_totals, &r.stages);
                    let dropped: u64 = drops.iter().map(|d| d.load(Ordering::Relaxed)).sum();
                    let alert = shared.alert.lock().ok().and_then(|g| g.clone());
                    if out_err.is_none()
                        && !opts.stop.load(Ordering::Relaxed)
                        && let Err(e) = outputs.emit(&r, fps.tick(), dropped, alert)
                    {
                        opts.stop.store(true, Ordering::Relaxed);
                        out_err = Some(e);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let idle = last_frame.elapsed();
                    if idle > Duration::from_secs(1) && !opts.stop.load(Ordering::Relaxed) {
                        let msg = format!("no frames for {:.0} s", idle.as_secs_f64());
                        if live && idle > opts.retry.give_up {
                            log::error!("source stalled: {msg}");
                            shared.set_alert(Some(msg.clone()));
                            opts.stop.store(true, Ordering::Relaxed);
                            return Ok(Err(format!("source stalled ({msg})")));
                        }
                        let alert = shared.alert.lock().ok().and_then(|g| g.clone()).unwrap_or(msg);
                        outputs.idle(&alert);
                    }
                    if outputs.closed() {
                        opts.stop.store(true, Ordering::Relaxed);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if outputs.closed() {
                opts.stop.store(true, Ordering::Relaxed);
            }
        }
        det.join().map_err(|_| anyhow!("detection thread panicked"))??;
        clf.join()
            .map_err(|_| anyhow!("classification thread panicked"))??;
        opts.stop.store(true, Ordering::Relaxed); // ends the async detector
        if let Some(e) = out_err {
            return Err(e);
        }
        Ok(Ok(()))
    });
    let outcome = match outcome {
        // A stalled source may never return from its read: leave its thread behind.
        Ok(Err(stalled)) => Ok(Err(stalled)),
        Ok(Ok(())) => cap.join().map_err(|_| anyhow!("capture thread panicked")),
        Err(e) => {
            if cap.is_finished() {
                let _ = cap.join();
            }
            Err(e)
        }
    };
    if let Err(msg) = outcome? {
        summary.source_error = Some(msg);
    }
    summary.frames_in = shared.frames_in.load(Ordering::Relaxed);
    summary.skipped = shared.skipped.load(Ordering::Relaxed);
    summary.faults = shared.faults.load(Ordering::Relaxed);
    summary.dropped = drops.iter().map(|d| d.load(Ordering::Relaxed)).sum();
    summary.seconds = start.elapsed().as_secs_f64();
    summary.fps = summary.frames_out as f64 / summary.seconds.max(1e-9);
    outputs.finish()?;
    Ok(summary)
}

fn add(a: &mut StageMs, b: &StageMs) {
    a.detect += b.detect;
    a.crop += b.crop;
    a.embed += b.embed;
    a.cluster += b.cluster;
    a.model += b.model;
}

/// Frames per second over the last second or so.
#[derive(Default)]
struct Fps {
    times: std::collections::VecDeque<Instant>,
}

impl Fps {
    fn tick(&mut self) -> f64 {
        let now = Instant::now();
        self.times.push_back(now);
        while self.times.len() > 2 && now - self.times[0] > Duration::from_secs(1) {
            self.times.pop_front();
        }
        if self.times.len() < 2 {
            return 0.0;
        }
        (self.times.len() - 1) as f64 / (now - self.times[0]).as_secs_f64().max(1e-6)
    }
}
