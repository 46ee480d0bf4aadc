//! Pre-norm transformer block: `x + Attn(LN(x))`, then `x + MLP(LN(x))`.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use std::cell::RefCell;

use burn::tensor::{Distribution, Tensor, TensorData, backend::Backend};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::model::activation::gelu;
use crate::model::attention::{PatchAttention, PatchAttentionConfig};

/// Where a block's attention takes its keys and values from (fixed for a whole forward pass).
#[derive(Debug, Clone)]
pub enum KeySource<B: Backend> {
    /// All tokens (patch-to-patch).
    Tokens,
    /// Centroids from a fixed hard assignment `[B, M, T]` plus its empty-cluster bias.
    Hard {
        /// Assignment including singleton rows for extra tokens.
        assign: Tensor<B, 3>,
        /// `[B, 1, 1, M]` score bias masking empty clusters.
        bias: Tensor<B, 4>,
    },
    /// Centroids from each block's learned soft assignment; `extra` leading non-patch tokens.
    Soft {
        /// Number of leading extra tokens (class token).
        extra: usize,
    },
}

/// Two-layer GELU MLP with dropout on its output (GELU from [`crate::model::activation`]).
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// `D → hidden`.
    pub fc1: Linear<B>,
    /// `hidden → D`.
    pub fc2: Linear<B>,
    /// Dropout on the output (training only).
    pub dropout: Dropout,
}

impl<B: Backend> Mlp<B> {
    /// Builds the MLP.
    pub fn new(d_model: usize, hidden: usize, dropout: f64, device: &B::Device) -> Self {
        Self {
            fc1: LinearConfig::new(d_model, hidden).init(device),
            fc2: LinearConfig::new(hidden, d_model).init(device),
            dropout: DropoutConfig::new(dropout).init(),
        }
    }

    /// `[R, D]` → `[R, D]` (R = any number of token rows).
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let h = gelu(self.fc1.forward(x));
        self.dropout.forward(self.fc2.forward(h))
    }
}

/// One pre-norm transformer block.
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    /// Norm before attention.
    pub norm1: LayerNorm<B>,
    /// Attention layer.
    pub attn: PatchAttention<B>,
    /// Norm before the MLP.
    pub norm2: LayerNorm<B>,
    /// Feed-forward layer.
    pub mlp: Mlp<B>,
    /// Stochastic-depth probability of dropping each residual branch (training only).
    pub drop_path: f64,
}

thread_local! {
    /// Per-thread source of stochastic-depth masks while [`with_mask_seed`] runs.
    static MASK_RNG: RefCell<Option<ChaCha8Rng>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's stochastic-depth masks drawn from a generator seeded by `seed`,
/// so data-parallel shards get reproducible masks whatever the thread scheduling.
pub fn with_mask_seed<R>(seed: u64, f: impl FnOnce() -> R) -> R {
    let previous = MASK_RNG.with(|r| r.replace(Some(ChaCha8Rng::seed_from_u64(seed))));
    let out = f();
    MASK_RNG.with(|r| *r.borrow_mut() = previous);
    out
}

/// `[batch, 1, 1]` keep-mask, from the thread's seeded generator when one is set, else the backend's.
fn keep_mask<B: Backend>(batch: usize, keep: f64, device: &B::Device) -> Tensor<B, 3> {
    let drawn = MASK_RNG.with(|r| {
        r.borrow_mut().as_mut().map(|rng| {
            (0..batch)
                .map(|_| if rng.random_bool(keep) { 1.0f32 } else { 0.0 })
                .collect::<Vec<f32>>()
        })
    });
    match drawn {
        Some(v) => Tensor::from_data(TensorData::new(v, [batch, 1, 1]), device),
        None => Tensor::random([batch, 1, 1], Distribution::Bernoulli(keep), device),
    }
}

/// Stochastic depth: zeroes the whole branch `x` (flat `[B*T, D]`) for a random subset of images
/// (probability `p`) and rescales the rest by `1/(1-p)`; identity without autodiff.
pub fn drop_path<B: Backend>(x: Tensor<B, 2>, batch: usize, p: f64) -> Tensor<B, 2> {
    let device = x.device();
    if p <= 0.0 || !B::ad_enabled(&device) {
        return x;
    }
    let [bt, _] = x.dims();
    let keep = 1.0 - p;
    let mask = keep_mask::<B>(batch, keep, &device)
        .div_scalar(keep)
        .expand([batch, bt / batch, 1])
        .reshape([bt, 1]);
    x * mask
}

impl<B: Backend> Block<B> {
    /// Builds a block; `soft_clusters = Some(M)` adds a soft-assignment head.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        d_model: usize,
        heads: usize,
        mlp_hidden: usize,
        dropout: f64,
        soft_clusters: Option<usize>,
        drop_path: f64,
        device: &B::Device,
    ) -> Self {
        Self {
            norm1: LayerNormConfig::new(d_model).init(device),
            attn: PatchAttentionConfig::new(d_model, heads)
                .with_dropout(dropout)
                .with_soft_clusters(soft_clusters)
                .init(device),
            norm2: LayerNormConfig::new(d_model).init(device),
            mlp: Mlp::new(d_model, mlp_hidden, dropout, device),
            drop_path,
        }
    }

    /// Flat tokens `[B*T, D]` → `[B*T, D]` (`batch` = B); centroids are recomputed from the
    /// current (normed) tokens.
    pub fn forward(&self, x: Tensor<B, 2>, batch: usize, keys: &KeySource<B>) -> Tensor<B, 2> {
        let h = self.norm1.forward(x.clone());
        let a = match keys {
            KeySource::Tokens => self.attn.patch_to_patch_flat(h, batch),
            KeySource::Hard { assign, bias } => {
                self.attn.patch_to_cluster_flat(h, assign.clone(), Some(bias))
            }
            KeySource::Soft { extra } => self.attn.soft_flat(h, batch, *extra),
        };
        let x = x + drop_path(a, batch, self.drop_path);
        let m = self.mlp.forward(self.norm2.forward(x.clone()));
        x + drop_path(m, batch, self.drop_path)
    }
}
