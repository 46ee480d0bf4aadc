//! `paca-fer run`: choose the model (sweep selection or `--model`), open the source, and stream
//! frames through detection, classification and the outputs until the input ends or the user stops.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, bail};
use serde_json::json;

use super::args::RunArgs;
use super::print_json;
use super::select_cmd::results_path;
use crate::backend::Cpu;
use crate::classify::{Classifier, DEFAULT_MODEL};
use crate::config::Config;
use crate::face::{DEFAULT_MODEL_PATH, DetectorConfig, FaceDetector};
use crate::pipeline::output::{OutputOptions, Outputs};
use crate::pipeline::source::{SourceOpener, input_opener};
use crate::pipeline::track::TrackConfig;
use crate::pipeline::{RunOptions, RunSummary, run_pipeline};
use crate::select::select;

/// The model folder to run and why: `--model`, else the sweep cell `select` picks (honouring
/// `--method/--k`), else the shipped default model.
pub fn choose_model(
    model: &Option<PathBuf>,
    method: &Option<String>,
    k: Option<usize>,
    budget_ms: Option<f64>,
    config: &Config,
) -> Result<(PathBuf, String)> {
    if let Some(m) = model {
        return Ok((m.clone(), format!("--model {}", m.display())));
    }
    let default = crate::assets::locate(Path::new(DEFAULT_MODEL));
    // The shipped model, when it was trained for the chosen cell, beats the sweep's short run.
    let default_for = |method: &str, k: usize| -> Option<(PathBuf, String)> {
        let meta: crate::train::run::ModelMeta =
            serde_json::from_str(&std::fs::read_to_string(default.join("meta.json")).ok()?).ok()?;
        (meta.method == method && meta.k == k).then(|| {
            (
                default.clone(),
                format!("the shipped default model, trained for {method} k={k}"),
            )
        })
    };
    let results = results_path(&None).ok();
    if let Some(results) = &results {
        let budget = budget_ms.unwrap_or(config.run.budget_ms);
        let s = select(results, budget, config.run.latency_weight, true)?;
        if method.is_some() || k.is_some() {
            let hit = s.candidates.iter().find(|c| {
                method.as_ref().is_none_or(|m| &c.method == m) && k.is_none_or(|k| c.k == k) && c.available
            });
            if let Some(c) = hit
                && let Some((dir, why)) = default_for(&c.method, c.k)
            {
                return Ok((dir, format!("--method/--k override: {why}")));
            }
            return match hit {
                Some(c) => Ok((
                    PathBuf::from(&c.model_dir),
                    format!(
                        "--method/--k override: {} k={} from {}",
                        c.method,
                        c.k,
                        results.display()
                    ),
                )),
                None => bail!(
                    "no trained model for --method {} --k {} in {} (available: {})",
                    method.as_deref().unwrap_or("any"),
                    k.map_or("any".to_string(), |k| k.to_string()),
                    results.display(),
                    s.candidates
                        .iter()
                        .filter(|c| c.available)
                        .map(|c| format!("{} k={}", c.method, c.k))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
        }
        if let Some((dir, why)) = default_for(&s.chosen.method, s.chosen.k) {
            return Ok((dir, format!("{}; using {why}", s.reason)));
        }
        if s.chosen.available {
            return Ok((PathBuf::from(&s.chosen.model_dir), s.reason));
        }
        log::info!(
            "{}: the sweep's models are not here; using the default model",
            results.display()
        );
    } else if method.is_some() || k.is_some() {
        if let Some(found) = method.as_deref().zip(k).and_then(|(m, k)| default_for(m, k)) {
            return Ok(found);
        }
        bail!("--method/--k choose among sweep results, and none were found under train/results/");
    }
    Ok((
        crate::assets::locate(Path::new(DEFAULT_MODEL)),
        "the shipped default model".to_string(),
    ))
}

/// Loads the face detector at the configured width.
pub fn load_detector(width: u32) -> Result<FaceDetector<Cpu>> {
    let cfg = DetectorConfig {
        width,
        ..DetectorConfig::default()
    };
    Ok(FaceDetector::load(
        &crate::assets::locate(Path::new(DEFAULT_MODEL_PATH)),
        cfg,
    )?)
}

/// Pipeline options from the config and flags.
pub fn run_options(config: &Config, detect_every: Option<u32>, live: bool) -> RunOptions {
    RunOptions {
        detect_every: detect_every.unwrap_or(config.run.detect_every),
        detect_async: live && config.run.detect_async,
        align: config.run.align,
        track: TrackConfig {
            ema: config.run.smoothing,
            ..TrackConfig::default()
        },
        ..RunOptions::default()
    }
}

#[cfg(feature = "camera")]
fn camera_source(index: u32) -> Result<SourceOpener> {
    Ok(crate::pipeline::camera::camera_opener(index))
}

#[cfg(not(feature = "camera"))]
fn camera_source(_index: u32) -> Result<SourceOpener> {
    bail!("this build has no camera support (the `camera` feature is off); use --input PATH")
}

/// Test-time augmentation for live runs: the model folder's views only when `run.model_tta` is
/// on (they multiply the per-face cost), then the command line's `--flip-tta` / `--zoom-tta`.
pub(super) fn live_tta(
    classifier: &mut Classifier<Cpu>,
    config: &Config,
    flip: Option<bool>,
    zoom: Option<bool>,
) {
    if !config.run.model_tta {
        classifier.set_flip_tta(false);
        classifier.set_zoom_tta(false);
    }
    if let Some(on) = flip {
        classifier.set_flip_tta(on);
    }
    if let Some(on) = zoom {
        classifier.set_zoom_tta(on);
    }
}

/// Runs `run`.
pub fn run(a: &RunArgs, config: &Config, json: bool) -> Result<()> {
    if a.list_cameras {
        return list_cameras(json);
    }
    if json && a.jsonl.as_deref() == Some("-") {
        bail!("--json and --jsonl - both want stdout; write the JSONL to a file instead");
    }
    let (dir, why) = choose_model(&a.model, &a.method, a.k, a.budget_ms, config)?;
    log::info!("model {}: {why}", dir.display());
    let mut classifier = Classifier::<Cpu>::load(&dir, &Default::default())?;
    live_tta(&mut classifier, config, a.flip_tta, a.zoom_tta);
    let detector = load_detector(a.detect_width.unwrap_or(config.run.detect_width))?;
    let (opener, live) = match &a.input {
        Some(p) => (input_opener(p, (a.loops != 0).then_some(a.loops))?, false),
        None => (camera_source(a.camera.unwrap_or(0))?, true),
    };
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        if let Err(e) = ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed)) {
            log::warn!("Ctrl-C handler not installed: {e}");
        }
    }
    let mut outputs = Outputs::new(OutputOptions {
        jsonl: a.jsonl.clone(),
        save_annotated: a.save_annotated.clone(),
        window: !a.headless,
        show_clusters: a.show_clusters,
        align: config.run.align,
        method: classifier.meta.method.clone(),
        k: classifier.meta.k,
    })?;
    let mut opts = run_options(config, a.detect_every, live);
    opts.stop = stop;
    opts.max_frames = a.max_frames;
    let (method, k) = (classifier.meta.method.clone(), classifier.meta.k);
    let s = run_pipeline(opener, live, detector, classifier, opts, &mut outputs)?;
    report(&s, &dir, &method, k, json)?;
    if let Some(e) = &s.source_error {
        bail!("the source is gone: {e}");
    }
    Ok(())
}

