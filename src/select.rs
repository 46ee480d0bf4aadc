//! Choosing the model the live runtime runs: among the shipped zoo's models (or a sweep's, with
//! `--results`) that exist here, the most accurate whose per-face cost on this machine fits the
//! frame budget, with accuracies within the validation split's standard error treated as ties and
//! broken by cost. Deterministic: the same files and timings give the same choice, whatever the
//! files' dates.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use burn::tensor::backend::Backend;
use serde::Serialize;

use crate::classify::DEFAULT_MODEL;
use crate::config::Config;
use crate::model::{Grouping, MODEL_FILE};
use crate::sweep_results::read_file;
use crate::zoo::{Trained, ZOO_DIR, ZooIndex, time_stages_interleaved};

/// One model that could run, with its cost measured (or read) for it.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// Which model and how it scored.
    #[serde(flatten)]
    pub trained: Trained,
    /// Per-face cost of embedding + clustering + ViT, in milliseconds.
    pub latency_ms: f64,
    /// Whether the cost was measured on this machine now (else read from the index or results).
    pub measured: bool,
    /// accuracy − weight × latency (the ranking score).
    pub score: f64,
    /// Model folder.
    pub model_dir: PathBuf,
    /// Whether the model folder is here (results may travel without their models); a missing
    /// model is listed but never chosen.
    pub available: bool,
}

impl Candidate {
    /// Whether the model runs the study's pipeline: patches grouped into clusters (hard or
    /// learned) as keys and values, not patch-to-patch attention.
    pub fn runs_the_study(&self) -> bool {
        !matches!(self.trained.method, Grouping::PatchToPatch)
    }
}

/// The choice and the reasoning behind it.
#[derive(Debug, Clone, Serialize)]
pub struct Selection {
    /// The chosen model.
    pub chosen: Candidate,
    /// Where the candidates came from (a zoo index or a results file).
    pub source: PathBuf,
    /// Budget used (ms per face).
    pub budget_ms: f64,
    /// Latency weight used (accuracy per ms).
    pub latency_weight: f64,
    /// Standard error of the best accuracy on its evaluation split: scores this close are ties.
    pub tie_margin: f64,
    /// One sentence on why.
    pub reason: String,
    /// Every model considered, best score first.
    pub candidates: Vec<Candidate>,
}

/// Where `select` reads its candidates from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A model zoo folder with an `index.json` (the shipped `models/zoo` by default).
    Zoo(PathBuf),
    /// A sweep's `results.json` (its cells' `model_dir`s).
    Results(PathBuf),
}

impl Source {
    /// The shipped zoo, found from any working directory.
    pub fn shipped_zoo() -> Source {
        Source::Zoo(crate::assets::locate(Path::new(ZOO_DIR)))
    }

    /// The file the candidates are read from.
    pub fn path(&self) -> PathBuf {
        match self {
            Source::Zoo(d) => d.join(crate::zoo::INDEX_FILE),
            Source::Results(p) => p.clone(),
        }
    }
}

/// The candidates of `source` in its order, their costs as recorded there.
pub fn candidates(source: &Source) -> Result<Vec<Candidate>> {
    let cand = |trained: Trained, latency_ms: f64, model_dir: PathBuf| Candidate {
        available: model_dir.join(MODEL_FILE).is_file(),
        trained,
        latency_ms,
        measured: false,
        score: 0.0,
        model_dir,
    };
    let list: Vec<Candidate> = match source {
        Source::Zoo(dir) => ZooIndex::load(dir)?
            .entries
            .into_iter()
            .map(|e| {
                let t = e.stage_ms;
                let folder = dir.join(&e.trained.name);
                cand(e.trained, t.embed + t.cluster + t.model, folder)
            })
            .collect(),
        Source::Results(path) => read_file(path)?
            .cells
            .iter()
            .map(|c| {
                let latency = c.cluster_us_per_image / 1e3 + c.model_ms_per_image;
                cand(Trained::of(c), latency, PathBuf::from(&c.model_dir))
            })
            .collect(),
    };
    if list.is_empty() {
        bail!("{} lists no models", source.path().display());
    }
    Ok(list)
}

