//! `paca-fer finetune`: trains the MobileNetV2 trunk and the ViT together, end to end, on
//! augmented face images (instead of frozen, cached patch features), starting from a trained
//! model folder. Patch-to-patch and learned-assignment models only: per-image hard clusters
//! would have to be recomputed from the changing features at every step.
//!
//! The result is a normal model folder plus `embedder.mpk` (the fine-tuned trunk), which
//! [`crate::classify::Classifier`] loads in place of the ImageNet weights.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use burn::module::{AutodiffModule, Module, ModuleMapper, Param};
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use image::RgbImage;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::augment::Augment;
use super::checkpoint::{self, CheckpointState};
use super::swa::WeightAverage;
use crate::cluster::ClusterSpec;
use crate::data::VoteDistribution;
use crate::labels::{Emotion, NUM_CLASSES};
use crate::metrics::{self, Metrics};
use crate::model::block::with_mask_seed;
use crate::model::embed::{MOBILENET_V2_BLOCKS, MobileNetV2Embedder, normalize_imagenet};
use crate::model::{ModelConfig, Vit, clustered_assignment};
use crate::patch::face_to_chw;
use crate::progress::bar as progress_bar;

/// The whole classifier as one trainable module: faces → MobileNetV2 patch features → (per-image
/// clusters) → ViT → logits.
#[derive(Module, Debug)]
pub struct FaceNet<B: Backend> {
    /// The convolutional trunk (one 96-d feature per 16×16 patch).
    pub embedder: MobileNetV2Embedder<B>,
    /// The transformer over the 36 patch features.
    pub vit: Vit<B>,
    /// For a hard patch-to-cluster ViT: how each image's patches are clustered, recomputed from
    /// the trunk's current features on every forward pass (`None`: no hard clusters).
    #[module(skip)]
    pub clusters: Option<Reclustering>,
}

/// Hard clusters recomputed from the trunk's features as it trains: the clustering of the model
/// folder (method, k, seed) and the ViT's cluster slots.
#[derive(Debug, Clone)]
pub struct Reclustering {
    /// Method, k and seed, as the model folder's `meta.json` says.
    pub spec: ClusterSpec,
    /// Cluster slots of the ViT (`ModelConfig::clusters`).
    pub slots: usize,
}

impl<B: Backend> FaceNet<B> {
    /// Logits `[B, 8]` for `[B, 3, 96, 96]` RGB faces in `[0, 1]`; `shifted` computes the
    /// depthwise layers as shifted products (fast on GPU backends, slow on burn-ndarray).
    pub fn forward(&self, faces: Tensor<B, 4>, shifted: bool) -> Result<Tensor<B, 2>> {
        let x = normalize_imagenet(faces);
        let features = if shifted {
            self.embedder.embed_shifted(x)?
        } else {
            self.embedder.embed(x)?
        };
        self.head(features)
    }

    /// The ViT over `[B, 36, dim]` patch features, clustering them first when the ViT needs hard
    /// clusters (the assignment is a constant of the step: gradients flow through the features).
    fn head(&self, features: Tensor<B, 3>) -> Result<Tensor<B, 2>> {
        let assign = match &self.clusters {
            None => None,
            Some(r) => {
                let [b, n, dim] = features.dims();
                let flat: Vec<f32> = features
                    .clone()
                    .into_data()
                    .convert::<f32>()
                    .to_vec()
                    .map_err(|e| anyhow::anyhow!("reading the patch features: {e:?}"))?;
                let device = features.device();
                Some(clustered_assignment::<B>(&flat, b, n, dim, &r.spec, r.slots, &device)?.1)
            }
        };
        Ok(self.vit.forward(features, assign))
    }

    /// Logits `[B, 8]` from the output of the trunk's stem and first `frozen` blocks
    /// ([`MobileNetV2Embedder::forward_prefix`]): the trainable rest of the network.
    pub fn forward_from(&self, prefix: Tensor<B, 4>, frozen: usize, shifted: bool) -> Result<Tensor<B, 2>> {
        let features = self.embedder.embed_suffix(prefix, frozen, shifted);
        self.head(features)
    }
}

/// Marks every float parameter as trainable (the loaded ImageNet trunk is frozen by default).
struct Trainable;

impl<B: Backend> ModuleMapper<B> for Trainable {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        param.set_require_grad(true)
    }
}

