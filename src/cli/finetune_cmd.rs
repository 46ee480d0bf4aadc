//! `paca-fer finetune`: end-to-end training of a model folder's MobileNetV2 trunk and ViT.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use burn::tensor::backend::AutodiffBackend;
use serde_json::json;

use super::args::{Depthwise, FinetuneArgs};
use super::data_cmd::open_dataset;
use super::print_json;
use super::train_cmd::MOBILENET_WEIGHTS;
use paca_fer::backend::DeviceChoice;
use paca_fer::classify::embedder_weights;
use paca_fer::cluster::ClusterSpec;
use paca_fer::config::Config;
use paca_fer::data::{Sample, VoteDistribution, load_faces, one_hot, read_votes_dir};
use paca_fer::model::embed::{
    EmbedderKind, FINETUNED_EMBEDDER_FILE, MOBILENET_V2_BLOCKS, MobileNetV2Embedder,
};
use paca_fer::model::{ModelMeta, load_model, save_model};
use paca_fer::train::augment::Augment;
use paca_fer::train::checkpoint::{self, write_atomic};
use paca_fer::train::finetune::{FaceNet, FinetuneOptions, Reclustering, finetune, trainable};
use paca_fer::train::run::splits_of;

/// Refuses flag values the training loop cannot use, naming the flag.
fn check_args(a: &FinetuneArgs) -> Result<()> {
    if a.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    for (flag, v) in [("--lr", a.lr), ("--embed-lr", a.embed_lr)] {
        if !(v.is_finite() && v >= 0.0) {
            bail!("{flag} must be a finite learning rate ≥ 0, got {v}");
        }
    }
    if !(0.0..1.0).contains(&a.label_smoothing) {
        bail!("--label-smoothing must be in [0, 1), got {}", a.label_smoothing);
    }
    if a.freeze_blocks > MOBILENET_V2_BLOCKS {
        bail!(
            "--freeze-blocks must be at most {MOBILENET_V2_BLOCKS} (the trunk's blocks), got {}",
            a.freeze_blocks
        );
    }
    if a.swa_epochs > a.epochs {
        bail!(
            "--swa-epochs must be at most --epochs ({}), got {}",
            a.epochs,
            a.swa_epochs
        );
    }
    if !(a.swa_lr.is_finite() && a.swa_lr > 0.0 && a.swa_lr <= 1.0) {
        bail!("--swa-lr must be a fraction in (0, 1], got {}", a.swa_lr);
    }
    if let Some(m) = a.budget_min
        && !(m.is_finite() && m > 0.0)
    {
        bail!("--budget-min must be a positive number of minutes, got {m}");
    }
    Ok(())
}

/// Runs `finetune`.
pub fn run(a: &FinetuneArgs, config: &Config, json: bool) -> Result<()> {
    check_args(a)?;
    let device = a.device.checked()?;
    let shifted = shifted_depthwise(a.depthwise, device);
    match device {
        DeviceChoice::Cpu => {
            run_on::<paca_fer::backend::CpuTrain>(a, config, json, shifted, &Default::default())
        }
        #[cfg(feature = "cuda")]
        DeviceChoice::Cuda => {
            run_on::<paca_fer::backend::GpuTrain>(a, config, json, shifted, &Default::default())
        }
        #[cfg(not(feature = "cuda"))]
        DeviceChoice::Cuda => unreachable!("DeviceFlag::checked refuses cuda without the feature"),
        #[cfg(feature = "flex")]
        DeviceChoice::Flex => {
            run_on::<paca_fer::backend::FlexTrain>(a, config, json, shifted, &Default::default())
        }
        #[cfg(not(feature = "flex"))]
        DeviceChoice::Flex => unreachable!("DeviceFlag::checked refuses flex without the feature"),
    }
}

/// Whether the depthwise layers train as shifted products: `auto` takes the form measured faster
/// on the device (the grouped convolution on both CPU backends; on the GPU the shifted form's
/// gradients are the fast ones).
fn shifted_depthwise(choice: Depthwise, device: DeviceChoice) -> bool {
    match choice {
        Depthwise::Grouped => false,
        Depthwise::Shifted => true,
        Depthwise::Auto => matches!(device, DeviceChoice::Cuda),
    }
}

