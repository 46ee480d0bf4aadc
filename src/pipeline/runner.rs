//! The pipeline threads and their wiring: capture → detect + crop → classify + smooth → the
//! sink on the calling thread. Every stage that ends passes that on — a finished source
//! disconnects the lanes below it, a stage that leaves closes the lanes above it, and a stage
//! that fails also raises the stop flag — so a run never hangs on a dead stage.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use image::RgbImage;

use super::capture::{CaptureCfg, Captured, RetryPolicy, Shared, capture};
use super::channel::{Lane, LaneReceiver, lane};
use super::results::{FaceResult, FrameResult, FrameSink, RunStatus, RunSummary, StageMs};
use super::source::SourceOpener;
use super::stage::{ClassifyFaces, DetectFaces};
use super::track::{TrackConfig, Tracker};
use crate::config::Config;
use crate::face::{DEFAULT_MARGIN, FACE_SIZE, FaceBox, crop_face};
use crate::labels::{Emotion, NUM_CLASSES};

/// Everything the runtime needs besides the source and the models.
pub struct RunOptions {
    /// Run the detector on every n-th frame (1 = all); other frames reuse the last boxes, or
    /// re-detect them with `redetect`.
    pub detect_every: u32,
    /// On frames between full detector passes, look for the known faces again in a window
    /// around each (cheap; follows a moving face; faces not seen again are dropped).
    pub redetect: bool,
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
    /// Set to stop the run (Ctrl-C, window closed, a failed stage).
    pub stop: Arc<AtomicBool>,
    /// Queue length between stages.
    pub lane_capacity: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            detect_every: 1,
            redetect: false,
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

impl RunOptions {
    /// The runtime's options from the `[run]` section of the config; the asynchronous detector
    /// is used only on live sources.
    pub fn from_config(config: &Config, live: bool) -> Self {
        Self {
            detect_every: config.run.detect_every,
            redetect: config.run.redetect,
            detect_async: live && config.run.detect_async,
            align: config.run.align,
            track: TrackConfig {
                ema: config.run.smoothing,
                ..TrackConfig::default()
            },
            ..Self::default()
        }
    }
}

/// A frame with its faces cropped, on its way to classification.
struct Cropped {
    cap: Captured,
    boxes: Vec<FaceBox>,
    crops: Vec<RgbImage>,
    stages: StageMs,
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

/// Runs one stage's body; if it fails (or panics) the stop flag is raised so every other stage,
/// the capture thread included, ends too.
fn stage<T>(stop: &AtomicBool, body: impl FnOnce() -> Result<T>) -> Result<T> {
    struct RaiseUnlessOk<'a>(&'a AtomicBool, bool);
    impl Drop for RaiseUnlessOk<'_> {
        fn drop(&mut self) {
            if !self.1 {
                self.0.store(true, Ordering::Relaxed);
            }
        }
    }
    let mut guard = RaiseUnlessOk(stop, false);
    let out = body();
    guard.1 = out.is_ok();
    out
}

/// Latest detection published by the asynchronous detector: the boxes, how long that
/// detection took (ms), so every frame's stage times include the detector's cost, and a count
/// of the detections published so far, so the frame path sees which boxes are new.
#[derive(Default)]
struct Published {
    boxes: Vec<FaceBox>,
    ms: f64,
    count: u64,
}

/// The asynchronous detector's latest result, shared with the frame path.
type LatestBoxes = Mutex<Published>;

/// The asynchronous detector's side: where to send frames and where to read the latest boxes.
struct AsyncDetection<'a> {
    frames: Lane<Arc<RgbImage>>,
    latest: &'a LatestBoxes,
}

