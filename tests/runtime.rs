//! The live runtime end to end on real faces: FER+ faces placed into 640×480 frames go through
//! detection, crop, embedding, clustering and the ViT; JSONL lines come out one per frame in
//! input order; faulty, stalling and endless live sources are survived or ended cleanly.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use image::RgbImage;
use paca_fer::backend::Cpu;
use paca_fer::classify::{Classifier, Prediction, StageTimes};
use paca_fer::data::{Dataset, Layout, load_face};
use paca_fer::face::{DEFAULT_MODEL_PATH, DetectorConfig, FaceDetector};
use paca_fer::metrics::compute;
use paca_fer::model::ModelMeta;
use paca_fer::model::embed::EmbedderKind;
use paca_fer::model::{Assignment, AttentionKind, ModelConfig, Vit, save_model};
use paca_fer::pipeline::frames::shot;
use paca_fer::pipeline::output::{OutputOptions, Outputs};
use paca_fer::pipeline::source::{FrameSource, SourceError, SourceOpener};
use paca_fer::pipeline::{ClassifyFaces, DetectFaces, RetryPolicy, RunOptions, run_pipeline};
use serde_json::Value;

fn manifest() -> PathBuf {
    common::repo_root()
}

/// A small, randomly initialised k-means/k=2 model on MobileNetV2 features, saved once.
fn model_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ModelConfig::new(96)
            .with_d_model(32)
            .with_heads(2)
            .with_depth(2)
            .with_attention(AttentionKind::PatchToCluster {
                clusters: 2,
                assignment: Assignment::Hard,
            });
        let model: Vit<Cpu> = cfg.init(&Default::default()).unwrap();
        save_model(dir.path(), &model, &cfg).unwrap();
        let meta = ModelMeta {
            embedder: EmbedderKind::MobileNetV2,
            method: paca_fer::cluster::Method::KMeans.into(),
            k: 2,
            cluster_seed: 0,
            metrics: compute(&[0, 1], &[0, 1]),
            data: "none (random weights)".into(),
            embedder_weights: Some(
                manifest()
                    .join("models/embedders/mobilenet_v2_imagenet_torchvision.safetensors")
                    .display()
                    .to_string(),
            ),
            flip_tta: false,
            zoom_tta: false,
        };
        meta.save(dir.path()).unwrap();
        dir
    })
    .path()
}

/// `n` frames of one FER+ face drifting in a 640×480 frame, written as PNGs; returns the boxes.
fn ferplus_frames(dir: &Path, n: usize) -> Option<Vec<[u32; 4]>> {
    let root = common::ferplus()?;
    let ds = Dataset::open(&root, Layout::FerPlus).unwrap();
    let sample = &ds.split("valid").unwrap()[7];
    let face = load_face(&sample.path, 48).unwrap();
    let frames = shot(&face, 192, 1, n);
    for (i, (f, _)) in frames.iter().enumerate() {
        f.save(dir.join(format!("f{i:03}.png"))).unwrap();
    }
    Some(frames.into_iter().map(|(_, b)| b).collect())
}

fn iou(a: &[f64], b: &[u32; 4]) -> f64 {
    let (bx, by, bw, bh) = (b[0] as f64, b[1] as f64, b[2] as f64, b[3] as f64);
    let ix = (a[0] + a[2]).min(bx + bw) - a[0].max(bx);
    let iy = (a[1] + a[3]).min(by + bh) - a[1].max(by);
    if ix <= 0.0 || iy <= 0.0 {
        return 0.0;
    }
    ix * iy / (a[2] * a[3] + bw * bh - ix * iy)
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_paca-fer"));
    c.current_dir(manifest());
    c
}

