//! Data-parallel gradients on the CPU: one batch split into shards, each shard's forward and
//! backward run on its own thread with its own autodiff graph, gradients summed.
//!
//! burn-ndarray parallelises only its matmuls, so a training step keeps roughly one core
//! busy; running two shards side by side is how a step can use both cores of the box.
//! The result equals the gradient of the mean loss over the whole batch. Run with
//! `MATMUL_NUM_THREADS=1` so the shards' GEMMs do not oversubscribe the cores; each shard runs in
//! a one-thread rayon pool for the same reason on backends that use rayon.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor};

use crate::model::block::with_mask_seed;
use crate::model::error::ModelError;
use crate::model::vit::Vit;

/// One slice of a training batch.
#[derive(Debug, Clone)]
pub struct Shard<B: Backend> {
    /// Patch features `[b, N, in_dim]`.
    pub features: Tensor<B, 3>,
    /// Hard assignment `[b, M, N]` for hard patch-to-cluster models.
    pub assign: Option<Tensor<B, 3>>,
    /// Class indices `[b]`.
    pub targets: Tensor<B, 1, Int>,
}

/// Splits a batch into `parts` nearly equal shards along the batch axis (empty ones dropped).
pub fn split_batch<B: Backend>(
    features: Tensor<B, 3>,
    assign: Option<Tensor<B, 3>>,
    targets: Tensor<B, 1, Int>,
    parts: usize,
) -> Vec<Shard<B>> {
    let [batch, _, _] = features.dims();
    let parts = parts.clamp(1, batch.max(1));
    let size = batch.div_ceil(parts);
    (0..batch)
        .step_by(size.max(1))
        .map(|start| {
            let len = size.min(batch - start);
            Shard {
                features: features.clone().narrow(0, start, len),
                assign: assign.clone().map(|a| a.narrow(0, start, len)),
                targets: targets.clone().narrow(0, start, len),
            }
        })
        .collect()
}

/// Gradients (keyed by parameter id, ready for `Optimizer::step`) and value of the mean
/// loss over all shards, each shard computed on its own thread.
///
/// `loss` must return the *mean* loss of a shard (e.g. burn's `CrossEntropyLoss`); shard
/// losses are weighted by shard size, so the result equals a single pass over the batch.
/// Shard `i` draws its stochastic-depth masks from `seed + i`, so a step is reproducible.
pub fn data_parallel_grads<B, F>(
    model: &Vit<B>,
    shards: Vec<Shard<B>>,
    loss: &F,
    seed: u64,
) -> Result<(GradientsParams, f32), ModelError>
where
    B: AutodiffBackend,
    F: Fn(Tensor<B, 2>, Tensor<B, 1, Int>) -> Tensor<B, 1> + Sync,
{
    let total: usize = shards.iter().map(|s| s.features.dims()[0]).sum();
    if total == 0 {
        return Err(ModelError::InvalidInput(
            "data_parallel_grads: empty batch".into(),
        ));
    }
    // Each replica gets fresh autodiff leaves (its own graph) sharing the parameter ids and
    // values. Note: `model.valid()` must be called per replica — cloning an inner module
    // resets burn's `require_grad` flag, and such a replica would get no gradients.
    let replica = || Vit::<B>::from_inner(model.valid());
    let run = |replica: Vit<B>, shard: Shard<B>, i: usize| -> Result<(GradientsParams, f32), ModelError> {
        let weight = shard.features.dims()[0] as f64 / total as f64;
        let logits = with_mask_seed(seed.wrapping_add(i as u64), || {
            replica.try_forward(shard.features, shard.assign)
        })?;
        let value = loss(logits, shard.targets).mul_scalar(weight);
        let scalar: f32 = value.clone().into_scalar().elem();
        let grads = GradientsParams::from_grads(value.backward(), &replica);
        Ok((grads, scalar))
    };
    let results: Vec<Result<(GradientsParams, f32), ModelError>> = if shards.len() == 1 {
        shards.into_iter().map(|s| run(replica(), s, 0)).collect()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = shards
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    let replica = replica();
                    scope.spawn(move || alone(|| run(replica, s, i)))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(ModelError::InvalidInput("training shard panicked".into())))
                })
                .collect()
        })
    };
    let mut parts = Vec::with_capacity(results.len());
    let mut loss_value = 0.0;
    for r in results {
        let (g, v) = r?;
        parts.push(g);
        loss_value += v;
    }
    let mut merge = Merge {
        parts: &mut parts,
        out: GradientsParams::new(),
        missing: 0,
    };
    burn::module::Module::visit(model, &mut merge);
    if merge.out.is_empty() && merge.missing > 0 {
        return Err(ModelError::InvalidInput(
            "data_parallel_grads: no parameter received a gradient".into(),
        ));
    }
    Ok((merge.out, loss_value))
}

/// Runs `f` inside a one-thread rayon pool of its own, so a backend that parallelises its ops with
/// rayon (burn-flex) keeps each shard on one core instead of every shard fanning out over all
/// of them: with two shards on two cores that oversubscription cost burn-flex 14 % of its
/// training speed. Without a pool (the OS refused a thread) `f` runs where it is.
fn alone<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
        Ok(pool) => pool.install(f),
        Err(e) => {
            log::debug!("no one-thread pool for a training shard ({e}); running it in place");
            f()
        }
    }
}

/// Sums each parameter's gradient over the shards' gradient sets.
struct Merge<'a> {
    parts: &'a mut [GradientsParams],
    out: GradientsParams,
    /// Parameters that no shard produced a gradient for (skipped, as a single pass would).
    missing: usize,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Merge<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let mut acc: Option<Tensor<B::InnerBackend, D>> = None;
        for part in self.parts.iter_mut() {
            if let Some(g) = part.remove::<B::InnerBackend, D>(param.id) {
                acc = Some(match acc {
                    Some(a) => a + g,
                    None => g,
                });
            }
        }
        match acc {
            Some(g) => self.out.register(param.id, g),
            None => self.missing += 1,
        }
    }
}