/// Detects (every n-th frame, or via the async detector; re-detecting known faces in between
/// when asked) and crops faces.
fn detect_and_crop<D: DetectFaces>(
    detector: &D,
    rx: LaneReceiver<Captured>,
    tx: Lane<Cropped>,
    opts: &RunOptions,
    async_det: Option<AsyncDetection<'_>>,
) -> Result<()> {
    let pool = stage_pool("detect")?;
    let mut last: Vec<FaceBox> = vec![];
    let every = opts.detect_every.max(1) as u64;
    let mut n = 0u64;
    let mut seen = 0u64;
    while let Some(cap) = recv_or_stop(&rx, &opts.stop) {
        let mut stages = StageMs::default();
        // Whether this frame's boxes still come from an earlier frame.
        let carried = match &async_det {
            Some(a) => {
                let _ = a.frames.send(Arc::clone(&cap.image));
                if let Ok(g) = a.latest.lock() {
                    stages.detect = g.ms;
                    // Re-detection keeps its own boxes between the detector's results.
                    if g.count != seen || !opts.redetect {
                        (last, seen) = (g.boxes.clone(), g.count);
                    }
                }
                true
            }
            None if n.is_multiple_of(every) => {
                let t = Instant::now();
                last = pool.install(|| detector.detect_faces(&cap.image))?;
                stages.detect = ms(t);
                false
            }
            None => true,
        };
        if opts.redetect && carried && !last.is_empty() {
            let t = Instant::now();
            last = pool.install(|| detector.redetect_faces(&cap.image, &last))?;
            stages.redetect = ms(t);
        }
        n += 1;
        let t = Instant::now();
        let crops = last
            .iter()
            .map(|b| crop_face(&cap.image, b, DEFAULT_MARGIN, opts.align, FACE_SIZE))
            .collect();
        stages.crop = ms(t);
        let item = Cropped {
            cap,
            boxes: last.clone(),
            crops,
            stages,
        };
        if tx.send(item).is_err() {
            break;
        }
    }
    Ok(())
}

