//! Patch-to-cluster attention (PaCa-ViT) and the plain patch-to-patch control.
//!
//! Both share one parameter layout — a query projection, a fused key/value projection and an
//! output projection — so a patch-to-patch model and a hard patch-to-cluster model have
//! interchangeable weights. All heads are computed by two batched matmuls against
//! block-diagonal key/value matrices (see `block_diagonal_keys_values`); there are no
//! per-image or per-head loops.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Tensor, backend::Backend};

use crate::model::assignment::with_extra_tokens;

/// Settings of one attention layer.
#[derive(Config, Debug)]
pub struct PatchAttentionConfig {
    /// Token width.
    pub d_model: usize,
    /// Number of heads; must divide `d_model` (checked by [`crate::model::ModelConfig::validate`]).
    pub heads: usize,
    /// Dropout on the output projection (training only).
    #[config(default = 0.0)]
    pub dropout: f64,
    /// `Some(M)` adds a learned soft-assignment head producing M clusters.
    #[config(default = "None")]
    pub soft_clusters: Option<usize>,
}

impl PatchAttentionConfig {
    /// Builds the layer with freshly initialised weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> PatchAttention<B> {
        let d = self.d_model;
        PatchAttention {
            query: LinearConfig::new(d, d).init(device),
            key_value: LinearConfig::new(d, 2 * d).init(device),
            output: LinearConfig::new(d, d).init(device),
            assign_head: self.soft_clusters.map(|m| LinearConfig::new(d, m).init(device)),
            dropout: DropoutConfig::new(self.dropout).init(),
            heads: self.heads,
        }
    }
}

/// Multi-head attention whose keys/values come either from all tokens or from centroids.
#[derive(Module, Debug)]
pub struct PatchAttention<B: Backend> {
    /// Query projection `D → D` (applied to every token).
    pub query: Linear<B>,
    /// Fused key/value projection `D → 2D` (applied to the key/value source only).
    pub key_value: Linear<B>,
    /// Output projection `D → D`.
    pub output: Linear<B>,
    /// Soft-assignment head `D → M` (PaCa "clustering module"); `None` for hard / patch-to-patch.
    pub assign_head: Option<Linear<B>>,
    /// Dropout on the projected output.
    pub dropout: Dropout,
    /// Number of heads.
    pub heads: usize,
}

/// Applies a linear layer to `[B, S, Din]` as one `[B*S, Din]` GEMM.
///
/// burn's rank-3 linear runs B small GEMMs and, in backward, materialises a `[B, Din, Dout]`
/// weight gradient before summing it; flattening avoids both. (Hot paths keep tokens flat
/// as `[B*T, D]` throughout, because every burn-ndarray reshape copies its input.)
pub(crate) fn linear3<B: Backend>(layer: &Linear<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [b, s, d] = x.dims();
    let y = layer.forward(x.reshape([b * s, d]));
    let out = y.dims()[1];
    y.reshape([b, s, out])
}

/// Largest number of keys (clusters) for which attention uses block-diagonal keys.
pub const BLOCK_DIAGONAL_MAX_KEYS: usize = 4;

impl<B: Backend> PatchAttention<B> {
    /// Keys and values of all heads laid out block-diagonally, so attention needs no
    /// `[B, H, S, dh]` transposes of the (large) query/context tensors:
    /// returns `keys` `[B, D, H·S]` (pre-scaled by 1/√dh) and `values` `[B, H·S, D]` with
    /// `keys[b, (h,i), (h',s)] = k[b, s, (h,i)]·δ(h,h')` and likewise for values.
    fn block_diagonal_keys_values(&self, source: Tensor<B, 3>) -> (Tensor<B, 3>, Tensor<B, 3>) {
        let [b, s, d] = source.dims();
        let h = self.heads;
        let dh = d / h;
        let kv = linear3(&self.key_value, source);
        let device = kv.device();
        // mask[(h,i), h'] = δ(h, h'), shared by keys and values.
        let mask: Tensor<B, 2> = Tensor::eye(h, &device)
            .reshape([h, 1, h])
            .expand([h, dh, h])
            .reshape([d, h]);
        let keys = kv
            .clone()
            .narrow(2, 0, d)
            .mul_scalar(1.0 / (dh as f64).sqrt())
            .swap_dims(1, 2) // [B, D, S]
            .reshape([b, d, 1, s])
            .mul(mask.clone().reshape([1, d, h, 1]))
            .reshape([b, d, h * s]);
        let values = kv
            .narrow(2, d, d)
            .swap_dims(1, 2) // [B, D, S]
            .reshape([b, d, 1, s])
            .mul(mask.reshape([1, d, h, 1]))
            .reshape([b, d, h * s])
            .swap_dims(1, 2);
        (keys, values)
    }

