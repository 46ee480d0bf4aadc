//! The model zoo (`models/zoo/`): one model folder per product-sweep cell, all sharing one trunk
//! file, and an index (accuracy, macro-F1, per-stage cost of a face) that `select` and `run`
//! choose from.
//!
//! ```text
//! models/zoo/index.json            what follows, as data
//! models/zoo/index.md              the same as a table
//! models/zoo/embedder.mpk          the shared trunk (here the fine-tuned MobileNetV2)
//! models/zoo/<cell>/{config.json, model.mpk, meta.json}
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::backend::Backend;
use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::backend::Cpu;
use crate::classify::{Classifier, StageTimes};
use crate::model::embed::FINETUNED_EMBEDDER_FILE;
use crate::model::{CONFIG_FILE, Grouping, META_FILE, MODEL_FILE, ModelMeta};
use crate::sweep_results::{CellResult, read_file};

/// Where the zoo ships, relative to the repository root.
pub const ZOO_DIR: &str = "models/zoo";
/// The zoo's index file.
pub const INDEX_FILE: &str = "index.json";

/// The zoo's index: every model in it and what it costs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ZooIndex {
    /// The sweep results the zoo was built from.
    pub source: String,
    /// Where the stage costs were measured (CPU model and cores).
    pub timed_on: String,
    /// The models, in sweep order.
    pub entries: Vec<ZooEntry>,
}

/// A trained model and how it scored on its evaluation split: what the zoo index and `select`
/// list for every model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trained {
    /// Cell name and folder inside the zoo (`kmeans-k4`).
    pub name: String,
    /// How patches are grouped.
    pub method: Grouping,
    /// k.
    pub k: usize,
    /// Accuracy on the evaluation split.
    pub accuracy: f64,
    /// Macro-F1 on the evaluation split.
    pub macro_f1: f64,
    /// Faces in the evaluation split (the standard error of `accuracy` follows from it).
    pub eval_images: usize,
}

impl Trained {
    /// The model of a sweep's cell.
    pub fn of(c: &CellResult) -> Trained {
        Trained {
            name: c.name(),
            method: c.method.clone(),
            k: c.k,
            accuracy: c.accuracy,
            macro_f1: c.macro_f1,
            eval_images: c.eval_images,
        }
    }
}

/// One model of the zoo.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ZooEntry {
    /// Which model and how it scored.
    #[serde(flatten)]
    pub trained: Trained,
    /// Epochs trained (a sweep cell's; `None` for a fine-tuned folder added with `--add`, whose
    /// stages its own `finetune.json` records).
    #[serde(default)]
    pub epochs: Option<usize>,
    /// Median cost of one face per stage, in milliseconds, measured when the zoo was built.
    pub stage_ms: StageTimes,
}

impl ZooIndex {
    /// Reads `<dir>/index.json`.
    pub fn load(dir: &Path) -> Result<ZooIndex> {
        let path = dir.join(INDEX_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not a model zoo index", path.display()))
    }
}

/// A description of this machine's CPU for timing records: model name and logical cores.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cpu}, {cores} logical cores")
}

/// Median per-stage cost of classifying one face with the model in `dir` on this machine and
/// `device` (one face a call, as the live runtime does; the folder's test-time views off, as live
/// runs have them).
pub fn time_stages<B: Backend>(dir: &Path, runs: usize, device: &B::Device) -> Result<StageTimes> {
    time_stages_interleaved::<B>(&[dir], runs, device)
        .pop()
        .expect("one result per folder")
}

