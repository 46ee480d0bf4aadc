//! `paca-fer average`: a uniform "model soup" (Wortsman et al., 2022) — the mean of the weights of
//! several fine-tuned model folders that started from one model — evaluated and written as a new
//! model folder.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::args::AverageArgs;
use super::data_cmd::open_dataset;
use super::finetune_cmd::read_meta;
use super::print_json;
use paca_fer::backend::Cpu;
use paca_fer::cluster::ClusterSpec;
use paca_fer::config::Config;
use paca_fer::data::load_faces;
use paca_fer::model::embed::{EmbedderKind, FINETUNED_EMBEDDER_FILE, MobileNetV2Embedder};
use paca_fer::model::{ModelConfig, ModelMeta, load_model, save_model};
use paca_fer::train::checkpoint::write_atomic;
use paca_fer::train::finetune::{FaceNet, Reclustering, score_faces};
use paca_fer::train::run::splits_of;
use paca_fer::train::swa::WeightAverage;

/// One fine-tuned folder's network, configuration and metadata.
fn load_member(dir: &Path) -> Result<(FaceNet<Cpu>, ModelConfig, ModelMeta)> {
    let meta = read_meta(dir)?;
    if meta.embedder != EmbedderKind::MobileNetV2
        || meta.embedder_weights.as_deref() != Some(FINETUNED_EMBEDDER_FILE)
    {
        bail!(
            "{}: not a fine-tuned folder (its meta.json names no {FINETUNED_EMBEDDER_FILE}); \
             average folders written by `paca-fer finetune`",
            dir.display()
        );
    }
    let device = Default::default();
    let (vit, cfg) = load_model::<Cpu>(dir, &device)?;
    let embedder = MobileNetV2Embedder::<Cpu>::load(&dir.join(FINETUNED_EMBEDDER_FILE), &device)?;
    let clusters = meta.method.method().map(|m| Reclustering {
        spec: ClusterSpec {
            method: m.clone(),
            k: meta.k,
            seed: meta.cluster_seed,
        },
        slots: cfg.clusters().unwrap_or(meta.k),
    });
    Ok((
        FaceNet {
            embedder,
            vit,
            clusters,
        },
        cfg,
        meta,
    ))
}

/// Runs `average`.
pub fn run(a: &AverageArgs, config: &Config, json: bool) -> Result<()> {
    let (first, cfg, meta) = load_member(&a.models[0])?;
    let cfg_json = serde_json::to_value(&cfg)?;
    let mut soup = WeightAverage::new(first);
    for dir in &a.models[1..] {
        let (net, c, m) = load_member(dir)?;
        if serde_json::to_value(&c)? != cfg_json || m.method != meta.method || m.k != meta.k {
            bail!(
                "{}: its config.json or method differs from {}; only folders fine-tuned from one \
                 model can be averaged",
                dir.display(),
                a.models[0].display()
            );
        }
        soup.add(&net)
            .with_context(|| format!("averaging {}", dir.display()))?;
    }
    let net = soup.into_mean();

    let ds = open_dataset(&a.source, config)?;
    let (_, eval_s) = splits_of(
        &ds,
        config.data.per_class,
        config.data.test_fraction,
        config.data.split_seed,
    )?;
    let (eval, report) = load_faces(&eval_s, 96);
    let Some(m) = score_faces(&net, &eval, false, &Default::default())? else {
        bail!(
            "--data {}: no evaluation faces to score the average on",
            a.source.data.display()
        );
    };

    save_model(&a.out, &net.vit, &cfg)?;
    net.embedder.save_mpk(&a.out.join(FINETUNED_EMBEDDER_FILE))?;
    let out_meta = ModelMeta {
        metrics: m.clone(),
        data: a.source.data.display().to_string(),
        ..meta
    };
    out_meta.save(&a.out)?;
    write_atomic(
        &a.out.join("average.json"),
        serde_json::to_string_pretty(&json!({
            "models": a.models,
            "eval_faces": eval.len(),
            "skipped_images": report.skipped.len(),
        }))?
        .as_bytes(),
    )?;
    if json {
        print_json(&json!({ "model": a.out, "models": a.models.len(), "metrics": m }))?;
    } else {
        println!(
            "{}: mean of {} folders, accuracy {:.2} %, macro-F1 {:.3} on {} faces",
            a.out.display(),
            a.models.len(),
            m.accuracy * 100.0,
            m.macro_f1,
            m.images
        );
    }
    Ok(())
}
