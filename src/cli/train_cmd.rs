//! `paca-fer train`: one cell or the whole sweep.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::json;

use super::args::{MergeArgs, TrainAction, TrainArgs};
use super::data_cmd::open_dataset;
use super::print_json;
use paca_fer::config::Config;
use paca_fer::model::embed::EmbedderKind;
use paca_fer::train::run::{RunSpec, merge_shards, run_cells, splits_of};
use paca_fer::train::sweep::{Cell, Sweep};
use paca_fer::train::trainer::TrainOptions;

/// Default location of the shipped MobileNetV2 weights.
pub const MOBILENET_WEIGHTS: &str = "models/embedders/mobilenet_v2_imagenet_torchvision.safetensors";

/// Runs `train`.
pub fn run(a: &TrainArgs, config: &Config, json: bool) -> Result<()> {
    if let Some(TrainAction::Merge(m)) = &a.action {
        return merge(m, json);
    }
    let source = a
        .source
        .as_ref()
        .context("train needs --data DIR (or a step: `train merge DIR...`)")?;
    let ds = open_dataset(source, config)?;
    let (cells, embedder_name) = match &a.sweep {
        Some(p) => {
            let s = Sweep::load(p)?;
            (s.cells(), a.embedder.clone().unwrap_or(s.embedder))
        }
        None => (
            vec![Cell {
                method: a.method.clone().unwrap_or_else(|| config.cluster.method.clone()),
                k: a.k.unwrap_or(config.cluster.k),
            }],
            a.embedder
                .clone()
                .unwrap_or_else(|| config.model.embedder.clone()),
        ),
    };
    let embedder: EmbedderKind = embedder_name
        .parse()
        .with_context(|| format!("--embedder: '{embedder_name}'"))?;
    let embedder_weights = match (&a.embedder_weights, embedder) {
        (Some(p), _) => Some(p.clone()),
        (None, EmbedderKind::MobileNetV2) => Some(paca_fer::assets::locate(Path::new(MOBILENET_WEIGHTS))),
        _ => None,
    };
    let mut epochs = a.epochs.unwrap_or(config.train.epochs);
    let mut max_train = None;
    if a.quick {
        epochs = a.epochs.unwrap_or(3);
        max_train = Some(4000);
    }
    let data_name = ds
        .root
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("data")
        .to_string();
    let name = format!(
        "{}-{}{}",
        data_name,
        embedder.to_string().replace(':', "_"),
        if a.quick { "-quick" } else { "" }
    );
    let spec = RunSpec {
        name,
        embedder,
        embedder_weights,
        d_model: config.model.d_model,
        heads: config.model.heads,
        depth: config.model.depth,
        mlp_ratio: config.model.mlp_ratio,
        train: TrainOptions {
            epochs,
            batch_size: a.batch_size.unwrap_or(config.train.batch_size),
            lr: a.lr.unwrap_or(config.train.lr),
            seed: a.seed.unwrap_or(config.train.seed),
            label_smoothing: config.train.label_smoothing,
            cosine: config.train.lr_schedule == "cosine",
            checkpoint_dir: PathBuf::new(),
            resume: a.resume,
            progress: !json,
            threads: a.threads.unwrap_or(config.train.threads),
        },
        out_dir: a.out.clone(),
        models_dir: a.models_dir.clone(),
        cache_dir: PathBuf::from("train/cache"),
        max_train,
        cluster_seed: config.train.seed,
        shard: a.shard,
    };
    let split = splits_of(
        &ds,
        config.data.per_class,
        config.data.test_fraction,
        config.data.split_seed,
    )?;
    let results = paca_fer::on_device!(train a.device.checked()?, |B, dev| run_cells::<B>(
        &spec, &ds, split, &cells, &dev
    )?);
    let out = spec.results_dir();
    if json {
        print_json(&json!({ "run": spec.name, "results": out.join("results.json"), "cells": results }))?;
    } else {
        let md = std::fs::read_to_string(out.join("results.md")).unwrap_or_default();
        println!("{md}\nwritten: {}/results.{{json,csv,md}}", out.display());
    }
    Ok(())
}

/// Runs `train merge`: the shards' tables joined into one, written beside them unless `--out` says.
fn merge(m: &MergeArgs, json: bool) -> Result<()> {
    let out = match &m.out {
        Some(o) => o.clone(),
        None => m.shards[0]
            .parent()
            .map(Path::to_path_buf)
            .context("--out is needed when the first shard folder has no parent")?,
    };
    let merged = merge_shards(&m.shards, &out)?;
    if json {
        print_json(
            &json!({ "run": merged.run, "results": out.join("results.json"), "cells": merged.cells }),
        )?;
    } else {
        let md = std::fs::read_to_string(out.join("results.md")).unwrap_or_default();
        println!(
            "{md}\nmerged {} shards: {}/results.{{json,csv,md}}",
            m.shards.len(),
            out.display()
        );
    }
    Ok(())
}
