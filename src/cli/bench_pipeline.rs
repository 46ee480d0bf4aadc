//! `paca-fer bench pipeline` and `bench frames`: end-to-end frame rate, latency and stage times
//! of the runtime over recorded 640×480 frames, and the generator of those frames.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::args::{BenchFramesArgs, BenchPipelineArgs};
use super::data_cmd::open_dataset;
use super::print_json;
use burn::tensor::backend::Backend;
use paca_fer::classify::Classifier;
use paca_fer::config::Config;
use paca_fer::data::Sample;
use paca_fer::data::load_face;
use paca_fer::face::FaceDetector;
use paca_fer::pipeline::frames::{FrameTruth, HardSpec, TruthFace, hard_frame, shot};
use paca_fer::pipeline::output::{OutputOptions, Outputs};
use paca_fer::pipeline::results::percentile;
use paca_fer::pipeline::source::{open_input, paced};
use paca_fer::pipeline::{RunOptions, RunSummary, run_pipeline};
use paca_fer::select::choose_model;

/// Where `bench pipeline` runs its models: the ViT and embedder on `B`, the detector on `D`.
struct On<'a, B: Backend, D: Backend> {
    device: &'a B::Device,
    detector_device: &'a D::Device,
}

/// One timed pass of the pipeline as JSON.
fn pass<B: Backend, D: Backend>(
    a: &BenchPipelineArgs,
    config: &Config,
    dir: &Path,
    on: &On<B, D>,
    detect_async: bool,
    fps_in: Option<f64>,
) -> Result<Value>
where
    Classifier<B>: Sync,
    FaceDetector<D>: Sync,
{
    let mut classifier = Classifier::<B>::load(dir, on.device)?;
    classifier.set_live_tta(config.run.model_tta, a.flip_tta, a.zoom_tta);
    let (flip_tta, zoom_tta) = (classifier.meta.flip_tta, classifier.meta.zoom_tta);
    let detector_cfg = a.detector.detector_config(config);
    let width = detector_cfg.width;
    let detector = FaceDetector::<D>::load_shipped_on(detector_cfg, on.detector_device)?;
    let mut opts = RunOptions::from_config(config, true);
    a.schedule.apply(&mut opts);
    opts.detect_async = detect_async;
    let (detect_every, redetect) = (opts.detect_every, opts.redetect);
    let mut outputs = Outputs::new(OutputOptions::default())?;
    // Warm-up on the first frames is part of the numbers: a user sees it too.
    let (mut opener, _) = open_input(&a.input, Some(a.loops.max(1)))?;
    if let Some(f) = fps_in {
        opener = paced(opener, f);
    }
    let s: RunSummary = run_pipeline(opener, false, detector, classifier, opts, &mut outputs)?;
    let n = s.frames_out.max(1) as f64;
    let t = &s.stage_totals;
    Ok(json!({
        "frames": s.frames_out,
        "fps": s.fps,
        "p50_ms": percentile(&s.service, 0.5),
        "p95_ms": percentile(&s.service, 0.95),
        "latency_p50_ms": percentile(&s.latencies, 0.5),
        "latency_p95_ms": percentile(&s.latencies, 0.95),
        "faces_per_frame": s.faces as f64 / n,
        "stages": {
            "detect": t.detect / n,
            "redetect": t.redetect / n,
            "crop": t.crop / n,
            "embed": t.embed / n,
            "cluster": t.cluster / n,
            "model": t.model / n,
        },
        "detect_width": width,
        "detect_async": detect_async,
        "detect_every": detect_every,
        "redetect": redetect,
        "source_fps": fps_in,
        "skipped": s.skipped,
        "flip_tta": flip_tta,
        "zoom_tta": zoom_tta,
    }))
}

/// Runs `bench pipeline`: the live configuration (detector on its own thread) and the recorded
/// one (detection on every frame, on the frame's path: full passes every `detect_every` frames,
/// re-detection in between), both over every frame of `--input`.
pub fn pipeline(a: &BenchPipelineArgs, config: &Config, json: bool) -> Result<()> {
    if !(a.source_fps.is_finite() && a.source_fps > 0.0) {
        bail!("--source-fps {}: expected a frame rate above 0", a.source_fps);
    }
    paca_fer::on_device!(a.device.checked()?, |B, D, dev| pipeline_on::<B, D>(
        a,
        config,
        json,
        &On {
            device: &dev,
            detector_device: &Default::default()
        }
    ))
}