    /// Multi-head attention of the flat tokens `x` `[B*T, D]` over the key/value `source`
    /// `[B, S, D]`; `bias` `[B, 1, 1, S]` is added to the scores (masking), softmax runs over
    /// S per head. Output `[B*T, D]` after the output projection.
    ///
    /// Few keys (S ≤ [`BLOCK_DIAGONAL_MAX_KEYS`], i.e. patch-to-cluster) use block-diagonal
    /// keys so the big query/context tensors are never transposed; many keys (patch-to-patch)
    /// use the usual `[B, H, S, dh]` head split. Both compute the same function.
    fn attend(&self, x: Tensor<B, 2>, source: Tensor<B, 3>, bias: Option<&Tensor<B, 4>>) -> Tensor<B, 2> {
        let [_, s, _] = source.dims();
        let context = if s <= BLOCK_DIAGONAL_MAX_KEYS {
            self.context_block_diagonal(x, source, bias)
        } else {
            self.context_head_split(x, source, bias)
        };
        self.dropout.forward(self.output.forward(context))
    }

    /// Attention context `[B*T, D]` via block-diagonal keys/values (cheap for small S).
    pub(crate) fn context_block_diagonal(
        &self,
        x: Tensor<B, 2>,
        source: Tensor<B, 3>,
        bias: Option<&Tensor<B, 4>>,
    ) -> Tensor<B, 2> {
        let [b, s, d] = source.dims();
        let t = x.dims()[0] / b;
        let h = self.heads;
        let (keys, values) = self.block_diagonal_keys_values(source);
        let q = self.query.forward(x).reshape([b, t, d]);
        let scores = q.matmul(keys).reshape([b, t, h, s]);
        let scores = match bias {
            Some(bias) => scores + bias.clone(),
            None => scores,
        };
        let weights = softmax(scores, 3).reshape([b, t, h * s]);
        weights.matmul(values).reshape([b * t, d])
    }

    /// Attention context `[B*T, D]` via the standard `[B, H, ·, dh]` head split.
    pub(crate) fn context_head_split(
        &self,
        x: Tensor<B, 2>,
        source: Tensor<B, 3>,
        bias: Option<&Tensor<B, 4>>,
    ) -> Tensor<B, 2> {
        let [b, s, d] = source.dims();
        let t = x.dims()[0] / b;
        let h = self.heads;
        let dh = d / h;
        let q = self.query.forward(x).reshape([b, t, h, dh]).swap_dims(1, 2);
        let kv = linear3(&self.key_value, source)
            .reshape([b, s, 2 * h, dh])
            .swap_dims(1, 2);
        let keys = kv.clone().narrow(1, 0, h);
        let values = kv.narrow(1, h, h);
        let scores = q
            .matmul(keys.swap_dims(2, 3))
            .mul_scalar(1.0 / (dh as f64).sqrt());
        let scores = match bias {
            Some(bias) => scores + bias.clone(),
            None => scores,
        };
        softmax(scores, 3)
            .matmul(values)
            .swap_dims(1, 2)
            .reshape([b * t, d])
    }

    /// Patch-to-patch attention on flat tokens `[B*T, D]` (`batch` = B).
    pub(crate) fn patch_to_patch_flat(&self, x: Tensor<B, 2>, batch: usize) -> Tensor<B, 2> {
        let [bt, d] = x.dims();
        let source = x.clone().reshape([batch, bt / batch, d]);
        self.attend(x, source, None)
    }

    /// Patch-to-cluster attention on flat tokens `[B*T, D]` with `assign` `[B, M, T]`.
    pub(crate) fn patch_to_cluster_flat(
        &self,
        x: Tensor<B, 2>,
        assign: Tensor<B, 3>,
        bias: Option<&Tensor<B, 4>>,
    ) -> Tensor<B, 2> {
        let [bt, d] = x.dims();
        let [b, _, _] = assign.dims();
        let centroids = assign.matmul(x.clone().reshape([b, bt / b, d]));
        self.attend(x, centroids, bias)
    }

