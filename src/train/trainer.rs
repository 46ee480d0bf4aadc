//! The training loop of one sweep cell: Adam + cross-entropy over precomputed patch features and
//! cluster assignments, evaluation after every epoch, and a crash-safe checkpoint per epoch.

use std::borrow::Cow;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::{AutodiffModule, Module};
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{AdamConfig, Optimizer};
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::checkpoint::{self, CheckpointState};
use crate::metrics::{self, Metrics};
use crate::model::{ModelConfig, Vit, data_parallel_grads, hard_assignment, split_batch};
use crate::patch::NUM_PATCHES;

/// Features, optional cluster labels and targets of one split, all in memory. The features are
/// usually borrowed (`Cow::Borrowed`): every sweep cell trains on the same matrix, which can be
/// gigabytes with ResNet-50 features.
#[derive(Debug, Clone)]
pub struct SplitData<'a> {
    /// `[n, 36, dim]` patch features, image-major.
    pub features: Cow<'a, [f32]>,
    /// Feature width per patch.
    pub dim: usize,
    /// `[n, 36]` cluster ids when the model uses hard assignments.
    pub clusters: Option<Vec<u32>>,
    /// Class index per image.
    pub targets: Vec<u8>,
}

impl SplitData<'_> {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// True when the split holds no image.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Tensors for the images at `idx`: features `[b, 36, dim]` and the hard assignment if any.
    fn batch<B: Backend>(
        &self,
        idx: &[usize],
        clusters_m: usize,
        device: &B::Device,
    ) -> Result<(Tensor<B, 3>, Option<Tensor<B, 3>>)> {
        let per = NUM_PATCHES * self.dim;
        let mut f = Vec::with_capacity(idx.len() * per);
        for &i in idx {
            f.extend_from_slice(&self.features[i * per..(i + 1) * per]);
        }
        let feats = Tensor::from_data(TensorData::new(f, [idx.len(), NUM_PATCHES, self.dim]), device);
        let assign = match &self.clusters {
            Some(c) => {
                let mut l = Vec::with_capacity(idx.len() * NUM_PATCHES);
                for &i in idx {
                    l.extend_from_slice(&c[i * NUM_PATCHES..(i + 1) * NUM_PATCHES]);
                }
                Some(hard_assignment::<B>(
                    &l,
                    idx.len(),
                    NUM_PATCHES,
                    clusters_m,
                    device,
                )?)
            }
            None => None,
        };
        Ok((feats, assign))
    }
}

/// Optimisation settings of one run.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Epochs to reach (a resumed run continues up to this).
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Seed of initialisation and of each epoch's shuffle.
    pub seed: u64,
    /// Label smoothing of the cross-entropy (0 = none).
    pub label_smoothing: f32,
    /// Decay the learning rate to 0 along a half cosine over all steps (else constant).
    pub cosine: bool,
    /// Folder for this run's checkpoints.
    pub checkpoint_dir: PathBuf,
    /// Continue from the newest checkpoint in `checkpoint_dir`.
    pub resume: bool,
    /// Show progress bars.
    pub progress: bool,
    /// Threads per step: each batch is split into this many shards trained side by side
    /// (0 = one per core). Results do not depend on it beyond float rounding.
    pub threads: usize,
}

impl TrainOptions {
    /// Learning rate of global step `step` of `total`.
    pub fn lr_at(&self, step: usize, total: usize) -> f64 {
        if !self.cosine || total == 0 {
            return self.lr;
        }
        let t = step.min(total) as f64 / total as f64;
        0.5 * self.lr * (1.0 + (std::f64::consts::PI * t).cos())
    }