fn pipeline_on<B: Backend, D: Backend>(
    a: &BenchPipelineArgs,
    config: &Config,
    json: bool,
    on: &On<B, D>,
) -> Result<()>
where
    Classifier<B>: Sync,
    FaceDetector<D>: Sync,
{
    let (dir, why) = choose_model::<B>(&a.model, &None, None, None, config, on.device)?;
    log::info!("model {}: {why}", dir.display());
    // Throughput: frames as fast as the pipeline takes them. Latency: frames at the camera's
    // rate, so the numbers are what a viewer sees rather than time spent in full queues.
    let unpaced = pass(a, config, &dir, on, true, None)?;
    let paced_run = pass(a, config, &dir, on, true, Some(a.source_fps))?;
    let sync = pass(a, config, &dir, on, false, None)?;
    let mut live = json!({
        "frames": unpaced["frames"],
        "fps": unpaced["fps"],
        "detect_width": unpaced["detect_width"],
    });
    for key in [
        "p50_ms",
        "p95_ms",
        "latency_p50_ms",
        "latency_p95_ms",
        "stages",
        "faces_per_frame",
        "flip_tta",
        "zoom_tta",
    ] {
        live[key] = paced_run[key].clone();
    }
    live["source_fps"] = json!(a.source_fps);
    live["unpaced"] = unpaced;
    live["paced"] = paced_run;
    live["sync"] = sync;
    live["model"] = json!(dir.display().to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    live["cores"] = json!(cores);
    live["device"] = json!(a.device.choice.name());
    if json {
        print_json(&live)
    } else {
        for (name, v) in [
            ("live, as fast as possible", &live["unpaced"]),
            ("live, source at camera rate", &live["paced"]),
            ("every frame detected", &live["sync"]),
        ] {
            println!(
                "{name}: {} frames, {:.1} FPS, processing p50 {:.1} ms p95 {:.1} ms, latency p50 {:.1} ms p95 {:.1} ms; stages (ms) {}",
                v["frames"],
                v["fps"].as_f64().unwrap_or(0.0),
                v["p50_ms"].as_f64().unwrap_or(0.0),
                v["p95_ms"].as_f64().unwrap_or(0.0),
                v["latency_p50_ms"].as_f64().unwrap_or(0.0),
                v["latency_p95_ms"].as_f64().unwrap_or(0.0),
                v["stages"]
            );
        }
        Ok(())
    }
}

/// `bench frames --hard`: every frame its own scene with 0..=`max_faces` faces drawn at random
/// (seeded) from `samples`, and `boxes.json` with every face's box, source, label and what was
/// done to the frame.
fn hard_frames(a: &BenchFramesArgs, samples: &[Sample], json: bool) -> Result<()> {
    use rand::{Rng, SeedableRng};
    if samples.is_empty() {
        bail!("the dataset's split has no faces to place");
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed ^ 0x4a5d);
    let spec = HardSpec::default();
    let mut truth = BTreeMap::new();
    let (mut faces_made, mut unreadable) = (0usize, 0usize);
    for i in 0..a.count {
        let n = rng.random_range(0..=a.max_faces);
        let mut chosen = Vec::with_capacity(n);
        let mut images = Vec::with_capacity(n);
        while chosen.len() < n {
            let s = &samples[rng.random_range(0..samples.len())];
            match load_face(&s.path, 48) {
                Ok(f) => {
                    images.push(f);
                    chosen.push(s);
                }
                Err(e) => {
                    log::warn!("skipping {}: {e}", s.path.display());
                    unreadable += 1;
                    if unreadable > 100 + a.count {
                        bail!("too many unreadable faces in the dataset ({unreadable})");
                    }
                }
            }
        }
        let f = hard_frame(
            &images,
            &spec,
            a.seed.wrapping_mul(1_000_003).wrapping_add(i as u64),
        );
        let name = format!("frame_{i:04}.png");
        let path = a.out.join(&name);
        f.image
            .save(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        let faces: Vec<TruthFace> = f
            .faces
            .iter()
            .map(|(bbox, k)| TruthFace {
                bbox: *bbox,
                source: chosen[*k].path.display().to_string(),
                label: chosen[*k].label,
            })
            .collect();
        faces_made += faces.len();
        truth.insert(
            name,
            FrameTruth::Many {
                faces,
                degradation: Some(f.degradation),
            },
        );
    }
    let path = a.out.join("boxes.json");
    std::fs::write(&path, serde_json::to_string_pretty(&truth)?)
        .with_context(|| format!("writing {}", path.display()))?;
    if json {
        print_json(&json!({ "frames": a.count, "faces": faces_made, "out": a.out.display().to_string() }))
    } else {
        println!(
            "{} hard frames with {faces_made} faces in {}",
            a.count,
            a.out.display()
        );
        Ok(())
    }
}

/// Runs `bench frames`: 640×480 frames, each with one face of the dataset's first split at a
/// seeded random place, and `boxes.json` mapping each file to its face box.
pub fn frames(a: &BenchFramesArgs, config: &Config, json: bool) -> Result<()> {
    if a.count == 0 {
        bail!("--count must be at least 1");
    }
    let ds = open_dataset(&a.source, config)?;
    let split = ["valid", "test", "all", "train"]
        .iter()
        .find(|s| ds.splits.contains_key(**s))
        .copied()
        .unwrap_or("train");
    let samples = ds.split(split)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("--out {}: cannot create", a.out.display()))?;
    if a.hard {
        return hard_frames(a, samples, json);
    }
    // Like a webcam: each face stays for a shot of `shot` frames, drifting a few pixels a frame.
    let shots = a.count.div_ceil(a.shot.max(1));
    let stride = (samples.len() / shots).max(1);
    let mut boxes = serde_json::Map::new();
    let mut made = 0usize;
    for (i, s) in samples.iter().step_by(stride).enumerate() {
        if made == a.count {
            break;
        }
        let Ok(face) = load_face(&s.path, 48) else {
            log::warn!("skipping {}: not decodable", s.path.display());
            continue;
        };
        let seed = a.seed.wrapping_add(i as u64);
        for (frame, b) in shot(&face, a.face_px, seed, a.shot.max(1).min(a.count - made)) {
            let name = format!("frame_{made:04}.png");
            frame
                .save(a.out.join(&name))
                .with_context(|| format!("writing {}", a.out.join(&name).display()))?;
            boxes.insert(
                name,
                json!({ "box": b, "source": s.path.display().to_string(), "label": s.label.name() }),
            );
            made += 1;
        }
    }
    std::fs::write(a.out.join("boxes.json"), serde_json::to_string_pretty(&boxes)?)
        .with_context(|| format!("writing {}", a.out.join("boxes.json").display()))?;
    if json {
        print_json(&json!({ "frames": made, "out": a.out.display().to_string() }))
    } else {
        println!("{made} frames in {}", a.out.display());
        Ok(())
    }
}