/// Makes a loaded trunk trainable.
pub fn trainable<B: AutodiffBackend>(embedder: MobileNetV2Embedder<B>) -> MobileNetV2Embedder<B> {
    embedder.map(&mut Trainable)
}

/// Settings of one fine-tuning run.
#[derive(Debug, Clone, Serialize)]
pub struct FinetuneOptions {
    /// Epochs over the training faces (fewer when `budget` runs out first).
    pub epochs: usize,
    /// Faces per step.
    pub batch_size: usize,
    /// Peak Adam learning rate of the ViT.
    pub lr: f64,
    /// Peak Adam learning rate of the MobileNetV2 trunk.
    pub embed_lr: f64,
    /// Steps of linear warm-up before the cosine decay.
    pub warmup_steps: usize,
    /// Label smoothing of the cross-entropy (0 = none).
    pub label_smoothing: f32,
    /// Trunk layers kept frozen: the stem and this many inverted-residual blocks (0 = train the
    /// whole trunk). Frozen layers run once per batch without gradients, which makes CPU
    /// fine-tuning several times faster.
    pub freeze_blocks: usize,
    /// Depthwise layers as shifted products: fast gradients on GPU backends; burn-ndarray's
    /// grouped convolution is faster on the CPU.
    pub shifted_depthwise: bool,
    /// Seed of the shuffles, augmentations and stochastic-depth masks.
    pub seed: u64,
    /// Augmentation of training faces.
    pub augment: Augment,
    /// Average the weights of the last this many epochs (stochastic weight averaging) and
    /// return that average; 0 returns the last epoch's weights.
    pub swa_epochs: usize,
    /// Learning-rate multiplier the cosine decays to and holds during the averaged epochs.
    pub swa_lr: f64,
    /// Wall-clock budget: after the first epoch the epoch count is cut to what fits.
    #[serde(skip)]
    pub budget: Option<Duration>,
    /// Folder for per-epoch checkpoints.
    pub checkpoint_dir: PathBuf,
    /// Continue from the newest checkpoint in `checkpoint_dir`.
    pub resume: bool,
    /// Show progress bars.
    pub progress: bool,
}

impl FinetuneOptions {
    /// Learning-rate multiplier of global step `step` of `total`: linear warm-up, then half cosine
    /// down to 0 — or, when the last `hold` steps are averaged, down to `swa_lr` at step
    /// `total − hold` and held there (a constant rate keeps the averaged weights apart).
    pub fn schedule(&self, step: usize, total: usize, hold: usize) -> f64 {
        if step < self.warmup_steps {
            return (step + 1) as f64 / self.warmup_steps as f64;
        }
        let (floor, end) = if hold > 0 {
            (self.swa_lr, total.saturating_sub(hold))
        } else {
            (0.0, total)
        };
        if step >= end {
            return floor;
        }
        let span = end - self.warmup_steps;
        let t = (step - self.warmup_steps) as f64 / span as f64;
        floor + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
    }
}

/// One epoch's log line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochLog {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub loss: f64,
    /// Accuracy on the augmented training faces.
    pub train_accuracy: f64,
    /// Accuracy on the evaluation faces, when given.
    pub eval_accuracy: Option<f64>,
    /// Accuracy of the weight average so far (from its second model on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swa_eval_accuracy: Option<f64>,
    /// Seconds of training (evaluation excluded).
    pub seconds: f64,
    /// Training faces per second.
    pub images_per_s: f64,
}

/// What a fine-tuning run produced.
#[derive(Debug, Clone, Serialize)]
pub struct FinetuneOutcome {
    /// One entry per epoch trained (resumed epochs included).
    pub history: Vec<EpochLog>,
    /// Metrics of the returned model (the weight average when one was kept) on the evaluation
    /// faces, when given.
    pub metrics: Option<Metrics>,
    /// Metrics of the last epoch's own weights, when the returned model is a weight average.
    pub last_epoch_metrics: Option<Metrics>,
    /// Epochs whose weights the returned model averages (0: the last epoch's weights).
    pub averaged_epochs: usize,
    /// Epochs the run ended with (may be below the requested count under a budget).
    pub epochs: usize,
}

