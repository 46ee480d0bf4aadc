//! `paca-fer run`: choose the model (sweep selection or `--model`), open the source, and stream
//! frames through detection, classification and the outputs until the input ends or the user stops.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, bail};
use serde_json::json;

use super::args::RunArgs;
use super::print_json;
use burn::tensor::backend::Backend;
use paca_fer::classify::Classifier;
use paca_fer::config::Config;
use paca_fer::face::FaceDetector;
use paca_fer::model::Grouping;
use paca_fer::pipeline::output::{OutputOptions, Outputs};
use paca_fer::pipeline::results::percentile;
use paca_fer::pipeline::source::{SourceOpener, open_input, pipeline_opener};
use paca_fer::pipeline::{RunOptions, RunSummary, run_pipeline};
use paca_fer::select::choose_model;

#[cfg(feature = "camera")]
fn camera_source(index: u32) -> Result<SourceOpener> {
    Ok(paca_fer::pipeline::camera::camera_opener(index))
}

#[cfg(not(feature = "camera"))]
fn camera_source(_index: u32) -> Result<SourceOpener> {
    bail!("this build has no camera support (the `camera` feature is off); use --input PATH")
}

/// Runs `run`.
pub fn run(a: &RunArgs, config: &Config, json: bool) -> Result<()> {
    if a.list_cameras {
        return list_cameras(json);
    }
    if json && a.jsonl.as_deref() == Some("-") {
        bail!("--json and --jsonl - both want stdout; write the JSONL to a file instead");
    }
    paca_fer::on_device!(a.device.checked()?, |B, D, dev| run_on::<B, D>(
        a,
        config,
        json,
        &dev,
        &Default::default()
    ))
}

/// `run` with the ViT and embedder on backend `B` and the detector on `D`.
fn run_on<B: Backend, D: Backend>(
    a: &RunArgs,
    config: &Config,
    json: bool,
    device: &B::Device,
    detector_device: &D::Device,
) -> Result<()>
where
    Classifier<B>: Sync,
    FaceDetector<D>: Sync,
{
    let (dir, why) = choose_model::<B>(&a.model, &a.method, a.k, a.budget_ms, config, device)?;
    log::info!("model {}: {why}", dir.display());
    let mut classifier = Classifier::<B>::load(&dir, device)?;
    classifier.set_live_tta(config.run.model_tta, a.flip_tta, a.zoom_tta);
    let detector = FaceDetector::<D>::load_shipped_on(a.detector.detector_config(config), detector_device)?;
    let (opener, live) = match (&a.input, &a.gst) {
        (Some(p), _) => open_input(p, (a.loops != 0).then_some(a.loops))?,
        (None, Some(g)) => (pipeline_opener(g)?, true),
        (None, None) => (camera_source(a.camera.unwrap_or(0))?, true),
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
    let mut opts = RunOptions::from_config(config, live);
    a.schedule.apply(&mut opts);
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

fn report(s: &RunSummary, dir: &Path, method: &Grouping, k: usize, json: bool) -> Result<()> {
    let (p50, p95) = (percentile(&s.latencies, 0.5), percentile(&s.latencies, 0.95));
    if json {
        let mut v = serde_json::to_value(s)?;
        v["model"] = json!(dir.display().to_string());
        v["method"] = json!(method.to_string());
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

#[cfg(feature = "camera")]
fn list_cameras(json: bool) -> Result<()> {
    let cams = paca_fer::pipeline::camera::list_cameras().map_err(anyhow::Error::msg)?;
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