#[test]
fn headless_run_writes_one_line_per_frame_in_order_with_the_face_found() {
    let dir = tempfile::tempdir().unwrap();
    let Some(truth) = ferplus_frames(dir.path(), 8) else {
        return;
    };
    std::fs::write(dir.path().join("f003b.png"), b"\x89PNG\r\n\x1a\n truncated").unwrap();
    let jsonl = dir.path().join("out.jsonl");
    let annotated = dir.path().join("annotated");
    let out = bin()
        .args(["--json", "run", "--headless", "--detect-width", "320", "--input"])
        .arg(dir.path())
        .arg("--model")
        .arg(model_dir())
        .arg("--jsonl")
        .arg(&jsonl)
        .arg("--save-annotated")
        .arg(&annotated)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["frames_out"], 8, "{summary}");
    assert_eq!(summary["skipped"], 1, "{summary}");
    assert_eq!(summary["dropped"], 0, "recorded input never drops frames");
    assert_eq!(
        (summary["method"].as_str(), summary["k"].as_u64()),
        (Some("kmeans"), Some(2))
    );

    let lines: Vec<Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Input order: f000..f003, f003b (corrupt, skipped), f004..f007.
    let frames: Vec<u64> = lines.iter().map(|l| l["frame"].as_u64().unwrap()).collect();
    assert_eq!(frames, vec![0, 1, 2, 3, 5, 6, 7, 8]);
    let mut found = 0;
    for (line, gt) in lines.iter().zip(&truth) {
        assert_eq!(line["method"], "kmeans");
        assert!(line["t_ms"].as_f64().unwrap() >= 0.0);
        for f in line["faces"].as_array().unwrap() {
            let probs = f["probs"].as_object().unwrap();
            assert_eq!(probs.len(), 8);
            let sum: f64 = probs.values().map(|p| p.as_f64().unwrap()).sum();
            assert!((sum - 1.0).abs() < 1e-3, "{f}");
            let best = probs
                .iter()
                .max_by(|a, b| a.1.as_f64().unwrap().total_cmp(&b.1.as_f64().unwrap()))
                .unwrap()
                .0;
            assert_eq!(f["label"].as_str().unwrap(), best);
        }
        let boxes: Vec<Vec<f64>> = line["faces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                f["box"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect()
            })
            .collect();
        if boxes.iter().any(|b| iou(b, gt) >= 0.5) {
            found += 1;
        }
    }
    assert!(found >= 6, "face found in only {found} of 8 frames");

    let pngs: Vec<_> = std::fs::read_dir(&annotated).unwrap().flatten().collect();
    assert_eq!(pngs.len(), 8);
    let first = image::open(annotated.join("frame_000000.png")).unwrap().to_rgb8();
    let raw = image::open(dir.path().join("f000.png")).unwrap().to_rgb8();
    assert_eq!(first.dimensions(), (640, 480));
    let changed = first.pixels().zip(raw.pixels()).filter(|(a, b)| a != b).count();
    assert!(changed > 2_000, "overlay changed only {changed} pixels");
}

#[test]
fn bad_run_inputs_fail_with_a_clear_message() {
    let out = bin()
        .args(["run", "--headless", "--input", "/nonexistent/frames", "--model"])
        .arg(model_dir())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/frames") && err.contains("no such"),
        "{err}"
    );

    let out = bin()
        .args([
            "run",
            "--headless",
            "--input",
            "README.md",
            "--model",
            "/nonexistent/model",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/model"), "{err}");
}

#[cfg(feature = "camera")]
#[test]
fn a_missing_camera_suggests_input() {
    let out = bin()
        .args(["run", "--headless", "--camera", "57", "--model"])
        .arg(model_dir())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("camera 57") && err.contains("--input"), "{err}");
}

/// A live source scripted frame by frame.
struct Scripted {
    steps: Vec<Step>,
    pos: usize,
}

#[derive(Clone)]
enum Step {
    Frame(RgbImage),
    Fault,
    Gone,
    Stall,
    Endless(RgbImage),
}

impl FrameSource for Scripted {
    fn next_frame(&mut self) -> Result<Option<RgbImage>, SourceError> {
        let step = self.steps.get(self.pos).cloned();
        self.pos += 1;
        match step {
            None => Ok(None),
            Some(Step::Frame(f)) => Ok(Some(f)),
            Some(Step::Fault) => Err(SourceError::Transient("scripted read failure".into())),
            Some(Step::Gone) => Err(SourceError::Gone("scripted unplug".into())),
            Some(Step::Stall) => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
            Some(Step::Endless(f)) => {
                self.pos -= 1;
                std::thread::sleep(Duration::from_millis(2));
                Ok(Some(f))
            }
        }
    }
    fn is_live(&self) -> bool {
        true
    }
    fn describe(&self) -> String {
        "scripted camera".into()
    }
}

fn opener(steps: Vec<Step>) -> SourceOpener {
    Box::new(move || Ok(Box::new(Scripted { steps, pos: 0 }) as Box<dyn FrameSource>))
}

fn models() -> (FaceDetector, Classifier<Cpu>) {
    let det = FaceDetector::load(
        &manifest().join(DEFAULT_MODEL_PATH),
        DetectorConfig {
            width: 160,
            ..DetectorConfig::default()
        },
    )
    .unwrap();
    let clf = Classifier::<Cpu>::load(model_dir(), &Default::default()).unwrap();
    (det, clf)
}

fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        initial: Duration::from_millis(5),
        max: Duration::from_millis(40),
        give_up: Duration::from_millis(800),
    }
}

fn headless() -> Outputs {
    Outputs::new(OutputOptions::default()).unwrap()
}

fn frame(v: u8) -> RgbImage {
    RgbImage::from_pixel(320, 240, image::Rgb([v, v / 2, 255 - v]))
}

#[test]
fn faults_empty_and_resized_frames_are_survived_then_a_lost_source_ends_the_run() {
    let (det, clf) = models();
    let steps = vec![
        Step::Frame(frame(10)),
        Step::Fault,
        Step::Fault,
        Step::Frame(RgbImage::new(0, 0)),
        Step::Frame(frame(20)),
        Step::Frame(RgbImage::from_pixel(64, 48, image::Rgb([1, 2, 3]))),
        Step::Fault,
        Step::Frame(frame(30)),
        Step::Gone,
        Step::Frame(frame(40)),
    ];
    let opts = RunOptions {
        retry: quick_retry(),
        ..RunOptions::default()
    };
    let s = run_pipeline(opener(steps), true, det, clf, opts, &mut headless()).unwrap();
    assert_eq!(s.faults, 4, "{s:?}");
    assert_eq!(s.frames_in, 4);
    assert_eq!(s.frames_out + s.dropped, 4);
    assert!(s.source_error.as_deref().unwrap().contains("unplug"), "{s:?}");
}

#[test]
fn a_source_failing_for_too_long_is_given_up() {
    let (det, clf) = models();
    let steps: Vec<Step> = std::iter::once(Step::Frame(frame(5)))
        .chain(std::iter::repeat_n(Step::Fault, 10_000))
        .collect();
    let opts = RunOptions {
        retry: quick_retry(),
        ..RunOptions::default()
    };
    let t = Instant::now();
    let s = run_pipeline(opener(steps), true, det, clf, opts, &mut headless()).unwrap();
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(s.faults >= 5, "backed off and retried: {s:?}");
    assert!(s.source_error.as_deref().unwrap().contains("giving up"), "{s:?}");
}

#[test]
fn a_stalled_source_is_detected_and_the_run_ends() {
    let (det, clf) = models();
    let steps = vec![Step::Frame(frame(1)), Step::Frame(frame(2)), Step::Stall];
    let opts = RunOptions {
        retry: RetryPolicy {
            give_up: Duration::from_millis(1500),
            ..quick_retry()
        },
        ..RunOptions::default()
    };
    let t = Instant::now();
    let s = run_pipeline(opener(steps), true, det, clf, opts, &mut headless()).unwrap();
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    assert_eq!(s.frames_out, 2);
    assert!(s.source_error.as_deref().unwrap().contains("stalled"), "{s:?}");
}

#[test]
fn a_fast_live_source_drops_stale_frames_and_stops_cleanly() {
    let (det, clf) = models();
    let stop = Arc::new(AtomicBool::new(false));
    let opts = RunOptions {
        stop: Arc::clone(&stop),
        retry: quick_retry(),
        ..RunOptions::default()
    };
    let stopper = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1500));
            stop.store(true, Ordering::Relaxed);
        })
    };
    let t = Instant::now();
    let s = run_pipeline(
        opener(vec![Step::Endless(frame(77))]),
        true,
        det,
        clf,
        opts,
        &mut headless(),
    )
    .unwrap();
    stopper.join().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        t.elapsed()
    );
    assert!(s.source_error.is_none());
    assert!(s.frames_out > 0);
    // The source outpaces detection (~2 ms per frame vs tens of ms): frames must be dropped,
    // and what is queued never exceeds the lanes' capacity.
    assert!(s.dropped > 0, "{s:?}");
    assert!(s.frames_in - s.frames_out - s.dropped <= 6, "{s:?}");
}