/// Augments `idx` faces in parallel into a `[b, 3, side, side]` tensor; each face's draw depends
/// only on `(seed, index)`.
fn batch_tensor<B: Backend>(
    faces: &[(RgbImage, Emotion)],
    idx: &[usize],
    augment: Option<(&Augment, u64)>,
    device: &B::Device,
) -> (Tensor<B, 4>, Vec<i64>) {
    let side = faces[idx[0]].0.width() as usize;
    let chw: Vec<Vec<f32>> = idx
        .par_iter()
        .map(|&i| {
            let face = match augment {
                Some((aug, seed)) => {
                    let mut rng =
                        ChaCha8Rng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    aug.apply(&faces[i].0, &mut rng)
                }
                None => faces[i].0.clone(),
            };
            let mut v = Vec::with_capacity(3 * side * side);
            face_to_chw(&face, &mut v);
            v
        })
        .collect();
    let targets = idx.iter().map(|&i| faces[i].1.index() as i64).collect();
    let x = Tensor::from_data(TensorData::new(chw.concat(), [idx.len(), 3, side, side]), device);
    (x, targets)
}

/// Metrics of an inference-mode model on labelled faces (`None` when there are none), batches of 256.
pub fn score_faces<B: Backend>(
    model: &FaceNet<B>,
    faces: &[(RgbImage, Emotion)],
    shifted: bool,
    device: &B::Device,
) -> Result<Option<Metrics>> {
    if faces.is_empty() {
        return Ok(None);
    }
    let truth: Vec<usize> = faces.iter().map(|(_, e)| e.index()).collect();
    let pred = predict_faces(model, faces, 256, shifted, device)?;
    Ok(Some(metrics::compute(&truth, &pred)))
}

/// Predicted class of every face, batch by batch, with an inference-mode model (`shifted`: see
/// [`FaceNet::forward`]).
pub fn predict_faces<B: Backend>(
    model: &FaceNet<B>,
    faces: &[(RgbImage, Emotion)],
    batch: usize,
    shifted: bool,
    device: &B::Device,
) -> Result<Vec<usize>> {
    let all: Vec<usize> = (0..faces.len()).collect();
    let mut preds = Vec::with_capacity(faces.len());
    for idx in all.chunks(batch.max(1)) {
        let (x, _) = batch_tensor::<B>(faces, idx, None, device);
        let logits = model.forward(x, shifted)?.argmax(1);
        let v: Vec<i64> = logits
            .into_data()
            .convert::<i64>()
            .to_vec()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        preds.extend(v.into_iter().map(|p| p as usize));
    }
    Ok(preds)
}

/// Cross-entropy of `logits` `[B, 8]` against target distributions `[B, 8]` (rows summing to 1),
/// each mixed with the uniform distribution by `smoothing`; a one-hot target gives the usual
/// label-smoothed cross-entropy.
pub fn soft_cross_entropy<B: Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 2>,
    smoothing: f32,
) -> Tensor<B, 1> {
    let t = targets * (1.0 - smoothing) + smoothing / NUM_CLASSES as f32;
    let log_p = burn::tensor::activation::log_softmax(logits, 1);
    (t * log_p).sum_dim(1).mean().neg()
}

/// Refuses inputs fine-tuning cannot train on, naming what is wrong.
fn check_inputs(
    cfg: &ModelConfig,
    clusters: Option<&Reclustering>,
    train: &[(RgbImage, Emotion)],
    soft_targets: Option<&[VoteDistribution]>,
    opts: &FinetuneOptions,
) -> Result<()> {
    if cfg.needs_assignment() != clusters.is_some() {
        bail!(
            "the ViT {} per-image hard clusters, and the clustering to recompute them {}",
            if cfg.needs_assignment() { "needs" } else { "has no" },
            if clusters.is_some() {
                "was given"
            } else {
                "was not"
            }
        );
    }
    if train.is_empty() {
        bail!("fine-tuning needs training faces");
    }
    if let Some(t) = soft_targets
        && t.len() != train.len()
    {
        bail!("{} soft targets for {} training faces", t.len(), train.len());
    }
    if opts.freeze_blocks > MOBILENET_V2_BLOCKS {
        bail!(
            "freeze_blocks {} is more than the trunk's {MOBILENET_V2_BLOCKS} blocks",
            opts.freeze_blocks
        );
    }
    Ok(())
}