/// One FER+ vote distribution per loaded training face (samples minus `skipped`, in order);
/// faces the vote files do not list keep their one-hot label.
fn soft_targets(
    root: &Path,
    samples: &[Sample],
    skipped: &[(PathBuf, String)],
) -> Result<Vec<VoteDistribution>> {
    let dir = root.join("votes");
    let votes = read_votes_dir(&dir).with_context(|| {
        format!(
            "--soft-labels: cannot read FER+ vote files {}/*_label.csv",
            dir.display()
        )
    })?;
    let skipped: HashSet<&PathBuf> = skipped.iter().map(|(p, _)| p).collect();
    let mut missing = 0usize;
    let targets: Vec<VoteDistribution> = samples
        .iter()
        .filter(|s| !skipped.contains(&s.path))
        .map(|s| {
            let name = s.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            votes.get(name).copied().unwrap_or_else(|| {
                missing += 1;
                one_hot(s.label)
            })
        })
        .collect();
    if missing == targets.len() {
        bail!(
            "--soft-labels: none of the {} training images is listed in {}/*_label.csv",
            targets.len(),
            dir.display()
        );
    }
    if missing > 0 {
        log::warn!("{missing} training faces have no FER+ votes; their labels are used as they are");
    }
    Ok(targets)
}

/// Reads the starting model folder's metadata.
pub(super) fn read_meta(dir: &Path) -> Result<ModelMeta> {
    ModelMeta::load(dir).with_context(|| {
        format!(
            "--init {}: not a model folder written by `paca-fer train`",
            dir.display()
        )
    })
}

