//! `paca-fer bench`: the benchmarks behind the README's numbers.

use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::AdamConfig;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use serde_json::json;

use super::args::{BenchClusterArgs, BenchCommand, BenchTrainArgs};
use super::print_json;
use paca_fer::cluster::Method;
use paca_fer::cluster::bench::{BenchClusterArgs as ClusterBench, bench_cluster};
use paca_fer::config::Config;
use paca_fer::model::embed::EmbedderKind;
use paca_fer::model::{Vit, hard_assignment};
use paca_fer::patch::NUM_PATCHES;
use paca_fer::train::run::{RunSpec, model_config};
use paca_fer::train::trainer::{TrainOptions, train_step};

/// Runs a `bench` subcommand.
pub fn run(cmd: &BenchCommand, config: &Config, json: bool) -> Result<()> {
    match cmd {
        BenchCommand::Cluster(a) => cluster(a, json),
        BenchCommand::Train(a) => train(a, config, json),
        BenchCommand::Pipeline(a) => super::bench_pipeline::pipeline(a, config, json),
        BenchCommand::Frames(a) => super::bench_pipeline::frames(a, config, json),
        BenchCommand::Detect(a) => super::bench_detect::run(a, config, json),
    }
}

fn cluster(a: &BenchClusterArgs, json: bool) -> Result<()> {
    let method: Method = a
        .method
        .parse()
        .map_err(|e| anyhow::anyhow!("--method '{}': {e}", a.method))?;
    let mut args = ClusterBench::new(a.embeddings.clone(), method, a.k);
    args.threads = a.threads;
    args.labels_out = a.labels_out.clone();
    args.seed = a.seed;
    let v = bench_cluster(&args)?;
    if json {
        print_json(&v)?;
    } else {
        println!(
            "{} k={}: {} images of dim {} in {:.3} s on {} thread(s) = {:.1} µs/image",
            v["method"],
            v["k"],
            v["images"],
            v["dim"],
            v["seconds"].as_f64().unwrap_or(0.0),
            v["threads"],
            v["us_per_image"].as_f64().unwrap_or(0.0)
        );
    }
    Ok(())
}

/// Times forward + backward + Adam steps of the default model (config's shape, the default
/// embedder's feature width, hard patch-to-cluster attention with the config's k) on random inputs.
fn train(a: &BenchTrainArgs, config: &Config, json: bool) -> Result<()> {
    paca_fer::on_device!(train a.device.checked()?, |B, dev| train_on::<B>(a, config, json, &dev))
}

fn train_on<AB: AutodiffBackend>(
    a: &BenchTrainArgs,
    config: &Config,
    json: bool,
    device: &AB::Device,
) -> Result<()> {
    let embedder: EmbedderKind = config
        .model
        .embedder
        .parse()
        .with_context(|| format!("model.embedder '{}'", config.model.embedder))?;
    let spec_shape = RunSpec {
        name: String::new(),
        embedder,
        embedder_weights: None,
        d_model: config.model.d_model,
        heads: config.model.heads,
        depth: config.model.depth,
        mlp_ratio: config.model.mlp_ratio,
        train: TrainOptions {
            epochs: 1,
            batch_size: 1,
            lr: config.train.lr,
            seed: 0,
            label_smoothing: 0.0,
            cosine: false,
            checkpoint_dir: Default::default(),
            resume: false,
            progress: false,
            threads: 0,
        },
        out_dir: Default::default(),
        models_dir: Default::default(),
        cache_dir: Default::default(),
        max_train: None,
        cluster_seed: 0,
        shard: None,
    };
    let k = config.cluster.k;
    let cfg = model_config(&spec_shape, embedder.feat_dim(), &config.cluster.method, k);
    let batch = a.batch_size.unwrap_or(config.train.batch_size);
    let device = device.clone();
    <AB as Backend>::seed(&device, 0);
    let mut model: Vit<AB> = cfg.init(&device)?;
    let mut optim = AdamConfig::new().init::<AB, Vit<AB>>();
    let loss_fn = CrossEntropyLossConfig::new().init::<AB>(&device);
    let dim = cfg.in_dim;
    let x = Tensor::<AB, 3>::random([batch, NUM_PATCHES, dim], Distribution::Normal(0.0, 1.0), &device);
    let labels: Vec<u32> = (0..batch * NUM_PATCHES)
        .map(|i| ((i * 7 + i / NUM_PATCHES) % k) as u32)
        .collect();
    let assign = cfg
        .needs_assignment()
        .then(|| hard_assignment::<AB>(&labels, batch, NUM_PATCHES, k, &device))
        .transpose()?;
    let y: Vec<i64> = (0..batch as i64).map(|i| i % 8).collect();
    let y = Tensor::<AB, 1, Int>::from_data(TensorData::new(y, [batch]), &device);
    let threads = a.threads.unwrap_or(config.train.threads);
    let shards = TrainOptions {
        threads,
        ..spec_shape.train.clone()
    }
    .shards();
    let warmup = 3;
    let mut t0 = Instant::now();
    for step in 0..warmup + a.steps {
        if step == warmup {
            t0 = Instant::now();
        }
        (model, _) = train_step(
            model,
            &mut optim,
            &loss_fn,
            (x.clone(), assign.clone(), y.clone()),
            shards,
            step as u64,
            config.train.lr,
        )?;
    }
    let secs = t0.elapsed().as_secs_f64();
    let ips = (a.steps * batch) as f64 / secs;
    // Inference latency of one face through the ViT alone.
    let inner = model.valid();
    let x1 =
        Tensor::<AB::InnerBackend, 3>::random([1, NUM_PATCHES, dim], Distribution::Normal(0.0, 1.0), &device);
    let a1 = cfg
        .needs_assignment()
        .then(|| hard_assignment::<AB::InnerBackend>(&labels[..NUM_PATCHES], 1, NUM_PATCHES, k, &device))
        .transpose()?;
    let _ = inner.forward(x1.clone(), a1.clone());
    let t1 = Instant::now();
    for _ in 0..20 {
        let _ = inner.forward(x1.clone(), a1.clone()).into_data();
    }
    let infer_ms = t1.elapsed().as_secs_f64() * 1e3 / 20.0;
    let v = json!({
        "images_per_s": ips,
        "batch_size": batch,
        "steps": a.steps,
        "seconds": secs,
        "d_model": cfg.d_model,
        "depth": cfg.depth,
        "heads": cfg.heads,
        "in_dim": dim,
        "method": config.cluster.method,
        "k": k,
        "threads": shards,
        "infer_ms_batch1": infer_ms,
        "device": a.device.choice.name(),
    });
    if json {
        print_json(&v)?;
    } else {
        println!(
            "training: {ips:.0} images/s (batch {batch}, d_model {}, depth {}, {threads} threads); inference {infer_ms:.2} ms/face",
            cfg.d_model, cfg.depth
        );
    }
    Ok(())
}
