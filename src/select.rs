//! Choosing the clustering method and k for the live runtime: the most accurate sweep cell whose
//! per-frame latency on this machine fits the frame budget (optionally trading accuracy for speed).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use image::RgbImage;
use serde::Serialize;

use crate::backend::Cpu;
use crate::classify::{Classifier, DEFAULT_MODEL};
use crate::config::Config;
use crate::sweep_results::{CellResult, read_file};

/// One sweep cell with the latency measured (or read) for it.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// Clustering method.
    pub method: String,
    /// k.
    pub k: usize,
    /// Accuracy from the sweep.
    pub accuracy: f64,
    /// Macro-F1 from the sweep.
    pub macro_f1: f64,
    /// Per-face latency of embedding + clustering + ViT, in milliseconds.
    pub latency_ms: f64,
    /// Whether the latency was measured on this machine (else taken from the results file).
    pub measured: bool,
    /// accuracy − weight × latency (the ranking score).
    pub score: f64,
    /// Model folder.
    pub model_dir: String,
    /// Whether the model folder exists here (sweep results may travel without their models).
    pub available: bool,
}

/// The choice and the reasoning behind it.
#[derive(Debug, Clone, Serialize)]
pub struct Selection {
    /// The chosen cell.
    pub chosen: Candidate,
    /// Budget used (ms per face).
    pub budget_ms: f64,
    /// Latency weight used (accuracy points per ms).
    pub latency_weight: f64,
    /// One sentence on why.
    pub reason: String,
    /// Every cell considered, best first.
    pub candidates: Vec<Candidate>,
}

/// The newest `results.json` under `root` (e.g. `train/results`).
pub fn newest_results(root: &Path) -> Option<PathBuf> {
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(root)
        .ok()?
        .flatten()
        .map(|e| e.path().join("results.json"))
        .filter(|p| p.is_file())
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p)
}

/// Measures one face's latency through a model folder (median of a few runs), if it loads.
fn measure(cell: &CellResult) -> Option<f64> {
    let clf = Classifier::<Cpu>::load(Path::new(&cell.model_dir), &Default::default()).ok()?;
    let face = RgbImage::from_fn(96, 96, |x, y| {
        image::Rgb([(x * 2) as u8, (y * 2) as u8, ((x + y) % 256) as u8])
    });
    let _ = clf.classify(std::slice::from_ref(&face)).ok()?;
    let mut times: Vec<f64> = (0..7)
        .filter_map(|_| {
            let t = Instant::now();
            clf.classify(std::slice::from_ref(&face)).ok()?;
            Some(t.elapsed().as_secs_f64() * 1e3)
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times.get(times.len() / 2).copied()
}

/// Ranks the cells of `results` and picks one: the best score among those within `budget_ms`, or the
/// fastest cell when none fits. `measure_latency` re-times each model here (else the file's numbers).
pub fn select(
    results: &Path,
    budget_ms: f64,
    latency_weight: f64,
    measure_latency: bool,
) -> Result<Selection> {
    let r = read_file(results)?;
    if r.cells.is_empty() {
        bail!("{} has no trained cells", results.display());
    }
    let mut cands: Vec<Candidate> = r
        .cells
        .iter()
        .map(|c| {
            let measured = if measure_latency { measure(c) } else { None };
            let latency_ms = measured.unwrap_or(c.cluster_us_per_image / 1e3 + c.model_ms_per_image);
            Candidate {
                method: c.method.clone(),
                k: c.k,
                accuracy: c.accuracy,
                macro_f1: c.macro_f1,
                latency_ms,
                measured: measured.is_some(),
                score: c.accuracy - latency_weight * latency_ms,
                model_dir: c.model_dir.clone(),
                available: Path::new(&c.model_dir).join("model.mpk").is_file(),
            }
        })
        .collect();
    cands.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.latency_ms.total_cmp(&b.latency_ms))
    });
    // Prefer cells whose model is here; fall back to all when none is (the caller checks).
    let any_here = cands.iter().any(|c| c.available);
    let usable = |c: &&Candidate| c.available || !any_here;
    let within: Vec<&Candidate> = cands
        .iter()
        .filter(usable)
        .filter(|c| c.latency_ms <= budget_ms)
        .collect();
    let (chosen, reason) = match within.first() {
        Some(c) => (
            (*c).clone(),
            format!(
                "{} k={} has the best score ({:.2} % accuracy) among the {} of {} cells within {budget_ms} ms per face ({:.2} ms)",
                c.method,
                c.k,
                c.accuracy * 100.0,
                within.len(),
                cands.len(),
                c.latency_ms
            ),
        ),
        None => {
            let fastest = cands
                .iter()
                .filter(usable)
                .min_by(|a, b| a.latency_ms.total_cmp(&b.latency_ms))
                .cloned();
            let Some(f) = fastest else { bail!("no candidates") };
            let reason = format!(
                "no cell fits {budget_ms} ms per face; {} k={} is the fastest ({:.2} ms)",
                f.method, f.k, f.latency_ms
            );
            (f, reason)
        }
    };
    Ok(Selection {
        chosen,
        budget_ms,
        latency_weight,
        reason,
        candidates: cands,
    })
}