    /// Shards per step: `threads`, or the number of cores when it is 0.
    pub fn shards(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

/// What one training run produced.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// Metrics on the evaluation split after the last epoch.
    pub metrics: Metrics,
    /// Mean training loss per epoch.
    pub train_loss: Vec<f64>,
    /// Seconds spent in training steps (all runs of a resumed cell).
    pub train_seconds: f64,
    /// Training throughput of this run.
    pub images_per_s: f64,
    /// Inference time per image on the evaluation split (batched).
    pub model_ms_per_image: f64,
    /// Trainable parameters.
    pub params: usize,
    /// Epochs trained by this call (fewer than `train_loss.len()` when resumed).
    pub epochs_run: usize,
}

/// Predicts class indices for every image of `data` with an inference-mode model.
pub fn predict<B: Backend>(
    model: &Vit<B>,
    cfg: &ModelConfig,
    data: &SplitData,
    batch: usize,
    device: &B::Device,
) -> Result<(Vec<usize>, Vec<f32>)> {
    let m = cfg.clusters().unwrap_or(NUM_PATCHES);
    let mut preds = Vec::with_capacity(data.len());
    let mut probs = Vec::with_capacity(data.len() * cfg.n_classes);
    let all: Vec<usize> = (0..data.len()).collect();
    for idx in all.chunks(batch.max(1)) {
        let (x, a) = data.batch::<B>(idx, m, device)?;
        let p = burn::tensor::activation::softmax(model.try_forward(x, a)?, 1);
        let v: Vec<f32> = p
            .into_data()
            .convert::<f32>()
            .to_vec()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        preds.extend(v.chunks(cfg.n_classes).map(crate::labels::argmax));
        probs.extend(v);
    }
    Ok((preds, probs))
}

/// Trains a fresh (or resumed) model on `train`, evaluating on `eval` after every epoch.
pub fn train<B: AutodiffBackend>(
    cfg: &ModelConfig,
    train: &SplitData,
    eval: &SplitData,
    opts: &TrainOptions,
    device: &B::Device,
) -> Result<(Vit<B::InnerBackend>, TrainOutcome)> {
    if train.is_empty() || eval.is_empty() {
        bail!(
            "training needs images in both splits (train {}, eval {})",
            train.len(),
            eval.len()
        );
    }
    if cfg.needs_assignment() && (train.clusters.is_none() || eval.clusters.is_none()) {
        bail!("this model uses hard cluster assignments but none were computed");
    }
    B::seed(device, opts.seed);
    let m = cfg.clusters().unwrap_or(NUM_PATCHES);
    let mut model: Vit<B> = cfg.init(device)?;
    let mut optim = AdamConfig::new().init::<B, Vit<B>>();
    let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
    std::fs::create_dir_all(&opts.checkpoint_dir)
        .with_context(|| format!("creating {}", opts.checkpoint_dir.display()))?;

    let mut state = CheckpointState::default();
    if opts.resume
        && let Some(s) = checkpoint::read_latest(&opts.checkpoint_dir)?
    {
        let folder = opts.checkpoint_dir.join(&s.folder);
        model = model.load_record(checkpoint::load_record(&folder, "model", device)?);
        optim = optim.load_record(checkpoint::load_record(&folder, "optim", device)?);
        log::info!("resuming after epoch {} from {}", s.epochs_done, folder.display());
        state = s;
    }

    let loss_fn = loss_fn::<B>(opts.label_smoothing, device);
    let steps_per_epoch = train.len().div_ceil(opts.batch_size);
    let shards = opts.shards();
    let first_epoch = state.epochs_done;
    let mut images_this_run = 0usize;
    let mut seconds_this_run = 0.0;
    for epoch in state.epochs_done..opts.epochs {
        // The shuffle and the dropout stream depend only on (seed, epoch), so a resumed run repeats
        // exactly what an uninterrupted one does.
        B::seed(device, opts.seed.wrapping_add(epoch as u64 + 1));
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(
            opts.seed ^ ((epoch as u64 + 1) << 32),
        ));
        let bar = crate::progress::bar(
            opts.progress,
            steps_per_epoch as u64,
            &format!("epoch {}/{}", epoch + 1, opts.epochs),
        );
        let t0 = Instant::now();
        let mut loss_sum = 0.0;
        for (step, idx) in order.chunks(opts.batch_size).enumerate() {
            let (x, a) = train.batch::<B>(idx, m, device)?;
            let y: Vec<i64> = idx.iter().map(|&i| train.targets[i] as i64).collect();
            let y = Tensor::<B, 1, Int>::from_data(TensorData::new(y, [idx.len()]), device);
            // Masks depend only on (seed, epoch, step, shard): resumed runs repeat them exactly.
            let step_seed = opts.seed ^ ((epoch as u64) << 40) ^ ((step as u64) << 8);
            let lr = opts.lr_at(epoch * steps_per_epoch + step, opts.epochs * steps_per_epoch);
            let value;
            (model, value) = train_step(model, &mut optim, &loss_fn, (x, a, y), shards, step_seed, lr)?;
            loss_sum += value as f64 * idx.len() as f64;
            bar.inc(1);
        }
        let secs = t0.elapsed().as_secs_f64();
        seconds_this_run += secs;
        images_this_run += train.len();
        bar.finish_and_clear();
        let mean_loss = loss_sum / train.len() as f64;
        state.train_loss.push(mean_loss);
        state.train_seconds += secs;
        state.epochs_done = epoch + 1;

        let folder = checkpoint::epoch_folder(&opts.checkpoint_dir, state.epochs_done);
        std::fs::create_dir_all(&folder)?;
        model.clone().save_file(folder.join("model"), &recorder)?;
        recorder.record(optim.to_record(), folder.join("optim"))?;
        checkpoint::commit_epoch(&opts.checkpoint_dir, &mut state)?;
        log::info!(
            "epoch {}/{}: loss {mean_loss:.4}, {:.0} images/s",
            epoch + 1,
            opts.epochs,
            train.len() as f64 / secs
        );
    }

