//! `paca-fer bench detect`: the face stage scored on frames with known boxes — recall, precision,
//! mean IoU, false detections and the detector's own ms a frame, and the emotion accuracy on the
//! found faces' crops beside the accuracy on tight crops of the same faces.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use image::RgbImage;
use serde_json::{Value, json};

use super::args::BenchDetectArgs;
use super::print_json;
use paca_fer::backend::Cpu;
use paca_fer::classify::Classifier;
use paca_fer::config::Config;
use paca_fer::face::evaluate::{MATCH_IOU, Tally, crop_box, truth_box};
use paca_fer::face::{DEFAULT_MARGIN, FACE_SIZE, FaceDetector, crop_face};
use paca_fer::labels::Emotion;
use paca_fer::pipeline::frames::FrameTruth;
use paca_fer::pipeline::results::percentile;
use paca_fer::pipeline::stage::DetectFaces;
use paca_fer::select::choose_model;

/// Face sizes (true box side, px) the recall is broken down by.
const SIZE_BINS: [(u32, u32); 5] = [(0, 64), (64, 100), (100, 150), (150, 200), (200, u32::MAX)];

/// Reads `<dir>/boxes.json`, failing with the file's name when it is missing or malformed.
pub fn read_truth(dir: &Path) -> Result<BTreeMap<String, FrameTruth>> {
    let path = dir.join("boxes.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{}: cannot read (expected the boxes.json that `bench frames` writes)",
            path.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a map of frame file → {{box, source, label}} or {{faces: [...]}}",
            path.display()
        )
    })
}

/// Crops to label, with their true labels: the detector's crops and the true boxes' tight crops.
#[derive(Default)]
struct LabelSet {
    detected: Vec<RgbImage>,
    tight: Vec<RgbImage>,
    labels: Vec<Emotion>,
    tight_all: Vec<RgbImage>,
    labels_all: Vec<Emotion>,
}

/// Fraction of `crops` the classifier labels as `labels` (None when there are none).
fn accuracy(c: &Classifier<Cpu>, crops: &[RgbImage], labels: &[Emotion]) -> Result<Option<f64>> {
    if crops.is_empty() {
        return Ok(None);
    }
    let mut right = 0usize;
    for (chunk, want) in crops.chunks(64).zip(labels.chunks(64)) {
        let p = c.classify(chunk)?;
        right += p.iter().zip(want).filter(|(p, w)| p.label == **w).count();
    }
    Ok(Some(right as f64 / crops.len() as f64))
}