/// Adam over the whole network (one per learning rate: trunk and ViT).
type Adam<B> = OptimizerAdaptor<burn::optim::Adam, FaceNet<B>, B>;

/// What a run carries from epoch to epoch, and what a checkpoint holds.
struct RunState<B: AutodiffBackend> {
    model: FaceNet<B>,
    opt_vit: Adam<B>,
    opt_embed: Adam<B>,
    history: Vec<EpochLog>,
    epochs: usize,
    average: Option<WeightAverage<FaceNet<B::InnerBackend>>>,
    state: CheckpointState,
}

impl<B: AutodiffBackend> RunState<B> {
    /// A fresh run of `epochs` epochs from `model`.
    fn start(model: FaceNet<B>, epochs: usize) -> Self {
        Self {
            model,
            opt_vit: AdamConfig::new().init::<B, FaceNet<B>>(),
            opt_embed: AdamConfig::new().init::<B, FaceNet<B>>(),
            history: vec![],
            epochs,
            average: None,
            state: CheckpointState::default(),
        }
    }

    /// Continues from the newest checkpoint under `root`, if there is one.
    fn resume(&mut self, root: &Path, device: &B::Device) -> Result<()> {
        let Some(s) = checkpoint::read_latest(root)? else {
            return Ok(());
        };
        let folder = root.join(&s.folder);
        self.model = self
            .model
            .clone()
            .load_record(checkpoint::load_record(&folder, "model", device)?);
        self.opt_vit =
            self.opt_vit
                .clone()
                .load_record(checkpoint::load_record(&folder, "optim-vit", device)?);
        self.opt_embed =
            self.opt_embed
                .clone()
                .load_record(checkpoint::load_record(&folder, "optim-embed", device)?);
        if let Ok(text) = std::fs::read_to_string(folder.join("history.json")) {
            self.history = serde_json::from_str(&text).unwrap_or_default();
        }
        // The epoch count is checked equal to the run's (`checkpoint::bind_options`); a budget
        // may have cut it since, and that cut stands.
        if let Ok(text) = std::fs::read_to_string(folder.join("epochs.json")) {
            let cut: usize = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a count", folder.join("epochs.json").display()))?;
            if cut < self.epochs {
                log::info!(
                    "the checkpointed run's budget cut it to {cut} of {} epochs",
                    self.epochs
                );
                self.epochs = cut;
            }
        }
        if let Ok(text) = std::fs::read_to_string(folder.join("swa.json")) {
            let count: usize = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a count", folder.join("swa.json").display()))?;
            let mean = self
                .model
                .valid()
                .load_record(checkpoint::load_record(&folder, "swa", device)?);
            self.average = Some(WeightAverage::resume(mean, count));
        }
        log::info!("resuming after epoch {} from {}", s.epochs_done, folder.display());
        self.state = s;
        Ok(())
    }
}

/// Writes the checkpoint of epoch `state.epochs_done` (network, both optimisers, log, epoch
/// count, weight average) into a fresh folder under `root`, then commits it.
fn save_epoch<B: AutodiffBackend>(
    root: &Path,
    recorder: &NamedMpkFileRecorder<FullPrecisionSettings>,
    (model, opt_vit, opt_embed): (&FaceNet<B>, &Adam<B>, &Adam<B>),
    history: &[EpochLog],
    epochs: usize,
    average: Option<&WeightAverage<FaceNet<B::InnerBackend>>>,
    state: &mut CheckpointState,
) -> Result<()> {
    let folder = checkpoint::epoch_folder(root, state.epochs_done);
    std::fs::create_dir_all(&folder)?;
    model.clone().save_file(folder.join("model"), recorder)?;
    recorder.record(opt_vit.to_record(), folder.join("optim-vit"))?;
    recorder.record(opt_embed.to_record(), folder.join("optim-embed"))?;
    checkpoint::write_atomic(
        &folder.join("history.json"),
        serde_json::to_string(history)?.as_bytes(),
    )?;
    checkpoint::write_atomic(&folder.join("epochs.json"), epochs.to_string().as_bytes())?;
    if let Some(avg) = average {
        avg.mean().clone().save_file(folder.join("swa"), recorder)?;
        checkpoint::write_atomic(&folder.join("swa.json"), avg.count().to_string().as_bytes())?;
    }
    checkpoint::commit_epoch(root, state)
}