/// The flags that define a fine-tuning run, by name: a resumed run must repeat them. `--device`,
/// `--depthwise` (same values either way) and `--budget-min` may change between the pieces of a
/// run (resume a GPU run on the CPU, give it more time); the budget's epoch cut, once made, is kept.
fn run_identity(a: &FinetuneArgs) -> BTreeMap<String, serde_json::Value> {
    [
        ("--data", json!(a.source.data)),
        ("--layout", json!(a.source.layout)),
        ("--init", json!(a.init)),
        ("--embedder-weights", json!(a.embedder_weights)),
        ("--epochs", json!(a.epochs)),
        ("--batch-size", json!(a.batch_size)),
        ("--lr", json!(a.lr)),
        ("--embed-lr", json!(a.embed_lr)),
        ("--warmup-steps", json!(a.warmup_steps)),
        ("--label-smoothing", json!(a.label_smoothing)),
        ("--freeze-blocks", json!(a.freeze_blocks)),
        ("--soft-labels", json!(a.soft_labels)),
        ("--swa-epochs", json!(a.swa_epochs)),
        ("--swa-lr", json!(a.swa_lr)),
        ("--seed", json!(a.seed)),
        ("--no-augment", json!(a.no_augment)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn run_on<B: AutodiffBackend>(
    a: &FinetuneArgs,
    config: &Config,
    json: bool,
    shifted_depthwise: bool,
    device: &B::Device,
) -> Result<()> {
    let t_start = Instant::now();
    let init_meta = read_meta(&a.init)?;
    if init_meta.embedder != EmbedderKind::MobileNetV2 {
        bail!(
            "--init {}: fine-tuning needs a mobilenet_v2 model, this one uses the {} embedder",
            a.init.display(),
            init_meta.embedder
        );
    }
    let (vit, cfg) = load_model::<B>(&a.init, device)?;
    // The trunk the ViT was trained on: the folder's own, else --embedder-weights, else the one
    // its meta.json names (a sweep's cells name theirs), else the shipped ImageNet weights.
    let weights = match (&a.embedder_weights, init_meta.embedder_weights.as_deref()) {
        (_, Some(FINETUNED_EMBEDDER_FILE)) | (None, Some(_)) => embedder_weights(&a.init, &init_meta)?
            .unwrap_or_else(|| paca_fer::assets::locate(Path::new(MOBILENET_WEIGHTS))),
        (Some(w), _) => w.clone(),
        (None, None) => paca_fer::assets::locate(Path::new(MOBILENET_WEIGHTS)),
    };
    log::info!("trunk: {}", weights.display());
    let embedder = MobileNetV2Embedder::<B>::load(&weights, device)?;
    // A hard patch-to-cluster ViT is fine-tuned with its clusters recomputed from the trunk's
    // current features at every step.
    let clusters = match (cfg.needs_assignment(), init_meta.method.method()) {
        (true, Some(method)) => Some(Reclustering {
            spec: ClusterSpec {
                method: method.clone(),
                k: init_meta.k,
                seed: init_meta.cluster_seed,
            },
            slots: cfg.clusters().unwrap_or(init_meta.k),
        }),
        (true, None) => bail!(
            "--init {}: the ViT needs hard clusters but meta.json's method is {}",
            a.init.display(),
            init_meta.method
        ),
        (false, _) => None,
    };
    let model = FaceNet {
        embedder: trainable(embedder),
        vit,
        clusters,
    };

    let ds = open_dataset(&a.source, config)?;
    let (train_s, eval_s) = splits_of(
        &ds,
        config.data.per_class,
        config.data.test_fraction,
        config.data.split_seed,
    )?;
    let (train, rep_t) = load_faces(&train_s, 96);
    let soft = if a.soft_labels {
        Some(soft_targets(&a.source.data, &train_s, &rep_t.skipped)?)
    } else {
        None
    };
    let (eval, rep_e) = load_faces(&eval_s, 96);
    let skipped = rep_t.skipped.len() + rep_e.skipped.len();
    if skipped > 0 {
        log::warn!("{skipped} unreadable images skipped");
    }
    log::info!(
        "fine-tuning on {} faces, evaluating on {}",
        train.len(),
        eval.len()
    );

    let checkpoint_dir = checkpoint::run_root(Path::new("train/runs/finetune"), &a.out);
    checkpoint::bind_options(&checkpoint_dir, &run_identity(a), a.resume)?;
    let opts = FinetuneOptions {
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        embed_lr: a.embed_lr,
        warmup_steps: a.warmup_steps,
        label_smoothing: a.label_smoothing,
        freeze_blocks: a.freeze_blocks,
        swa_epochs: a.swa_epochs,
        swa_lr: a.swa_lr,
        shifted_depthwise,
        seed: a.seed,
        augment: if a.no_augment {
            Augment::none()
        } else {
            Augment::default()
        },
        budget: a.budget_min.map(|m| Duration::from_secs_f64(m * 60.0)),
        checkpoint_dir,
        resume: a.resume,
        progress: !json,
    };
    let (model, outcome) = finetune::<B>(model, &cfg, &train, soft.as_deref(), &eval, &opts, device)?;
    let metrics = outcome
        .metrics
        .clone()
        .context("fine-tuning produced no evaluation metrics (empty evaluation split)")?;

    save_model(&a.out, &model.vit, &cfg)?;
    model.embedder.save_mpk(&a.out.join(FINETUNED_EMBEDDER_FILE))?;
    let meta = ModelMeta {
        embedder: EmbedderKind::MobileNetV2,
        method: init_meta.method.clone(),
        k: init_meta.k,
        cluster_seed: init_meta.cluster_seed,
        metrics: metrics.clone(),
        data: a.source.data.display().to_string(),
        embedder_weights: Some(FINETUNED_EMBEDDER_FILE.to_string()),
        flip_tta: init_meta.flip_tta,
        zoom_tta: init_meta.zoom_tta,
    };
    meta.save(&a.out)?;
    let record = json!({
        "init": a.init,
        "options": opts,
        "history": outcome.history,
        "epochs": outcome.epochs,
        "averaged_epochs": outcome.averaged_epochs,
        "last_epoch_metrics": outcome.last_epoch_metrics,
        "train_faces": train.len(),
        "eval_faces": eval.len(),
        "skipped_images": skipped,
        "soft_labels": a.soft_labels,
        "wall_seconds": t_start.elapsed().as_secs_f64(),
        "device": a.device.choice.name(),
    });
    write_atomic(
        &a.out.join("finetune.json"),
        serde_json::to_string_pretty(&record)?.as_bytes(),
    )?;
    if json {
        print_json(&json!({
            "model": a.out,
            "metrics": metrics,
            "epochs": outcome.epochs,
            "averaged_epochs": outcome.averaged_epochs,
            "last_epoch_accuracy": outcome.last_epoch_metrics.as_ref().map(|m| m.accuracy),
        }))?;
    } else {
        println!(
            "{}: accuracy {:.2} %, macro-F1 {:.3} on {} faces after {} epochs",
            a.out.display(),
            metrics.accuracy * 100.0,
            metrics.macro_f1,
            metrics.images,
            outcome.epochs
        );
        if let Some(last) = &outcome.last_epoch_metrics {
            println!(
                "  (weights averaged over the last {} epochs; the last epoch alone: {:.2} %)",
                outcome.averaged_epochs,
                last.accuracy * 100.0
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `auto` takes the measured-faster form per device (README: grouped on both CPU backends,
    /// shifted on CUDA); an explicit choice wins everywhere.
    #[test]
    fn depthwise_choice_per_device() {
        assert!(!shifted_depthwise(Depthwise::Auto, DeviceChoice::Cpu));
        assert!(!shifted_depthwise(Depthwise::Auto, DeviceChoice::Flex));
        assert!(shifted_depthwise(Depthwise::Auto, DeviceChoice::Cuda));
        for device in [DeviceChoice::Cpu, DeviceChoice::Flex, DeviceChoice::Cuda] {
            assert!(shifted_depthwise(Depthwise::Shifted, device));
            assert!(!shifted_depthwise(Depthwise::Grouped, device));
        }
    }
}
