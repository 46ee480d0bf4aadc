//! The sweep's results table: `results.json` (complete, machine-readable), `results.csv` and
//! `results.md` (the study's table: accuracy and clustering time per method and k). Written by
//! the training sweep, read by `select` (so the runtime never imports training).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::model::Grouping;
use crate::model::embed::EmbedderKind;

/// Writes `bytes` to `path` durably ([`crate::files::write_atomic`]), naming the file on error.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::files::write_atomic(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// One trained cell of the sweep.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CellResult {
    /// How patches were grouped (`none` = patch-to-patch, `learned` = soft assignment, or a method).
    pub method: Grouping,
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
    /// Every cell of the sweep this file belongs to, in sweep order ([`CellResult::name`]); a
    /// shard's file lists the whole sweep, so merged shards can be checked and ordered.
    #[serde(default)]
    pub sweep: Vec<String>,
    /// Which part of the sweep this file holds (`None`: all of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// The cells, in training order.
    pub cells: Vec<CellResult>,
}

/// One of `count` parts of a sweep: the cells whose index in the sweep is `index` modulo `count`
/// (`--shard I/N`, 0-based so a Slurm array's task id can be passed as it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This part, `0..count`.
    pub index: usize,
    /// Parts the sweep is split into.
    pub count: usize,
}

impl Shard {
    /// Whether the sweep's `i`-th cell belongs to this shard.
    pub fn holds(&self, i: usize) -> bool {
        i % self.count == self.index
    }