/// One training batch: which faces, their soft targets if any, and the seed of their
/// augmentation and stochastic-depth masks.
struct Batch<'a> {
    faces: &'a [(RgbImage, Emotion)],
    idx: &'a [usize],
    soft_targets: Option<&'a [VoteDistribution]>,
    aug_seed: u64,
}

/// Which predictions of a batch were right, off the autodiff graph.
type Hits<B> = Tensor<<B as AutodiffBackend>::InnerBackend, 1, burn::tensor::Bool>;

/// The loss of one batch (hard or soft targets) and its correct predictions, through the frozen
/// trunk prefix when there is one.
fn batch_loss<B: AutodiffBackend>(
    model: &FaceNet<B>,
    frozen: Option<&MobileNetV2Embedder<B::InnerBackend>>,
    b: &Batch<'_>,
    loss_fn: &CrossEntropyLoss<B>,
    opts: &FinetuneOptions,
    device: &B::Device,
) -> Result<(Tensor<B, 1>, Hits<B>)> {
    let augment = Some((&opts.augment, b.aug_seed));
    let (logits, y) = match frozen {
        Some(trunk) => {
            let (x, y) = batch_tensor::<B::InnerBackend>(b.faces, b.idx, augment, device);
            let prefix = trunk.forward_prefix(normalize_imagenet(x), opts.freeze_blocks);
            let prefix = Tensor::<B, 4>::from_inner(prefix);
            let logits = with_mask_seed(b.aug_seed, || {
                model.forward_from(prefix, opts.freeze_blocks, opts.shifted_depthwise)
            })?;
            (logits, y)
        }
        None => {
            let (x, y) = batch_tensor::<B>(b.faces, b.idx, augment, device);
            (
                with_mask_seed(b.aug_seed, || model.forward(x, opts.shifted_depthwise))?,
                y,
            )
        }
    };
    let y = Tensor::<B, 1, Int>::from_data(TensorData::new(y, [b.idx.len()]), device);
    let hits = logits
        .clone()
        .inner()
        .argmax(1)
        .reshape([b.idx.len()])
        .equal(y.clone().inner());
    let loss = match b.soft_targets {
        Some(t) => {
            let rows: Vec<f32> = b.idx.iter().flat_map(|&i| t[i]).collect();
            let t = Tensor::<B, 2>::from_data(TensorData::new(rows, [b.idx.len(), NUM_CLASSES]), device);
            soft_cross_entropy(logits, t, opts.label_smoothing)
        }
        None => loss_fn.forward(logits, y),
    };
    Ok((loss, hits))
}