/// The sweep results `select` reads: `flag` (`--results`) when given, else the newest
/// `results.json` under `train/results/`.
pub fn results_path(flag: &Option<PathBuf>) -> Result<PathBuf> {
    match flag {
        Some(p) => Ok(p.clone()),
        None => newest_results(Path::new("train/results")).context(
            "no sweep results found under train/results/ (run `paca-fer train --sweep config/sweep.toml` or pass --results FILE)",
        ),
    }
}

/// The model folder to run and why: `--model`, else the sweep cell `select` picks (honouring
/// `--method/--k`), else the shipped default model. The arguments are the `run` flags of the
/// same names.
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
        let meta = crate::model::ModelMeta::load(&default).ok()?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::embed::EmbedderKind;
    use crate::sweep_results::write;

    fn cell(method: &str, k: usize, acc: f64, us: f64, ms: f64) -> CellResult {
        CellResult {
            method: method.into(),
            k,
            clusters: k,
            accuracy: acc,
            macro_f1: acc / 2.0,
            per_class: Default::default(),
            confusion: vec![vec![0; 8]; 8],
            cluster_seconds: 0.0,
            cluster_us_per_image: us,
            model_ms_per_image: ms,
            train_images_per_s: 0.0,
            train_seconds: 0.0,
            params: 0,
            epochs: 1,
            train_images: 1,
            eval_images: 1,
            model_dir: "/nonexistent".into(),
        }
    }

    #[test]
    fn picks_most_accurate_within_budget_else_fastest() {
        let dir = tempfile::tempdir().unwrap();
        let cells = vec![
            cell("spectral", 2, 0.50, 40_000.0, 5.0), // 45 ms: over a 33 ms budget
            cell("kmeans", 4, 0.47, 100.0, 5.0),      // 5.1 ms
            cell("agglomerative", 2, 0.45, 50.0, 5.0), // 5.05 ms
        ];
        write(dir.path(), "t", EmbedderKind::Pixels, &cells).unwrap();
        let p = dir.path().join("results.json");
        let s = select(&p, 33.0, 0.0, false).unwrap();
        assert_eq!((s.chosen.method.as_str(), s.chosen.k), ("kmeans", 4));
        let s = select(&p, 100.0, 0.0, false).unwrap();
        assert_eq!(s.chosen.method, "spectral");
        let s = select(&p, 1.0, 0.0, false).unwrap();
        assert_eq!(s.chosen.method, "agglomerative");
        assert!(s.reason.contains("fastest"));
        // A strong latency weight prefers the faster of the two that fit.
        let s = select(&p, 33.0, 0.5, false).unwrap();
        assert_eq!(s.chosen.method, "agglomerative");
    }
}