#[test]
fn async_detection_uses_the_latest_boxes() {
    let dir = tempfile::tempdir().unwrap();
    let Some(truth) = ferplus_frames(dir.path(), 30) else {
        return;
    };
    let (det, clf) = models();
    let frames: Vec<Step> = (0..30)
        .map(|i| {
            Step::Frame(
                image::open(dir.path().join(format!("f{i:03}.png")))
                    .unwrap()
                    .to_rgb8(),
            )
        })
        .collect();
    // Paced like a camera so the detector keeps up.
    let src = paca_fer::pipeline::source::paced(opener(frames), 20.0);
    let opts = RunOptions {
        detect_async: true,
        retry: quick_retry(),
        ..RunOptions::default()
    };
    let jsonl = dir.path().join("async.jsonl");
    let mut out = Outputs::new(OutputOptions {
        jsonl: Some(jsonl.display().to_string()),
        ..OutputOptions::default()
    })
    .unwrap();
    let s = run_pipeline(src, false, det, clf, opts, &mut out).unwrap();
    assert_eq!(s.frames_out, 30);
    // Each frame carries the time of the detection whose boxes it used, so the detector's cost
    // is reported even though it runs beside the frame path.
    assert!(
        s.stage_totals.detect > 0.0,
        "the asynchronous detector's time is not reported: {s:?}"
    );
    // Boxes come from a detection a frame or two old; the face drifts ≤ 3 px per frame, so
    // they still overlap the face in the frame they are applied to.
    let hits = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| {
            let gt = &truth[l["frame"].as_u64().unwrap() as usize];
            l["faces"].as_array().unwrap().iter().any(|f| {
                let b: Vec<f64> = f["box"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect();
                iou(&b, gt) >= 0.5
            })
        })
        .count();
    assert!(hits >= 20, "face found in only {hits} of 30 frames");
}

/// Probabilities of the first face `run` reports on the bundled sample photo with the shipped model.
fn sample_probs(extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("out.jsonl");
    let out = bin()
        .args(extra)
        .args(["run", "--headless", "--model", "models/default", "--input"])
        .arg(manifest().join("tests/fixtures/face/astronaut.png"))
        .arg("--jsonl")
        .arg(&jsonl)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let line: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    line["faces"][0]["probs"].clone()
}

#[test]
fn live_runs_use_the_model_folders_tta_only_when_asked() {
    let shipped: Value =
        serde_json::from_str(&std::fs::read_to_string(manifest().join("models/default/meta.json")).unwrap())
            .unwrap();
    if shipped["flip_tta"] != true || shipped["zoom_tta"] != true {
        return; // the check needs a default model that ships with TTA on
    }
    let one_view = sample_probs(&[]);
    assert!(one_view.is_object(), "no face found: {one_view}");
    let cfg = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(cfg.path(), "[run]\nmodel_tta = true\n").unwrap();
    let by_config = sample_probs(&["--config", cfg.path().to_str().unwrap()]);
    assert_ne!(by_config, one_view, "run.model_tta = true changed nothing");
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("out.jsonl");
    let out = bin()
        .args([
            "run",
            "--headless",
            "--model",
            "models/default",
            "--flip-tta",
            "true",
        ])
        .args(["--zoom-tta", "true", "--input"])
        .arg(manifest().join("tests/fixtures/face/astronaut.png"))
        .arg("--jsonl")
        .arg(&jsonl)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let line: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(
        line["faces"][0]["probs"], by_config,
        "the flags and the config disagree"
    );
}

/// A classification stage that always fails, as a broken model or device would.
struct FailingClassifier;

impl ClassifyFaces for FailingClassifier {
    fn classify_faces(&self, _: &[RgbImage]) -> anyhow::Result<(Vec<Prediction>, StageTimes)> {
        anyhow::bail!("scripted classifier failure")
    }
}

/// A detection stage that always fails.
struct FailingDetector;

impl DetectFaces for FailingDetector {
    fn detect_faces(&self, _: &RgbImage) -> anyhow::Result<Vec<paca_fer::face::FaceBox>> {
        anyhow::bail!("scripted detector failure")
    }
}

/// Runs `run` on its own thread and waits at most `limit` for its outcome (a hung run fails the
/// test instead of hanging it).
fn within<T: Send + 'static>(limit: Duration, run: impl FnOnce() -> T + Send + 'static) -> (T, Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = Instant::now();
    std::thread::spawn(move || {
        let _ = tx.send(run());
    });
    let out = rx
        .recv_timeout(limit)
        .unwrap_or_else(|_| panic!("the run did not end within {limit:?}"));
    (out, t.elapsed())
}

/// Runs an endless live source through `det` and `clf`, one of which always fails, and checks
/// that the run ends within a second with that stage's error (`expect`).
fn assert_a_failing_stage_ends_the_run<D, C>(det: D, clf: C, expect: &str)
where
    D: DetectFaces + Send + 'static,
    C: ClassifyFaces + Send + 'static,
{
    let opts = RunOptions {
        retry: quick_retry(),
        ..RunOptions::default()
    };
    let (result, took) = within(Duration::from_secs(10), move || {
        let src = opener(vec![Step::Endless(frame(60))]);
        run_pipeline(src, true, det, clf, opts, &mut headless()).map(|s| s.frames_out)
    });
    let err = format!("{:#}", result.unwrap_err());
    assert!(err.contains(expect), "{err}");
    assert!(took < Duration::from_secs(1), "the run took {took:?} to end");
}