    let inner = model.valid();
    let t0 = Instant::now();
    let (pred, _) = predict(&inner, cfg, eval, 256, device)?;
    let model_ms_per_image = t0.elapsed().as_secs_f64() * 1e3 / eval.len() as f64;
    let truth: Vec<usize> = eval.targets.iter().map(|&t| t as usize).collect();
    let metrics = metrics::compute(&truth, &pred);
    let outcome = TrainOutcome {
        metrics,
        train_loss: state.train_loss.clone(),
        train_seconds: state.train_seconds,
        images_per_s: if seconds_this_run > 0.0 {
            images_this_run as f64 / seconds_this_run
        } else {
            0.0
        },
        model_ms_per_image,
        params: inner.num_params(),
        epochs_run: opts.epochs.saturating_sub(first_epoch),
    };
    Ok((inner, outcome))
}

/// Cross-entropy with `smoothing` label smoothing (0 = none).
pub fn loss_fn<B: Backend>(smoothing: f32, device: &B::Device) -> CrossEntropyLoss<B> {
    CrossEntropyLossConfig::new()
        .with_smoothing((smoothing > 0.0).then_some(smoothing))
        .init::<B>(device)
}

/// One optimisation step: the batch `(features, assignment, targets)` split into `shards` whose
/// forward and backward passes run side by side, gradients summed, then Adam. Returns the
/// updated model and the batch's mean loss.
pub fn train_step<B, O>(
    model: Vit<B>,
    optim: &mut O,
    loss_fn: &CrossEntropyLoss<B>,
    (x, a, y): (Tensor<B, 3>, Option<Tensor<B, 3>>, Tensor<B, 1, Int>),
    shards: usize,
    seed: u64,
    lr: f64,
) -> Result<(Vit<B>, f32)>
where
    B: AutodiffBackend,
    O: Optimizer<Vit<B>, B>,
{
    let loss = |logits, y| loss_fn.forward(logits, y);
    let (grads, value) = data_parallel_grads(&model, split_batch(x, a, y, shards), &loss, seed)?;
    Ok((optim.step(lr, model, grads), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(cosine: bool) -> TrainOptions {
        TrainOptions {
            epochs: 3,
            batch_size: 8,
            lr: 1e-3,
            seed: 0,
            label_smoothing: 0.0,
            cosine,
            checkpoint_dir: PathBuf::new(),
            resume: false,
            progress: false,
            threads: 1,
        }
    }

    #[test]
    fn cosine_schedule_starts_at_lr_halves_midway_and_ends_at_zero() {
        let o = opts(true);
        assert_eq!(o.lr_at(0, 100), 1e-3);
        assert!((o.lr_at(50, 100) - 5e-4).abs() < 1e-12);
        assert!(o.lr_at(100, 100).abs() < 1e-12);
        assert!((1..100).all(|s| o.lr_at(s, 100) < o.lr_at(s - 1, 100)));
        assert_eq!(opts(false).lr_at(70, 100), 1e-3);
    }
}