/// Standard error of an accuracy `p` measured on `n` faces: `sqrt(p (1 − p) / n)`.
pub fn standard_error(p: f64, n: usize) -> f64 {
    if n == 0 {
        0.0
    } else {
        (p * (1.0 - p) / n as f64).sqrt()
    }
}

/// Costs within this fraction of the cheapest tie's are one cost: per-face timings on a shared
/// CPU wander by more than that between runs, so a finer order would be noise.
pub const COST_TIE: f64 = 0.10;

/// Ranks `cands` and picks one. Among the available models within `budget_ms` the best score
/// (accuracy − `latency_weight` × ms) sets the bar; every model within one standard error of the
/// best accuracy's bar ties, and the cheapest tie wins. Ties whose costs are within [`COST_TIE`]
/// of the cheapest are decided without the clock, so the choice does not flip from run to run:
/// the more accurate, then a patch-to-cluster model (the study's pipeline, which the product
/// exists to run) over patch-to-patch, then the higher macro-F1, then the name.
/// When no model fits the budget, the fastest available one is chosen.
pub fn choose(
    mut cands: Vec<Candidate>,
    budget_ms: f64,
    latency_weight: f64,
    source: &Path,
) -> Result<Selection> {
    for c in &mut cands {
        c.score = c.trained.accuracy - latency_weight * c.latency_ms;
    }
    let order = |a: &Candidate, b: &Candidate| {
        b.score
            .total_cmp(&a.score)
            .then(a.latency_ms.total_cmp(&b.latency_ms))
            .then(a.trained.name.cmp(&b.trained.name))
    };
    cands.sort_by(order);
    let here: Vec<&Candidate> = cands.iter().filter(|c| c.available).collect();
    if here.is_empty() {
        bail!(
            "none of the {} models in {} is here ({}); pass --model DIR",
            cands.len(),
            source.display(),
            cands
                .iter()
                .map(|c| c.model_dir.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let fit: Vec<&Candidate> = here
        .iter()
        .copied()
        .filter(|c| c.latency_ms <= budget_ms)
        .collect();
    let (chosen, tie_margin, reason) = match fit.first() {
        Some(best) => {
            let margin = standard_error(best.trained.accuracy, best.trained.eval_images);
            let ties: Vec<&Candidate> = fit
                .iter()
                .copied()
                .filter(|c| c.score >= best.score - margin)
                .collect();
            let cheapest = ties.iter().map(|c| c.latency_ms).fold(f64::INFINITY, f64::min);
            let chosen = ties
                .iter()
                .copied()
                .filter(|c| c.latency_ms <= cheapest * (1.0 + COST_TIE))
                .min_by(|a, b| {
                    b.trained
                        .accuracy
                        .total_cmp(&a.trained.accuracy)
                        .then(b.runs_the_study().cmp(&a.runs_the_study()))
                        .then(b.trained.macro_f1.total_cmp(&a.trained.macro_f1))
                        .then(a.trained.name.cmp(&b.trained.name))
                })
                .unwrap_or(best);
            let fits = format!(
                "{} of {} models fit {budget_ms} ms a face",
                fit.len(),
                cands.len()
            );
            let reason = if chosen.trained.name == best.trained.name {
                format!(
                    "{} has the best score ({:.2} % accuracy, {:.2} ms a face); {fits}; no cheaper model is within the standard error ({:.2} points)",
                    chosen.trained.name,
                    chosen.trained.accuracy * 100.0,
                    chosen.latency_ms,
                    margin * 100.0
                )
            } else {
                format!(
                    "{} ({:.2} %, {:.2} ms a face) is within the standard error ({:.2} points) of the best, {} ({:.2} %, {:.2} ms), and costs at most {:.0} % more than the cheapest such model (costs that close count as equal; then accuracy, the study's patch-to-cluster pipeline, macro-F1 and name decide); {fits}",
                    chosen.trained.name,
                    chosen.trained.accuracy * 100.0,
                    chosen.latency_ms,
                    margin * 100.0,
                    best.trained.name,
                    best.trained.accuracy * 100.0,
                    best.latency_ms,
                    COST_TIE * 100.0
                )
            };
            (chosen.clone(), margin, reason)
        }
        None => {
            let fastest = here
                .iter()
                .min_by(|a, b| {
                    a.latency_ms
                        .total_cmp(&b.latency_ms)
                        .then(a.trained.name.cmp(&b.trained.name))
                })
                .copied()
                .expect("at least one model is here");
            let reason = format!(
                "no model fits {budget_ms} ms a face; {} is the fastest ({:.2} ms)",
                fastest.trained.name, fastest.latency_ms
            );
            (fastest.clone(), 0.0, reason)
        }
    };
    Ok(Selection {
        chosen,
        source: source.to_path_buf(),
        budget_ms,
        latency_weight,
        tie_margin,
        reason,
        candidates: cands,
    })
}

/// Re-times every available candidate on this machine and `device` (one face, median of 7 runs);
/// a model that fails to time keeps its recorded cost, with a warning.
fn retime<B: Backend>(cands: &mut [Candidate], device: &B::Device) {
    let mut avail: Vec<&mut Candidate> = cands.iter_mut().filter(|c| c.available).collect();
    let dirs: Vec<&Path> = avail.iter().map(|c| c.model_dir.as_path()).collect();
    let times = time_stages_interleaved::<B>(&dirs, 7, device);
    for (c, t) in avail.iter_mut().zip(times) {
        match t {
            Ok(t) => {
                c.latency_ms = t.embed + t.cluster + t.model;
                c.measured = true;
            }
            Err(e) => log::warn!(
                "{}: not timed ({e:#}); using the recorded cost",
                c.model_dir.display()
            ),
        }
    }
}

/// Reads `source`'s candidates, re-times every available model on this machine and `device`
/// when `measure` (else uses the recorded costs), and [`choose`]s.
pub fn select<B: Backend>(
    source: &Source,
    budget_ms: f64,
    latency_weight: f64,
    measure: bool,
    device: &B::Device,
) -> Result<Selection> {
    let mut cands = candidates(source)?;
    if measure {
        retime::<B>(&mut cands, device);
    }
    choose(cands, budget_ms, latency_weight, &source.path())
}

/// The model folder `run` uses and why: `--model`; else the shipped zoo's choice for this machine
/// (among the models matching `--method`/`--k` when given); else the shipped default model when
/// no zoo is here. Candidates are timed on `device`, where the runtime will run them.
pub fn choose_model<B: Backend>(
    model: &Option<PathBuf>,
    method: &Option<Grouping>,
    k: Option<usize>,
    budget_ms: Option<f64>,
    config: &Config,
    device: &B::Device,
) -> Result<(PathBuf, String)> {
    if let Some(m) = model {
        return Ok((m.clone(), format!("--model {}", m.display())));
    }
    let source = Source::shipped_zoo();
    if !source.path().is_file() {
        if method.is_some() || k.is_some() {
            bail!(
                "--method/--k choose among the zoo's models, and there is no zoo at {}; pass --model DIR",
                source.path().display()
            );
        }
        return Ok((
            crate::assets::locate(Path::new(DEFAULT_MODEL)),
            format!(
                "the shipped default model (no model zoo at {})",
                source.path().display()
            ),
        ));
    }
    let budget = budget_ms.unwrap_or(config.run.budget_ms);
    let all = candidates(&source)?;
    let matching: Vec<Candidate> = all
        .iter()
        .filter(|c| {
            method.as_ref().is_none_or(|m| &c.trained.method == m) && k.is_none_or(|k| c.trained.k == k)
        })
        .cloned()
        .collect();
    if matching.is_empty() {
        bail!(
            "no model in {} for --method {} --k {} (the zoo has: {})",
            source.path().display(),
            method.as_ref().map_or("any".to_string(), |m| m.to_string()),
            k.map_or("any".to_string(), |k| k.to_string()),
            all.iter()
                .map(|c| c.trained.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut timed = matching;
    retime::<B>(&mut timed, device);
    let s = choose(timed, budget, config.run.latency_weight, &source.path())?;
    let why = if method.is_some() || k.is_some() {
        format!("--method/--k: {}", s.reason)
    } else {
        s.reason
    };
    Ok((s.chosen.model_dir, why))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(name: &str, acc: f64, ms: f64, available: bool) -> Candidate {
        let (method, k) = name.rsplit_once("-k").unwrap();
        Candidate {
            trained: Trained {
                name: name.into(),
                method: method.parse().unwrap(),
                k: k.parse().unwrap(),
                accuracy: acc,
                macro_f1: acc / 2.0,
                eval_images: 3191,
            },
            latency_ms: ms,
            measured: false,
            score: 0.0,
            model_dir: PathBuf::from("/nonexistent").join(name),
            available,
        }
    }

    fn pick(c: Vec<Candidate>, budget: f64, weight: f64) -> Selection {
        choose(c, budget, weight, Path::new("index.json")).unwrap()
    }

    #[test]
    fn the_most_accurate_model_in_budget_wins_unless_a_cheaper_one_ties() {
        // SE of 0.84 on 3,191 faces is 0.65 points.
        let cells = || {
            vec![
                cand("spectral-k2", 0.86, 45.0, true), // over a 33 ms budget
                cand("none-k36", 0.840, 6.0, true),
                cand("kmeans-k4", 0.836, 5.0, true), // 0.4 points below: a tie, and cheaper
                cand("kmeans-k8", 0.820, 4.0, true), // 2 points below: not a tie
            ]
        };
        let s = pick(cells(), 33.0, 0.0);
        assert_eq!(s.chosen.trained.name, "kmeans-k4", "{}", s.reason);
        assert!((s.tie_margin - standard_error(0.84, 3191)).abs() < 1e-12);
        assert!(
            s.reason.contains("within the standard error") && s.reason.contains("none-k36"),
            "{}",
            s.reason
        );
        assert_eq!(pick(cells(), 100.0, 0.0).chosen.trained.name, "spectral-k2");
        let s = pick(cells(), 1.0, 0.0);
        assert_eq!(s.chosen.trained.name, "kmeans-k8");
        assert!(s.reason.contains("fastest"), "{}", s.reason);
        // A heavy latency weight makes speed worth accuracy.
        assert_eq!(pick(cells(), 33.0, 0.05).chosen.trained.name, "kmeans-k8");
    }

    /// Two equally accurate models whose costs differ by less than the clock's noise: the choice
    /// is the same whichever measured cheaper, and goes to the study's pipeline; a clearly
    /// cheaper patch-to-patch model, or a more accurate one, still wins.
    #[test]
    fn a_cost_difference_within_the_noise_does_not_decide() {
        let pair = |ms_none: f64, ms_clustered: f64, acc_none: f64| {
            let mut none = cand("none-k36", acc_none, ms_none, true);
            none.trained.macro_f1 = 0.683;
            let mut agg = cand("agglomerative-k4", 0.8352, ms_clustered, true);
            agg.trained.macro_f1 = 0.660;
            vec![none, agg]
        };
        for (a, b) in [(9.96, 10.17), (11.78, 10.93), (10.0, 10.9)] {
            let s = pick(pair(a, b, 0.8352), 33.0, 0.0);
            assert_eq!(
                s.chosen.trained.name, "agglomerative-k4",
                "{a} vs {b}: {}",
                s.reason
            );
        }
        assert_eq!(
            pick(pair(9.0, 10.5, 0.8352), 33.0, 0.0).chosen.trained.name,
            "none-k36"
        );
        assert_eq!(
            pick(pair(10.0, 10.2, 0.8380), 33.0, 0.0).chosen.trained.name,
            "none-k36"
        );
    }

    #[test]
    fn a_missing_model_is_never_chosen_and_order_does_not_matter() {
        let mut cells = vec![
            cand("none-k36", 0.90, 3.0, false),
            cand("kmeans-k2", 0.80, 5.0, true),
            cand("agglomerative-k2", 0.80, 5.0, true),
        ];
        let a = pick(cells.clone(), 33.0, 0.0);
        cells.reverse();
        let b = pick(cells, 33.0, 0.0);
        assert_eq!(
            a.chosen.trained.name, "agglomerative-k2",
            "equal cost: the name decides"
        );
        assert_eq!(b.chosen.trained.name, a.chosen.trained.name);
        let e = choose(
            vec![cand("none-k36", 0.9, 3.0, false)],
            33.0,
            0.0,
            Path::new("i.json"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("none of the 1 models"), "{e}");
    }

    #[test]
    fn standard_error_is_the_binomial_one() {
        assert!((standard_error(0.5, 100) - 0.05).abs() < 1e-12);
        assert_eq!(standard_error(0.7, 0), 0.0);
    }
}