#[test]
fn a_failing_classify_stage_ends_a_live_run_with_its_error() {
    let (det, _) = models();
    assert_a_failing_stage_ends_the_run(det, FailingClassifier, "scripted classifier failure");
}

#[test]
fn a_failing_detect_stage_ends_a_live_run_with_its_error() {
    let (_, clf) = models();
    assert_a_failing_stage_ends_the_run(FailingDetector, clf, "scripted detector failure");
}

/// Runs `n` frames of one FER+ face (160 px) moving 5 px a frame to the right over a cluttered backdrop
/// with a full detector pass every 15th frame; returns each frame's face-box centre error (px)
/// against the true motion, or `None` where no face came out, and the run's re-detection ms.
fn moving_face_errors(redetect: bool, n: usize) -> Option<(Vec<Option<f64>>, f64)> {
    use paca_fer::pipeline::frames::{HardSpec, hard_frame};
    let dir = tempfile::tempdir().unwrap();
    let root = common::ferplus()?;
    let ds = Dataset::open(&root, Layout::FerPlus).unwrap();
    let face = load_face(&ds.split("valid").unwrap()[7].path, 48).unwrap();
    let face = image::imageops::resize(&face, 160, 160, image::imageops::FilterType::CatmullRom);
    let backdrop = hard_frame(&[], &HardSpec::default(), 5).image;
    let frames: Vec<Step> = (0..n)
        .map(|i| {
            let mut f = backdrop.clone();
            image::imageops::replace(&mut f, &face, 100 + 5 * i as i64, 150);
            Step::Frame(f)
        })
        .collect();
    let (_, clf) = models();
    let det = FaceDetector::load(
        &manifest().join(DEFAULT_MODEL_PATH),
        DetectorConfig {
            width: 320,
            ..DetectorConfig::default()
        },
    )
    .unwrap();
    let opts = RunOptions {
        detect_every: 15,
        redetect,
        retry: quick_retry(),
        ..RunOptions::default()
    };
    let jsonl = dir.path().join("moving.jsonl");
    let mut out = Outputs::new(OutputOptions {
        jsonl: Some(jsonl.display().to_string()),
        ..OutputOptions::default()
    })
    .unwrap();
    let s = run_pipeline(opener(frames), false, det, clf, opts, &mut out).unwrap();
    assert_eq!(s.frames_out, n as u64);
    let centres: Vec<Option<(f64, f64)>> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|l| {
            let b = l["faces"].as_array()?.first()?["box"].as_array()?.clone();
            let v: Vec<f64> = b.iter().map(|v| v.as_f64().unwrap()).collect();
            Some((v[0] + v[2] / 2.0, v[1] + v[3] / 2.0))
        })
        .collect();
    // The detector's box sits a fixed offset from the pasted square: measure from frame 0's.
    let (x0, y0) = centres[0].expect("no face in the first frame");
    let errors = centres
        .iter()
        .enumerate()
        .map(|(i, c)| c.map(|(x, y)| (x - x0 - 5.0 * i as f64).hypot(y - y0)))
        .collect();
    Some((errors, s.stage_totals.redetect))
}

#[test]
fn redetection_follows_a_moving_face_between_full_passes() {
    let Some((follow, redetect_ms)) = moving_face_errors(true, 30) else {
        return;
    };
    let (stale, stale_ms) = moving_face_errors(false, 30).unwrap();
    let worst = |e: &[Option<f64>]| e.iter().map(|v| v.unwrap_or(f64::INFINITY)).fold(0.0, f64::max);
    println!("centre error, re-detecting: {follow:.1?}; reusing boxes: {stale:.1?}");
    assert!(
        follow.iter().all(Option::is_some),
        "a frame lost its face: {follow:?}"
    );
    assert!(
        worst(&follow) <= 8.0,
        "re-detected boxes lag the face: {follow:.1?}"
    );
    // The control: boxes reused between passes fall up to 14 × 5 px behind.
    assert!(worst(&stale) >= 50.0, "{stale:.1?}");
    assert!(redetect_ms > 0.0 && stale_ms == 0.0, "{redetect_ms} {stale_ms}");
}