    /// Folder of the shard's results inside the run's folder: `shard-0-of-2`.
    pub fn folder(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("'{s}' is not I/N with 0 <= I < N (e.g. 0/2 and 1/2 for two shards)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl CellResult {
    /// The cell's name (`kmeans-k2`), as in [`Results::sweep`] and model folder names.
    pub fn name(&self) -> String {
        self.method.cell_name(self.k)
    }
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

/// Merges the results files of a sweep's shards into the table one unsharded run writes: the
/// same run, embedder and sweep in every part, no cell twice, every cell of the sweep present,
/// cells in sweep order. Errors name the files and cells at fault.
pub fn merge(parts: &[(PathBuf, Results)]) -> Result<Results> {
    let Some((first_path, first)) = parts.first() else {
        bail!("nothing to merge: name the shards' results folders");
    };
    for (path, r) in &parts[1..] {
        if (&r.run, r.embedder, &r.sweep) != (&first.run, first.embedder, &first.sweep) {
            bail!(
                "{} (run {}, embedder {}, {} cells) and {} (run {}, embedder {}, {} cells) are not parts of one sweep",
                first_path.display(),
                first.run,
                first.embedder,
                first.sweep.len(),
                path.display(),
                r.run,
                r.embedder,
                r.sweep.len()
            );
        }
    }
    let mut found: BTreeMap<String, (&Path, &CellResult)> = BTreeMap::new();
    for (path, r) in parts {
        for c in &r.cells {
            if let Some((other, _)) = found.insert(c.name(), (path, c)) {
                bail!(
                    "cell {} is in both {} and {}",
                    c.name(),
                    other.display(),
                    path.display()
                );
            }
        }
    }
    if let Some(stray) = found.keys().find(|n| !first.sweep.contains(n)) {
        bail!("cell {stray} is not in the sweep of {}", first_path.display());
    }
    let missing: Vec<&str> = first
        .sweep
        .iter()
        .filter(|n| !found.contains_key(*n))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        bail!(
            "the shards given hold no result for {} (of the {} cells of sweep {}); merge every shard once all have finished",
            missing.join(", "),
            first.sweep.len(),
            first.run
        );
    }
    Ok(Results {
        run: first.run.clone(),
        embedder: first.embedder,
        sweep: first.sweep.clone(),
        shard: None,
        cells: first.sweep.iter().map(|n| found[n].1.clone()).collect(),
    })
}

/// Writes results.json, results.csv and results.md into `dir` (each write-then-rename).
pub fn write(dir: &Path, all: &Results) -> Result<()> {
    let cells = &all.cells;
    write_atomic(
        &dir.join("results.json"),
        serde_json::to_string_pretty(all)?.as_bytes(),
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
    write_atomic(
        &dir.join("results.md"),
        markdown(&all.run, all.embedder, cells).as_bytes(),
    )?;
    Ok(())
}

/// The study-style markdown table.
pub fn markdown(run: &str, embedder: EmbedderKind, cells: &[CellResult]) -> String {
    let mut s = format!("# Sweep `{run}` (embedder `{embedder}`)\n\n");
    s.push_str("| method | k | accuracy | macro-F1 | clustering µs/image | clustering s (all images) | model ms/image | train img/s | epochs | train faces |\n");
    s.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for c in cells {
        let _ = writeln!(
            s,
            "| {} | {} | {:.2} % | {:.3} | {:.1} | {:.2} | {:.3} | {:.0} | {} | {} |",
            c.method,
            c.k,
            c.accuracy * 100.0,
            c.macro_f1,
            c.cluster_us_per_image,
            c.cluster_seconds,
            c.model_ms_per_image,
            c.train_images_per_s,
            c.epochs,
            c.train_images
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(method: &str, k: usize, accuracy: f64) -> CellResult {
        CellResult {
            method: method.parse().unwrap(),
            k,
            clusters: k,
            accuracy,
            macro_f1: accuracy / 2.0,
            per_class: Default::default(),
            confusion: vec![],
            cluster_seconds: 0.0,
            cluster_us_per_image: 0.0,
            model_ms_per_image: 0.0,
            train_images_per_s: 0.0,
            train_seconds: 0.0,
            params: 0,
            epochs: 1,
            train_images: 1,
            eval_images: 1,
            model_dir: String::new(),
        }
    }

    fn part(cells: Vec<CellResult>, index: usize) -> (PathBuf, Results) {
        let sweep = ["kmeans-k2", "kmeans-k4", "none-k36"].map(String::from).to_vec();
        let shard = Some(Shard { index, count: 2 });
        let r = Results {
            run: "r".into(),
            embedder: EmbedderKind::Pixels,
            sweep,
            shard,
            cells,
        };
        (PathBuf::from(format!("shard-{index}")), r)
    }

    #[test]
    fn shards_parse_from_i_of_n_and_hold_every_nth_cell() {
        let s: Shard = "1/3".parse().unwrap();
        assert_eq!((s.index, s.count, s.folder()), (1, 3, "shard-1-of-3".to_string()));
        assert_eq!((0..7).filter(|&i| s.holds(i)).collect::<Vec<_>>(), [1, 4]);
        for bad in ["3/3", "1", "a/2", "1/0", "-1/2"] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn merge_orders_cells_by_the_sweep_and_refuses_gaps_and_doubles() {
        let a = part(vec![cell("kmeans", 2, 0.5), cell("none", 36, 0.7)], 0);
        let b = part(vec![cell("kmeans", 4, 0.6)], 1);
        let m = merge(&[b.clone(), a.clone()]).unwrap();
        let names: Vec<String> = m.cells.iter().map(CellResult::name).collect();
        assert_eq!(names, ["kmeans-k2", "kmeans-k4", "none-k36"]);
        assert_eq!((m.shard, m.cells[1].accuracy), (None, 0.6));

        let e = merge(std::slice::from_ref(&a)).unwrap_err().to_string();
        assert!(e.contains("kmeans-k4"), "{e}");
        let e = merge(&[a.clone(), a.clone()]).unwrap_err().to_string();
        assert!(e.contains("in both shard-0 and shard-0"), "{e}");
        let mut other = b.clone();
        other.1.run = "another".into();
        let e = merge(&[a, other]).unwrap_err().to_string();
        assert!(e.contains("not parts of one sweep"), "{e}");
    }
}