/// [`time_stages`] for several model folders, their runs interleaved (one face through each model
/// in turn, `runs` rounds), so a drift in the machine's speed while they are timed (another job,
/// the clock) falls on all of them alike and their order by cost stays meaningful. A folder that
/// does not load gets its error; the others are still timed.
pub fn time_stages_interleaved<B: Backend>(
    dirs: &[&Path],
    runs: usize,
    device: &B::Device,
) -> Vec<Result<StageTimes>> {
    // A face-like test card: smooth gradients and an edge, so clustering has structure to find.
    let face = RgbImage::from_fn(96, 96, |x, y| {
        let v = if (x as i32 - 48).pow(2) + (y as i32 - 44).pow(2) < 900 {
            180
        } else {
            60
        };
        image::Rgb([(v + x) as u8, (v + y / 2) as u8, v as u8])
    });
    let faces = std::slice::from_ref(&face);
    let mut models: Vec<Result<(Classifier<B>, Vec<StageTimes>)>> = dirs
        .iter()
        .map(|dir| {
            let mut clf = Classifier::<B>::load(dir, device)?;
            clf.set_live_tta(false, None, None);
            clf.classify_timed(faces)?; // warm-up
            Ok((clf, Vec::with_capacity(runs.max(1))))
        })
        .collect();
    for _ in 0..runs.max(1) {
        for m in &mut models {
            if let Ok((clf, times)) = m {
                match clf.classify_timed(faces) {
                    Ok((_, t)) => times.push(t),
                    Err(e) => *m = Err(e),
                }
            }
        }
    }
    let median = |f: fn(&StageTimes) -> f64, all: &mut Vec<StageTimes>| {
        all.sort_by(|a, b| f(a).total_cmp(&f(b)));
        f(&all[all.len() / 2])
    };
    models
        .into_iter()
        .map(|m| {
            let (_, mut all) = m?;
            Ok(StageTimes {
                embed: median(|t| t.embed, &mut all),
                cluster: median(|t| t.cluster, &mut all),
                model: median(|t| t.model, &mut all),
            })
        })
        .collect()
}

/// Builds a zoo in `out` from a sweep's `results.json`: copies every cell's model folder that
/// exists, stores the trunk the cells were trained on once as `out/embedder.mpk` (every cell must
/// name the same trunk file; `pixels` models have none), times each model here, and writes the
/// index. Cells without a model folder are skipped with a warning.
pub fn build(results: &Path, added: &[PathBuf], out: &Path, timing_runs: usize) -> Result<ZooIndex> {
    let r = read_file(results)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    // The trunk file of the first model; every other model must name the same one (`None`: an
    // embedder without weights, `pixels`).
    let mut trunk: Option<Option<PathBuf>> = None;
    let mut entries = Vec::new();
    for c in &r.cells {
        let src = Path::new(&c.model_dir);
        if !src.join(MODEL_FILE).is_file() {
            log::warn!(
                "{}: no model folder at {}, left out of the zoo",
                c.name(),
                src.display()
            );
            continue;
        }
        let mut meta = ModelMeta::load(src)?;
        let weights = meta.embedder_weights.as_ref().map(PathBuf::from);
        match &trunk {
            None => {
                if let Some(w) = &weights {
                    let bytes = std::fs::read(w).with_context(|| format!("reading {}", w.display()))?;
                    crate::files::write_atomic(&out.join(file_name(w)?), &bytes)?;
                }
                trunk = Some(weights.clone());
            }
            Some(t) if t != &weights => bail!(
                "{}: trained on {:?}, but the zoo's other models on {:?}; a zoo shares one trunk",
                src.display(),
                weights,
                t
            ),
            Some(_) => {}
        }
        if let Some(w) = &weights {
            // The shared copy beside the model folders (looked up in the folder's parent).
            meta.embedder_weights = Some(file_name(w)?);
        }
        let name = c.name();
        let dst = out.join(&name);
        std::fs::create_dir_all(&dst).with_context(|| format!("creating {}", dst.display()))?;
        for f in [CONFIG_FILE, MODEL_FILE] {
            let bytes =
                std::fs::read(src.join(f)).with_context(|| format!("reading {}", src.join(f).display()))?;
            crate::files::write_atomic(&dst.join(f), &bytes)?;
        }
        meta.save(&dst)?;
        entries.push(ZooEntry {
            trained: Trained::of(c),
            epochs: Some(c.epochs),
            stage_ms: StageTimes::default(), // timed below, with the others
        });
    }
    if entries.is_empty() {
        bail!("{}: none of its cells has a model folder here", results.display());
    }
    for src in added {
        let entry = add_finetuned(src, out)?;
        if entries.iter().any(|e| e.trained.name == entry.trained.name) {
            bail!(
                "--add {}: the zoo already has a model named {}",
                src.display(),
                entry.trained.name
            );
        }
        entries.push(entry);
    }
    let dirs: Vec<PathBuf> = entries.iter().map(|e| out.join(&e.trained.name)).collect();
    let dir_refs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    let times = time_stages_interleaved::<Cpu>(&dir_refs, timing_runs, &Default::default());
    for (e, t) in entries.iter_mut().zip(times) {
        e.stage_ms = t.with_context(|| format!("timing {}", out.join(&e.trained.name).display()))?;
        let t = &e.stage_ms;
        log::info!(
            "{}: {:.2} % accuracy, {:.2} ms a face",
            e.trained.name,
            e.trained.accuracy * 100.0,
            t.embed + t.cluster + t.model
        );
    }
    let index = ZooIndex {
        source: results.display().to_string(),
        timed_on: machine(),
        entries,
    };
    crate::files::write_atomic(
        &out.join(INDEX_FILE),
        serde_json::to_string_pretty(&index)?.as_bytes(),
    )?;
    crate::files::write_atomic(&out.join("index.md"), markdown(&index).as_bytes())?;
    Ok(index)
}

