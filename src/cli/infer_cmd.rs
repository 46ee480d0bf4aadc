//! `paca-fer eval` and `paca-fer predict`: a trained model folder on a dataset split or on images.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::json;

use super::args::{EvalArgs, PredictArgs};
use super::data_cmd::open_dataset;
use super::print_json;
use burn::tensor::backend::Backend;
use paca_fer::classify::{Classifier, DEFAULT_MODEL};
use paca_fer::config::Config;
use paca_fer::data::{load_face, load_faces};
use paca_fer::labels::Emotion;
use paca_fer::metrics;

fn model_dir(flag: &Option<PathBuf>) -> PathBuf {
    flag.clone()
        .unwrap_or_else(|| paca_fer::assets::locate(Path::new(DEFAULT_MODEL)))
}

/// Runs `eval`: accuracy, macro-F1, per-class accuracy and confusion on one split.
pub fn eval(a: &EvalArgs, config: &Config, json: bool) -> Result<()> {
    paca_fer::on_device!(a.device.checked()?, |B, _D, dev| eval_on::<B>(
        a, config, json, &dev
    ))
}

fn eval_on<B: Backend>(a: &EvalArgs, config: &Config, json: bool, device: &B::Device) -> Result<()> {
    let dir = model_dir(&a.model);
    let mut clf = Classifier::<B>::load(&dir, device)?;
    if let Some(on) = a.flip_tta {
        clf.set_flip_tta(on);
    }
    if let Some(on) = a.zoom_tta {
        clf.set_zoom_tta(on);
    }
    let ds = open_dataset(&a.source, config)?;
    // Unsplit folders: `--split all` (or the default `test`) evaluates every image.
    let samples = match ds.split(&a.split) {
        Ok(s) => s,
        Err(e) if ds.splits.len() == 1 && ds.splits.contains_key("all") => {
            log::info!("{e}; evaluating all images");
            ds.split("all")?
        }
        Err(e) => return Err(e.into()),
    };
    let (faces, report) = load_faces(samples, config.image.size);
    let mut truth = Vec::with_capacity(faces.len());
    let mut pred = Vec::with_capacity(faces.len());
    let bar = paca_fer::progress::bar(!json, faces.len().div_ceil(256) as u64, "evaluating");
    for chunk in faces.chunks(256) {
        let imgs: Vec<_> = chunk.iter().map(|(i, _)| i.clone()).collect();
        for (p, (_, e)) in clf.classify(&imgs)?.into_iter().zip(chunk) {
            pred.push(p.label.index());
            truth.push(e.index());
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let m = metrics::compute(&truth, &pred);
    if json {
        print_json(&json!({
            "accuracy": m.accuracy,
            "macro_f1": m.macro_f1,
            "per_class": m.per_class,
            "confusion": m.confusion,
            "images": m.images,
            "skipped": report.skipped.len(),
            "model": dir.display().to_string(),
            "split": a.split,
            "flip_tta": clf.meta.flip_tta,
            "zoom_tta": clf.meta.zoom_tta,
        }))?;
    } else {
        println!(
            "model {} on {} ({} images, {} skipped)",
            dir.display(),
            a.split,
            m.images,
            report.skipped.len()
        );
        println!(
            "accuracy {:.2} %   macro-F1 {:.3}",
            m.accuracy * 100.0,
            m.macro_f1
        );
        for (c, acc) in &m.per_class {
            println!("  {c:<9} {:.1} %", acc * 100.0);
        }
    }
    Ok(())
}

/// Runs `predict`: label and probabilities per face image.
pub fn predict(a: &PredictArgs, config: &Config, json: bool) -> Result<()> {
    paca_fer::on_device!(a.device.checked()?, |B, _D, dev| predict_on::<B>(
        a, config, json, &dev
    ))
}

fn predict_on<B: Backend>(a: &PredictArgs, config: &Config, json: bool, device: &B::Device) -> Result<()> {
    let dir = model_dir(&a.model);
    let clf = Classifier::<B>::load(&dir, device)?;
    let mut rows = Vec::new();
    for path in &a.images {
        let face =
            load_face(path, config.image.size).with_context(|| format!("predicting {}", path.display()))?;
        let p = clf.classify(std::slice::from_ref(&face))?.remove(0);
        rows.push((path.as_path(), p));
    }
    if json {
        let faces: Vec<_> = rows
            .iter()
            .map(|(path, p)| {
                let probs: serde_json::Map<_, _> = Emotion::ALL
                    .iter()
                    .zip(p.probs)
                    .map(|(e, v)| (e.name().to_string(), json!(v)))
                    .collect();
                json!({ "image": path.display().to_string(), "label": p.label, "probs": probs })
            })
            .collect();
        print_json(&json!({ "model": dir.display().to_string(), "predictions": faces }))?;
    } else {
        for (path, p) in &rows {
            print_row(path, &p.probs, p.label);
        }
    }
    Ok(())
}

fn print_row(path: &Path, probs: &[f32], label: Emotion) {
    let top: Vec<String> = Emotion::ALL
        .iter()
        .zip(probs)
        .map(|(e, p)| format!("{}={:.2}", e.name(), p))
        .collect();
    println!("{}: {}  ({})", path.display(), label, top.join(" "));
}