    /// Soft assignment `[B, M, N]` from flat tokens `[B*T, D]` (first `extra` tokens of each
    /// image are not patches), softmax over patches.
    pub(crate) fn soft_assignment_flat(
        &self,
        x: Tensor<B, 2>,
        batch: usize,
        extra: usize,
    ) -> Option<Tensor<B, 3>> {
        let head = self.assign_head.as_ref()?;
        let [bt, _] = x.dims();
        let t = bt / batch;
        let logits = head.forward(x);
        let m = logits.dims()[1];
        let logits = logits.reshape([batch, t, m]);
        let logits = if extra == 0 {
            logits
        } else {
            logits.narrow(1, extra, t - extra)
        };
        Some(softmax(logits.swap_dims(1, 2), 2))
    }

    /// Soft patch-to-cluster attention on flat tokens `[B*T, D]`.
    pub(crate) fn soft_flat(&self, x: Tensor<B, 2>, batch: usize, extra: usize) -> Tensor<B, 2> {
        match self.soft_assignment_flat(x.clone(), batch, extra) {
            Some(assign) => {
                let assign = with_extra_tokens(assign, extra);
                self.patch_to_cluster_flat(x, assign, None)
            }
            None => self.patch_to_patch_flat(x, batch),
        }
    }

    /// Plain multi-head self-attention: queries, keys and values from all tokens `[B, T, D]`.
    pub fn forward_patch_to_patch(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, t, d] = x.dims();
        self.patch_to_patch_flat(x.reshape([b * t, d]), b)
            .reshape([b, t, d])
    }

    /// Patch-to-cluster attention: centroids `C = A·x` (`assign` `[B, M, T]`, `x` `[B, T, D]`)
    /// supply keys and values; `bias` `[B, 1, 1, M]` masks empty clusters (see
    /// [`crate::model::assignment`]). Output `[B, T, D]`.
    pub fn forward_patch_to_cluster(
        &self,
        x: Tensor<B, 3>,
        assign: Tensor<B, 3>,
        bias: Option<&Tensor<B, 4>>,
    ) -> Tensor<B, 3> {
        let [b, t, d] = x.dims();
        self.patch_to_cluster_flat(x.reshape([b * t, d]), assign, bias)
            .reshape([b, t, d])
    }

    /// Learned soft assignment `[B, M, N]` of the patch tokens (all but the first `extra`
    /// tokens of `x` `[B, T, D]`), softmax-normalised over patches so each row sums to 1.
    /// `None` when the layer has no assignment head.
    pub fn soft_assignment(&self, x: Tensor<B, 3>, extra: usize) -> Option<Tensor<B, 3>> {
        let [b, t, d] = x.dims();
        self.soft_assignment_flat(x.reshape([b * t, d]), b, extra)
    }

    /// Soft patch-to-cluster attention: assignment from [`Self::soft_assignment`] (extra
    /// tokens become singleton clusters), then [`Self::forward_patch_to_cluster`].
    /// Falls back to patch-to-patch when there is no assignment head.
    pub fn forward_soft(&self, x: Tensor<B, 3>, extra: usize) -> Tensor<B, 3> {
        let [b, t, d] = x.dims();
        self.soft_flat(x.reshape([b * t, d]), b, extra).reshape([b, t, d])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::assignment::MASK_BIAS;
    use burn::backend::NdArray;
    use burn::tensor::{Distribution, TensorData};

    type B = NdArray<f32>;

    #[test]
    fn block_diagonal_and_head_split_agree_with_masking() {
        let dev = Default::default();
        let attn = PatchAttentionConfig::new(48, 4).init::<B>(&dev);
        let (b, t) = (3, 10);
        for s in [1usize, 2, 5, 12] {
            let x = Tensor::<B, 2>::random([b * t, 48], Distribution::Normal(0.0, 1.0), &dev);
            let src = Tensor::<B, 3>::random([b, s, 48], Distribution::Normal(0.0, 1.0), &dev);
            let mut bias = vec![0.0f32; b * s];
            if s > 1 {
                bias[s - 1] = MASK_BIAS; // image 0's last key is masked
            }
            let bias = Tensor::<B, 4>::from_data(TensorData::new(bias, [b, 1, 1, s]), &dev);
            let a = attn.context_block_diagonal(x.clone(), src.clone(), Some(&bias));
            let c = attn.context_head_split(x, src, Some(&bias));
            let diff: f32 = (a - c).abs().max().into_scalar();
            assert!(diff < 1e-5, "S={s}: {diff}");
        }
    }
}