/// The asynchronous detector: detects on the newest frame it is given and publishes the boxes,
/// until its lane disconnects or a stop.
fn detect_latest<D: DetectFaces>(
    detector: &D,
    rx: LaneReceiver<Arc<RgbImage>>,
    latest: &LatestBoxes,
    stop: &AtomicBool,
) -> Result<()> {
    let pool = stage_pool("detector")?;
    while let Some(img) = recv_or_stop(&rx, stop) {
        let t = Instant::now();
        match pool.install(|| detector.detect_faces(&img)) {
            Ok(b) => {
                if let Ok(mut g) = latest.lock() {
                    g.count += 1;
                    (g.boxes, g.ms) = (b, ms(t));
                }
            }
            Err(e) => log::error!("face detection failed: {e:#}"),
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
fn classify<C: ClassifyFaces>(
    clf: &C,
    rx: LaneReceiver<Cropped>,
    tx: Lane<FrameResult>,
    opts: &RunOptions,
    start: Instant,
) -> Result<()> {
    let pool = stage_pool("classify")?;
    let mut tracker = Tracker::new(opts.track);
    while let Some(c) = recv_or_stop(&rx, &opts.stop) {
        let (preds, times) = pool.install(|| clf.classify_faces(&c.crops))?;
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
            pts_ms: c.cap.pts.map(|d| d.as_secs_f64() * 1e3),
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

/// How the output loop ended.
enum Ending {
    /// The stages finished (input over, a stop, or a stage left): join them.
    Drained,
    /// A live source delivered nothing for too long; its thread may never return.
    Stalled(String),
}

/// Everything the output loop reads besides the results lane.
struct Drain<'a> {
    opts: &'a RunOptions,
    live: bool,
    shared: &'a Shared,
    drops: &'a [Arc<AtomicU64>],
}

impl Drain<'_> {
    fn dropped(&self) -> u64 {
        self.drops.iter().map(|d| d.load(Ordering::Relaxed)).sum()
    }

    /// Hands each result to `sink` until the lane disconnects; the sink's first error stops the
    /// run and is returned once the stages are done.
    fn run(
        &self,
        rx: &LaneReceiver<FrameResult>,
        sink: &mut dyn FrameSink,
        summary: &mut RunSummary,
    ) -> (Ending, Option<anyhow::Error>) {
        let stop = &self.opts.stop;
        let mut fps = Fps::default();
        let mut last_frame = Instant::now();
        let mut sink_err: Option<anyhow::Error> = None;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(r) => {
                    last_frame = Instant::now();
                    summary.record(&r);
                    if sink_err.is_none() && !stop.load(Ordering::Relaxed) {
                        let status = RunStatus {
                            fps: fps.tick(),
                            dropped: self.dropped(),
                            alert: self.shared.alert(),
                        };
                        if let Err(e) = sink.emit(&r, &status) {
                            stop.store(true, Ordering::Relaxed);
                            sink_err = Some(e);
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let idle = last_frame.elapsed();
                    if idle > Duration::from_secs(1) && !stop.load(Ordering::Relaxed) {
                        let msg = format!("no frames for {:.0} s", idle.as_secs_f64());
                        if self.live && idle > self.opts.retry.give_up {
                            log::error!("source stalled: {msg}");
                            self.shared.set_alert(Some(msg.clone()));
                            stop.store(true, Ordering::Relaxed);
                            return (Ending::Stalled(format!("source stalled ({msg})")), sink_err);
                        }
                        sink.idle(&self.shared.alert().unwrap_or(msg));
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return (Ending::Drained, sink_err),
            }
            if sink.closed() {
                stop.store(true, Ordering::Relaxed);
            }
        }
    }
}

/// Runs the pipeline to the end of the input (or a stop), handing each result to `sink` on the
/// calling thread (which owns the window, if any). A source gone for good ends the run with
/// `source_error` set; a failing stage (detection, classification, the sink) stops every other
/// stage and its error is returned.
pub fn run_pipeline<D: DetectFaces, C: ClassifyFaces>(
    opener: SourceOpener,
    live: bool,
    detector: D,
    classifier: C,
    opts: RunOptions,
    sink: &mut dyn FrameSink,
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
    let latest = LatestBoxes::default();
    let mut summary = RunSummary::default();

    // The capture thread is not scoped: a stalled source must not block the end of the run.
    let capture_thread = {
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
    let drain = Drain {
        opts: &opts,
        live,
        shared: &shared,
        drops: &drops,
    };
    let outcome: Result<Ending> = thread::scope(|s| {
        let opts = &opts;
        let (detector, classifier, latest) = (&detector, &classifier, &latest);
        let async_det = opts.detect_async.then(|| {
            let (frames, rx) = lane::<Arc<RgbImage>>(1, true);
            s.spawn(move || stage(&opts.stop, || detect_latest(detector, rx, latest, &opts.stop)));
            AsyncDetection { frames, latest }
        });
        let det = s.spawn(move || {
            stage(&opts.stop, || {
                detect_and_crop(detector, cap_rx, crop_tx, opts, async_det)
            })
        });
        let clf = s.spawn(move || stage(&opts.stop, || classify(classifier, crop_rx, res_tx, opts, start)));
        let (ending, sink_err) = drain.run(&res_rx, sink, &mut summary);
        drop(res_rx);
        let det = det.join().map_err(|_| anyhow!("detection thread panicked"));
        let clf = clf.join().map_err(|_| anyhow!("classification thread panicked"));
        opts.stop.store(true, Ordering::Relaxed); // ends the async detector
        det??;
        clf??;
        if let Some(e) = sink_err {
            return Err(e);
        }
        Ok(ending)
    });
    let source = match outcome {
        Ok(Ending::Drained) => capture_thread
            .join()
            .map_err(|_| anyhow!("capture thread panicked"))?,
        // A stalled source may never return from its read: leave its thread behind.
        Ok(Ending::Stalled(msg)) => Err(msg),
        Err(e) => {
            opts.stop.store(true, Ordering::Relaxed);
            return Err(e);
        }
    };
    summary.source_error = source.err();
    summary.frames_in = shared.frames_in.load(Ordering::Relaxed);
    summary.skipped = shared.skipped.load(Ordering::Relaxed);
    summary.faults = shared.faults.load(Ordering::Relaxed);
    summary.dropped = drops.iter().map(|d| d.load(Ordering::Relaxed)).sum();
    summary.seconds = start.elapsed().as_secs_f64();
    summary.fps = summary.frames_out as f64 / summary.seconds.max(1e-9);
    sink.finish()?;
    Ok(summary)
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