/// Scores `detector` on every frame of `dir` listed in its truth; `align` crops as `run` does.
fn score<D: DetectFaces>(
    detector: &D,
    dir: &Path,
    truth: &BTreeMap<String, FrameTruth>,
    threads: usize,
    align: bool,
    max_frames: Option<usize>,
    labels: bool,
) -> Result<(Value, LabelSet)> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("bench-detect-{i}"))
        .build()
        .context("starting the detector's thread pool")?;
    let (mut tally, mut raw) = (Tally::default(), Tally::default());
    let mut bins = [(0usize, 0usize); SIZE_BINS.len()];
    let (mut ms, mut unreadable) = (Vec::new(), 0usize);
    let mut set = LabelSet::default();
    let bar = paca_fer::progress::bar(
        true,
        truth.len().min(max_frames.unwrap_or(usize::MAX)) as u64,
        "frames",
    );
    for (name, t) in truth.iter().take(max_frames.unwrap_or(usize::MAX)) {
        bar.inc(1);
        let path = dir.join(name);
        let frame = match image::open(&path) {
            Ok(f) => f.to_rgb8(),
            Err(e) => {
                log::warn!("skipping {}: {e}", path.display());
                unreadable += 1;
                continue;
            }
        };
        let start = Instant::now();
        let found = pool.install(|| detector.detect_faces(&frame))?;
        ms.push(start.elapsed().as_secs_f64() * 1e3);
        let faces = t.faces();
        let boxes: Vec<_> = faces.iter().map(|f| truth_box(f.bbox)).collect();
        raw.add(&boxes, &found, MATCH_IOU);
        let squares: Vec<_> = found.iter().map(|b| crop_box(b, DEFAULT_MARGIN)).collect();
        let matches = tally.add(&boxes, &squares, MATCH_IOU);
        for (i, f) in faces.iter().enumerate() {
            let bin = SIZE_BINS
                .iter()
                .position(|(lo, hi)| (*lo..*hi).contains(&f.bbox[2]))
                .unwrap_or(0);
            bins[bin].0 += 1;
            bins[bin].1 += matches.iter().any(|m| m.truth == i) as usize;
            if labels {
                set.tight_all
                    .push(crop_face(&frame, &boxes[i], 0.0, false, FACE_SIZE));
                set.labels_all.push(f.label);
            }
        }
        if labels {
            for m in &matches {
                set.detected.push(crop_face(
                    &frame,
                    &found[m.detection],
                    DEFAULT_MARGIN,
                    align,
                    FACE_SIZE,
                ));
                set.tight
                    .push(crop_face(&frame, &boxes[m.truth], 0.0, false, FACE_SIZE));
                set.labels.push(faces[m.truth].label);
            }
        }
    }
    bar.finish_and_clear();
    if tally.frames == 0 {
        bail!(
            "{}: no readable frame among those boxes.json lists",
            dir.display()
        );
    }
    let by_size: Vec<Value> = SIZE_BINS
        .iter()
        .zip(bins)
        .filter(|(_, (n, _))| *n > 0)
        .map(|((lo, hi), (n, k))| {
            json!({ "min_px": lo, "max_px": if *hi == u32::MAX { Value::Null } else { json!(hi) },
                    "faces": n, "recall": k as f64 / n as f64 })
        })
        .collect();
    let mean = ms.iter().sum::<f64>() / ms.len().max(1) as f64;
    Ok((
        json!({
            "frames": tally.frames,
            "unreadable": unreadable,
            "faces": tally.faces,
            "detections": tally.detections,
            "matched": tally.matched,
            "recall": tally.recall(),
            "precision": tally.precision(),
            "mean_iou": tally.mean_iou(),
            "false_per_frame": tally.false_per_frame(),
            "ms_per_frame": percentile(&ms, 0.5),
            "ms_per_frame_mean": mean,
            "ms_per_frame_p95": percentile(&ms, 0.95),
            "by_size": by_size,
            "raw_box": { "recall": raw.recall(), "precision": raw.precision(), "mean_iou": raw.mean_iou(),
                         "false_per_frame": raw.false_per_frame() },
            "scored_box": "crop square (side max(w, h)·(1 + 2·DEFAULT_MARGIN), centred on the detection)",
        }),
        set,
    ))
}

/// Runs `bench detect`.
pub fn run(a: &BenchDetectArgs, config: &Config, json: bool) -> Result<()> {
    let truth = read_truth(&a.input)?;
    let cfg = a.detector.detector_config(config);
    let detector = FaceDetector::load_shipped(cfg)?;
    let (mut out, set) = score(
        &detector,
        &a.input,
        &truth,
        a.threads,
        config.run.align,
        a.max_frames,
        !a.no_labels,
    )?;
    out["detector"] = json!({ "name": "centerface", "width": cfg.width, "threshold": cfg.threshold,
                              "nms_iou": cfg.nms_iou, "threads": a.threads.max(1),
                              "backend": if cfg!(feature = "flex") { "burn-flex" } else { "burn-ndarray" } });
    if !a.no_labels {
        let (dir, why) = choose_model::<Cpu>(&a.model, &None, None, None, config, &Default::default())?;
        log::info!("labelling with {}: {why}", dir.display());
        let mut c = Classifier::<Cpu>::load(&dir, &Default::default())?;
        c.set_live_tta(config.run.model_tta, None, None);
        let det = accuracy(&c, &set.detected, &set.labels)?;
        let tight = accuracy(&c, &set.tight, &set.labels)?;
        out["label_accuracy"] = json!(det);
        out["tight_crop_accuracy"] = json!(tight);
        out["crop_gap_points"] = json!(det.zip(tight).map(|(d, t)| 100.0 * (t - d)));
        out["tight_crop_accuracy_all"] = json!(accuracy(&c, &set.tight_all, &set.labels_all)?);
        out["model"] = json!(dir.display().to_string());
    }
    if json {
        print_json(&out)
    } else {
        println!(
            "{} frames, {} faces: recall {:.3}, precision {:.3}, mean IoU {:.3}, {:.3} false a frame, {:.1} ms a frame (median); label accuracy {} (tight crops {})",
            out["frames"],
            out["faces"],
            out["recall"].as_f64().unwrap_or(0.0),
            out["precision"].as_f64().unwrap_or(0.0),
            out["mean_iou"].as_f64().unwrap_or(0.0),
            out["false_per_frame"].as_f64().unwrap_or(0.0),
            out["ms_per_frame"].as_f64().unwrap_or(0.0),
            out["label_accuracy"],
            out["tight_crop_accuracy"],
        );
        println!("recall by face size: {}", out["by_size"]);
        Ok(())
    }
}
