//! `paca-fer data stats`: per-class counts per split and the files that failed to decode.

use anyhow::{Context, Result};
use serde_json::json;

use super::args::{DataCommand, DataSource};
use super::print_json;
use paca_fer::config::Config;
use paca_fer::data::{Dataset, Layout, load_face};

/// Opens the dataset named by `--data`/`--layout`, falling back to `data.layout` from the config.
pub fn open_dataset(src: &DataSource, config: &Config) -> Result<Dataset> {
    let name = src.layout.as_deref().unwrap_or(&config.data.layout);
    let layout: Layout = name
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--layout: {e}"))?;
    Ok(Dataset::open(&src.data, layout)?)
}

/// Runs a `data` subcommand.
pub fn run(cmd: &DataCommand, config: &Config, json: bool) -> Result<()> {
    let DataCommand::Stats(a) = cmd;
    let mut ds = open_dataset(&a.source, config)?;
    let mut skipped = Vec::new();
    if !a.no_verify {
        use rayon::prelude::*;
        for samples in ds.splits.values_mut() {
            let bad: Vec<(usize, String)> = samples
                .par_iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    load_face(&s.path, config.image.size)
                        .err()
                        .map(|e| (i, e.to_string()))
                })
                .collect();
            for (i, msg) in bad.iter().rev() {
                log::warn!("skipping: {msg}");
                skipped.push(samples.remove(*i).path.display().to_string());
            }
        }
    }
    skipped.sort();
    let counts = ds.counts();
    let totals: serde_json::Map<_, _> = counts
        .iter()
        .map(|(s, c)| (s.clone(), json!(c.values().sum::<usize>())))
        .collect();
    if json {
        print_json(&json!({
            "root": ds.root.display().to_string(),
            "layout": ds.layout,
            "splits": counts,
            "totals": totals,
            "skipped": skipped.len(),
            "skipped_files": skipped,
        }))
        .context("writing JSON")?;
    } else {
        println!("{} ({:?})", ds.root.display(), ds.layout);
        for (split, per) in &counts {
            println!("  {split}: {} images", per.values().sum::<usize>());
            for (class, n) in per {
                println!("    {class:<9} {n:>7}");
            }
        }
        println!("  skipped (undecodable): {}", skipped.len());
        for f in &skipped {
            println!("    {f}");
        }
    }
    Ok(())
}
