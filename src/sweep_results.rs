//! The sweep's results table: `results.json` (complete, machine-readable), `results.csv` and
//! `results.md` (the study's table: accuracy and clustering time per method and k). Written by
//! the training sweep, read by `select` (so the runtime never imports training).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::model::embed::EmbedderKind;

/// Writes `bytes` to `path` durably ([`crate::files::write_atomic`]), naming the file on error.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::files::write_atomic(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// One trained cell of the sweep.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CellResult {
    /// Clustering method (`none` = patch-to-patch, `learned` = soft assignment).
    pub method: String,
    /// k asked for.
    pub k: usize,
    /// Cluster slots the model attends over (may exceed k for DBSCAN).
    pub clusters: usize,
    /// Accuracy on the evaluation split.
    pub accuracy: f64,
    /// Macro-F1 on the evaluation split.
    pub macro_f1: f64,
    /// Per-class accuracy.
    pub per_class: BTreeMap<String, f64>,
    /// Confusion matrix (rows true, columns predicted).
    pub confusion: Vec<Vec<u64>>,
    /// Seconds spent clustering the train and evaluation images.
    pub cluster_seconds: f64,
    /// Clustering time per image in microseconds.
    pub cluster_us_per_image: f64,
    /// Batched inference time per image in milliseconds.
    pub model_ms_per_image: f64,
    /// Training throughput.
    pub train_images_per_s: f64,
    /// Seconds of training.
    pub train_seconds: f64,
    /// Trainable parameters.
    pub params: usize,
    /// Epochs trained.
    pub epochs: usize,
    /// Training images.
    pub train_images: usize,
    /// Evaluation images.
    pub eval_images: usize,
    /// Folder of the trained model.
    pub model_dir: String,
}

/// The whole results file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    /// Run name.
    pub run: String,
    /// Embedder of every cell.
    pub embedder: EmbedderKind,
    /// The cells, in training order.
    pub cells: Vec<CellResult>,
}

/// Reads `<dir>/results.json`'s cells.
pub fn read(dir: &Path) -> Result<Vec<CellResult>> {
    Ok(read_file(&dir.join("results.json"))?.cells)
}

/// Reads a results.json file.
pub fn read_file(path: &Path) -> Result<Results> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a paca-fer results file (expected run, embedder, cells)",
            path.display()
        )
    })
}

/// Writes results.json, results.csv and results.md into `dir` (each write-then-rename).
pub fn write(dir: &Path, run: &str, embedder: EmbedderKind, cells: &[CellResult]) -> Result<()> {
    let all = Results {
        run: run.to_string(),
        embedder,
        cells: cells.to_vec(),
    };
    write_atomic(
        &dir.join("results.json"),
        serde_json::to_string_pretty(&all)?.as_bytes(),
    )?;
    let mut csv = String::from(
        "method,k,clusters,accuracy,macro_f1,cluster_seconds,cluster_us_per_image,model_ms_per_image,train_images_per_s,params,epochs,train_images,eval_images\n",
    );
    for c in cells {
        let _ = writeln!(
            csv,
            "{},{},{},{:.4},{:.4},{:.3},{:.1},{:.3},{:.1},{},{},{},{}",
            c.method,
            c.k,
            c.clusters,
            c.accuracy,
            c.macro_f1,
            c.cluster_seconds,
            c.cluster_us_per_image,
            c.model_ms_per_image,
            c.train_images_per_s,
            c.params,
            c.epochs,
            c.train_images,
            c.eval_images
        );
    }
    write_atomic(&dir.join("results.csv"), csv.as_bytes())?;
    write_atomic(&dir.join("results.md"), markdown(run, embedder, cells).as_bytes())?;
    Ok(())
}

/// The study-style markdown table.
pub fn markdown(run: &str, embedder: EmbedderKind, cells: &[CellResult]) -> String {
    let mut s = format!("# Sweep `{run}` (embedder `{embedder}`)\n\n");
    s.push_str("| method | k | accuracy | macro-F1 | clustering µs/image | clustering s (all images) | model ms/image | train img/s | epochs |\n");
    s.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for c in cells {
        let _ = writeln!(
            s,
            "| {} | {} | {:.2} % | {:.3} | {:.1} | {:.2} | {:.3} | {:.0} | {} |",
            c.method,
            c.k,
            c.accuracy * 100.0,
            c.macro_f1,
            c.cluster_us_per_image,
            c.cluster_seconds,
            c.model_ms_per_image,
            c.train_images_per_s,
            c.epochs
        );
    }
    if let Some(best) = cells.iter().max_by(|a, b| a.accuracy.total_cmp(&b.accuracy)) {
        let _ = writeln!(
            s,
            "\nBest: {} k={} at {:.2} % accuracy.",
            best.method,
            best.k,
            best.accuracy * 100.0
        );
    }
    s
}