fn report(s: &RunSummary, dir: &Path, method: &str, k: usize, json: bool) -> Result<()> {
    let (p50, p95) = (percentile(&s.latencies, 0.5), percentile(&s.latencies, 0.95));
    if json {
        let mut v = serde_json::to_value(s)?;
        v["model"] = json!(dir.display().to_string());
        v["method"] = json!(method);
        v["k"] = json!(k);
        v["latency_p50_ms"] = json!(p50);
        v["latency_p95_ms"] = json!(p95);
        print_json(&v)
    } else {
        eprintln!(
            "{} frames in {:.1} s ({:.1} FPS), {} faces; dropped {}, skipped {}, faults {}; latency p50 {:.1} ms, p95 {:.1} ms",
            s.frames_out, s.seconds, s.fps, s.faces, s.dropped, s.skipped, s.faults, p50, p95
        );
        Ok(())
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

#[cfg(feature = "camera")]
fn list_cameras(json: bool) -> Result<()> {
    let cams = crate::pipeline::camera::list_cameras().map_err(anyhow::Error::msg)?;
    if json {
        print_json(&json!({ "cameras": cams }))
    } else {
        if cams.is_empty() {
            println!("no cameras found");
        }
        for c in cams {
            println!("{c}");
        }
        Ok(())
    }
}

#[cfg(not(feature = "camera"))]
fn list_cameras(_json: bool) -> Result<()> {
    bail!("this build has no camera support (the `camera` feature is off)")
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.95), 95.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[7.0], 0.95), 7.0);
    }
}