/// Copies a fine-tuned model folder (its own trunk `embedder.mpk`, scored one view at a time in
/// its `meta.json`, as `finetune` and `average` write it) into the zoo as `<out>/<folder name>/`,
/// trunk included (its costs are measured afterwards, with the zoo's other models).
fn add_finetuned(src: &Path, out: &Path) -> Result<ZooEntry> {
    let own = src.join(FINETUNED_EMBEDDER_FILE);
    if !own.is_file() {
        bail!(
            "--add {}: no {FINETUNED_EMBEDDER_FILE} there; --add takes a fine-tuned model folder \
             (written by `paca-fer finetune` or `average`), a sweep's cells come from RESULTS",
            src.display()
        );
    }
    let meta = ModelMeta::load(src).with_context(|| format!("--add {}", src.display()))?;
    let name = file_name(src)?;
    let dst = out.join(&name);
    std::fs::create_dir_all(&dst).with_context(|| format!("creating {}", dst.display()))?;
    for f in [
        CONFIG_FILE,
        MODEL_FILE,
        META_FILE,
        FINETUNED_EMBEDDER_FILE,
        FINETUNE_LOG,
    ] {
        let path = src.join(f);
        if f == FINETUNE_LOG && !path.is_file() {
            continue; // the training record travels when there is one
        }
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        crate::files::write_atomic(&dst.join(f), &bytes)?;
    }
    let m = &meta.metrics;
    Ok(ZooEntry {
        trained: Trained {
            name,
            method: meta.method.clone(),
            k: meta.k,
            accuracy: m.accuracy,
            macro_f1: m.macro_f1,
            eval_images: m.images,
        },
        epochs: None,
        stage_ms: StageTimes::default(),
    })
}

/// `finetune`'s record of a run (options, per-epoch log), copied with an added folder.
const FINETUNE_LOG: &str = "finetune.json";

/// The file name of a trunk path, which its copy in the zoo keeps (`embedder.mpk`, `….safetensors`).
fn file_name(path: &Path) -> Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .with_context(|| format!("{}: not a file name", path.display()))
}

/// The index as a markdown table.
pub fn markdown(index: &ZooIndex) -> String {
    let mut s = format!(
        "# Model zoo\n\nBuilt from `{}`; stage costs are medians for one face, measured on {}.\n\n",
        index.source, index.timed_on
    );
    s.push_str("| model | accuracy | macro-F1 | epochs | embed ms | cluster ms | ViT ms | total ms |\n");
    s.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for e in &index.entries {
        let t = &e.stage_ms;
        let _ = writeln!(
            s,
            "| {} | {:.2} % | {:.3} | {} | {:.2} | {:.3} | {:.2} | {:.2} |",
            e.trained.name,
            e.trained.accuracy * 100.0,
            e.trained.macro_f1,
            e.epochs
                .map_or_else(|| "fine-tuned".to_string(), |n| n.to_string()),
            t.embed,
            t.cluster,
            t.model,
            t.embed + t.cluster + t.model
        );
    }
    s
}