/// Fine-tunes `model` on `train`, evaluating on `eval` (when not empty) after every epoch.
/// With `soft_targets` (one distribution per training face, e.g. FER+ annotator votes) the loss
/// is [`soft_cross_entropy`] against them; otherwise cross-entropy against the labels.
pub fn finetune<B: AutodiffBackend>(
    model: FaceNet<B>,
    cfg: &ModelConfig,
    train: &[(RgbImage, Emotion)],
    soft_targets: Option<&[VoteDistribution]>,
    eval: &[(RgbImage, Emotion)],
    opts: &FinetuneOptions,
    device: &B::Device,
) -> Result<(FaceNet<B::InnerBackend>, FinetuneOutcome)> {
    check_inputs(cfg, model.clusters.as_ref(), train, soft_targets, opts)?;
    let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
    std::fs::create_dir_all(&opts.checkpoint_dir)
        .with_context(|| format!("creating {}", opts.checkpoint_dir.display()))?;
    let mut run = RunState::<B>::start(model, opts.epochs);
    if opts.resume {
        run.resume(&opts.checkpoint_dir, device)?;
    }
    let RunState {
        mut model,
        mut opt_vit,
        mut opt_embed,
        mut history,
        mut epochs,
        mut average,
        mut state,
    } = run;

    let loss_fn = super::trainer::loss_fn::<B>(opts.label_smoothing, device);
    // The frozen bottom of the trunk, without autodiff: its weights never change.
    let frozen = (opts.freeze_blocks > 0).then(|| model.embedder.valid());
    let steps_per_epoch = train.len().div_ceil(opts.batch_size);
    let started = Instant::now();
    let mut epoch = state.epochs_done;
    while epoch < epochs {
        B::seed(device, opts.seed.wrapping_add(epoch as u64 + 1));
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(
            opts.seed ^ ((epoch as u64 + 1) << 32),
        ));
        let bar = progress_bar(
            opts.progress,
            steps_per_epoch as u64,
            &format!("epoch {}/{}", epoch + 1, epochs),
        );
        let t0 = Instant::now();
        let mut loss_sum: Option<Tensor<B::InnerBackend, 1>> = None;
        let mut correct: Option<Tensor<B::InnerBackend, 1, Int>> = None;
        for (step, idx) in order.chunks(opts.batch_size).enumerate() {
            let aug_seed = opts.seed ^ ((epoch as u64 + 1) << 40) ^ ((step as u64) << 20);
            let batch = Batch {
                faces: train,
                idx,
                soft_targets,
                aug_seed,
            };
            let (loss, hits) = batch_loss(&model, frozen.as_ref(), &batch, &loss_fn, opts, device)?;
            let weighted = loss.clone().inner() * (idx.len() as f32);
            loss_sum = Some(match loss_sum {
                Some(s) => s + weighted,
                None => weighted,
            });
            let hits = hits.int().sum();
            correct = Some(match correct {
                Some(c) => c + hits,
                None => hits,
            });
            let mut grads = loss.backward();
            let g_embed = GradientsParams::from_module(&mut grads, &model.embedder);
            let g_vit = GradientsParams::from_module(&mut grads, &model.vit);
            let hold = opts.swa_epochs.min(epochs) * steps_per_epoch;
            let scale = opts.schedule(epoch * steps_per_epoch + step, epochs * steps_per_epoch, hold);
            model = opt_embed.step(opts.embed_lr * scale, model, g_embed);
            model = opt_vit.step(opts.lr * scale, model, g_vit);
            bar.inc(1);
        }
        let loss_sum: f32 = loss_sum.map_or(0.0, |s| s.into_scalar().elem::<f32>());
        let correct: i64 = correct.map_or(0, |c| c.into_scalar().elem::<i64>());
        let secs = t0.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let eval_accuracy =
            score_faces(&model.valid(), eval, opts.shifted_depthwise, device)?.map(|m| m.accuracy);
        let log_line = EpochLog {
            epoch: epoch + 1,
            loss: loss_sum as f64 / train.len() as f64,
            train_accuracy: correct as f64 / train.len() as f64,
            eval_accuracy,
            swa_eval_accuracy: None,
            seconds: secs,
            images_per_s: train.len() as f64 / secs,
        };
        log::info!(
            "epoch {}/{epochs}: loss {:.4}, train acc {:.3}, eval acc {}, {:.0} faces/s",
            epoch + 1,
            log_line.loss,
            log_line.train_accuracy,
            eval_accuracy.map_or("-".into(), |a| format!("{a:.4}")),
            log_line.images_per_s
        );
        history.push(log_line);
        state.train_loss.push(history.last().map_or(0.0, |h| h.loss));
        state.train_seconds += secs;
        state.epochs_done = epoch + 1;
        epoch += 1;

        if history.len() == 1
            && let Some(budget) = opts.budget
        {
            // Fit the remaining epochs into the budget, measured on the first one.
            let per_epoch = started.elapsed().as_secs_f64();
            let fit = ((budget.as_secs_f64() / per_epoch).floor() as usize).max(1);
            if fit < epochs {
                log::warn!(
                    "budget {budget:?}: {per_epoch:.0} s per epoch, training {fit} epochs instead of {epochs}"
                );
                epochs = fit;
            }
        }

        // The last `swa_epochs` epochs' weights go into the running average.
        if state.epochs_done + opts.swa_epochs.min(epochs) > epochs {
            let weights = model.valid();
            match average.as_mut() {
                Some(avg) => avg.add(&weights)?,
                None => average = Some(WeightAverage::new(weights)),
            }
            if let Some(avg) = average.as_ref().filter(|a| a.count() > 1)
                && let Some(m) = score_faces(avg.mean(), eval, opts.shifted_depthwise, device)?
            {
                let acc = m.accuracy;
                log::info!("weight average of {} epochs: eval acc {acc:.4}", avg.count());
                if let Some(h) = history.last_mut() {
                    h.swa_eval_accuracy = Some(acc);
                }
            }
        }

        save_epoch(
            &opts.checkpoint_dir,
            &recorder,
            (&model, &opt_vit, &opt_embed),
            &history,
            epochs,
            average.as_ref(),
            &mut state,
        )?;
    }

    let evaluate = |net: &FaceNet<B::InnerBackend>| score_faces(net, eval, opts.shifted_depthwise, device);
    let last = model.valid();
    let (inner, last_epoch_metrics, averaged_epochs) = match average {
        Some(avg) if avg.count() > 1 => {
            let n = avg.count();
            (avg.into_mean(), evaluate(&last)?, n)
        }
        _ => (last, None, 0),
    };
    let metrics = evaluate(&inner)?;
    Ok((
        inner,
        FinetuneOutcome {
            history,
            metrics,
            last_epoch_metrics,
            averaged_epochs,
            epochs,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> FinetuneOptions {
        FinetuneOptions {
            epochs: 2,
            batch_size: 4,
            lr: 1e-3,
            embed_lr: 1e-4,
            warmup_steps: 10,
            label_smoothing: 0.0,
            freeze_blocks: 0,
            swa_epochs: 0,
            swa_lr: 0.5,
            shifted_depthwise: false,
            seed: 0,
            augment: Augment::none(),
            budget: None,
            checkpoint_dir: PathBuf::new(),
            resume: false,
            progress: false,
        }
    }

    #[test]
    fn soft_cross_entropy_of_one_hot_targets_is_burns_label_smoothed_cross_entropy() {
        type B = burn_ndarray::NdArray<f32>;
        let device = Default::default();
        let logits = Tensor::<B, 2>::random(
            [5, NUM_CLASSES],
            burn::tensor::Distribution::Normal(0.0, 2.0),
            &device,
        );
        let labels = [0i64, 3, 7, 7, 1];
        let y = Tensor::<B, 1, Int>::from_data(TensorData::new(labels.to_vec(), [5]), &device);
        let one_hot: Vec<f32> = labels
            .iter()
            .flat_map(|&l| (0..NUM_CLASSES).map(move |c| f32::from(c as i64 == l)))
            .collect();
        let t = Tensor::<B, 2>::from_data(TensorData::new(one_hot, [5, NUM_CLASSES]), &device);
        for smoothing in [0.0f32, 0.1, 0.3] {
            let ours: f32 = soft_cross_entropy(logits.clone(), t.clone(), smoothing).into_scalar();
            let burns: f32 = crate::train::trainer::loss_fn::<B>(smoothing, &device)
                .forward(logits.clone(), y.clone())
                .into_scalar();
            assert!(
                (ours - burns).abs() < 1e-5,
                "smoothing {smoothing}: {ours} vs {burns}"
            );
        }
    }

    #[test]
    fn schedule_warms_up_linearly_then_decays_to_zero() {
        let o = opts();
        assert!((o.schedule(0, 110, 0) - 0.1).abs() < 1e-12);
        assert!((o.schedule(9, 110, 0) - 1.0).abs() < 1e-12);
        assert!((o.schedule(10, 110, 0) - 1.0).abs() < 1e-12);
        assert!((o.schedule(60, 110, 0) - 0.5).abs() < 1e-12);
        assert!(o.schedule(110, 110, 0).abs() < 1e-12);
        assert!((11..110).all(|s| o.schedule(s, 110, 0) < o.schedule(s - 1, 110, 0)));
    }

    #[test]
    fn schedule_with_averaged_steps_decays_to_the_swa_rate_and_holds_it() {
        let o = FinetuneOptions {
            swa_lr: 0.25,
            ..opts()
        };
        // Warm-up 10 steps, cosine over steps 10..60 from 1 to 0.25, then 0.25 for 50 steps.
        assert!((o.schedule(10, 110, 50) - 1.0).abs() < 1e-12);
        assert!((o.schedule(35, 110, 50) - 0.625).abs() < 1e-12);
        assert!((o.schedule(60, 110, 50) - 0.25).abs() < 1e-12);
        assert!((60..110).all(|s| (o.schedule(s, 110, 50) - 0.25).abs() < 1e-12));
        // Every epoch averaged: the held rate right after the warm-up.
        assert!((o.schedule(10, 110, 110) - 0.25).abs() < 1e-12);
    }
}
