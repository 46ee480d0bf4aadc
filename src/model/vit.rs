//! The full classifier: tokens → `depth` blocks → pooling → LayerNorm → linear head.

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Tensor, backend::Backend};

use crate::model::assignment::{empty_cluster_bias, with_extra_tokens};
use crate::model::block::{Block, KeySource};
use crate::model::config::{Assignment, AttentionKind, ModelConfig, Pooling};
use crate::model::error::ModelError;
use crate::model::tokens::TokenEmbedding;

/// Vision Transformer over 36 patch embeddings with patch-to-cluster (or patch-to-patch)
/// attention, producing `n_classes` logits per image.
#[derive(Module, Debug)]
pub struct Vit<B: Backend> {
    /// Patch projection, positions and optional class token.
    pub embed: TokenEmbedding<B>,
    /// Transformer blocks.
    pub blocks: Vec<Block<B>>,
    /// Final LayerNorm (applied to the pooled vector).
    pub norm: LayerNorm<B>,
    /// Dropout before the head (training only).
    pub dropout: Dropout,
    /// Classifier `D → n_classes`.
    pub head: Linear<B>,
    /// Patches per image.
    n_patches: usize,
    /// Input feature width.
    in_dim: usize,
    /// 0 = patch-to-patch, 1 = hard patch-to-cluster, 2 = soft patch-to-cluster.
    mode: u8,
    /// Clusters M (0 for patch-to-patch).
    clusters: usize,
}

const MODE_P2P: u8 = 0;
const MODE_HARD: u8 = 1;
const MODE_SOFT: u8 = 2;

impl ModelConfig {
    /// Validates the config and builds a freshly initialised model on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Vit<B>, ModelError> {
        self.validate()?;
        let (mode, clusters, soft) = match self.attention {
            AttentionKind::PatchToPatch => (MODE_P2P, 0, None),
            AttentionKind::PatchToCluster {
                clusters,
                assignment: Assignment::Hard,
            } => (MODE_HARD, clusters, None),
            AttentionKind::PatchToCluster {
                clusters,
                assignment: Assignment::Soft,
            } => (MODE_SOFT, clusters, Some(clusters)),
        };
        let blocks = (0..self.depth)
            .map(|i| {
                Block::new(
                    self.d_model,
                    self.heads,
                    self.mlp_hidden(),
                    self.dropout,
                    soft,
                    self.drop_path_at(i),
                    device,
                )
            })
            .collect();
        let model = Vit {
            embed: TokenEmbedding::new(
                self.in_dim,
                self.d_model,
                self.n_patches,
                self.pooling == Pooling::ClassToken,
                device,
            ),
            blocks,
            norm: LayerNormConfig::new(self.d_model).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            head: LinearConfig::new(self.d_model, self.n_classes).init(device),
            n_patches: self.n_patches,
            in_dim: self.in_dim,
            mode,
            clusters,
        };
        model.visit(&mut Materialize);
        Ok(model)
    }
}

/// Forces burn's lazily initialised parameters to take their values now.
///
/// Cloning a module whose parameters are still lazy gives each clone its *own* random
/// draw, so `model.clone().into_record()` (saving, copying weights, EMA) would silently
/// differ from `model`. Materialising at construction makes clones share values.
struct Materialize;

impl<B: Backend> ModuleVisitor<B> for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let _ = param.val();
    }
}

impl<B: Backend> Vit<B> {
    /// Number of leading non-patch tokens (1 with a class token).
    fn extra(&self) -> usize {
        usize::from(self.embed.cls.is_some())
    }

    /// Whether `forward` requires a hard assignment.
    pub fn needs_assignment(&self) -> bool {
        self.mode == MODE_HARD
    }

    /// Logits `[B, n_classes]` for patch features `[B, N, in_dim]`.
    ///
    /// `assign` is the hard assignment `[B, M, N]` (see [`crate::model::hard_assignment`]);
    /// it is required for hard patch-to-cluster models and ignored otherwise.
    /// Performs no input checks — use [`Self::try_forward`] for untrusted shapes.
    ///
    /// # Panics
    /// On shape mismatches (as burn ops do), or when a hard model gets `assign = None`.
    pub fn forward(&self, features: Tensor<B, 3>, assign: Option<Tensor<B, 3>>) -> Tensor<B, 2> {
        let extra = self.extra();
        let keys = match (self.mode, assign) {
            (MODE_HARD, Some(a)) => {
                let assign = with_extra_tokens(a, extra);
                let bias = empty_cluster_bias(&assign);
                KeySource::Hard { assign, bias }
            }
            (MODE_HARD, None) => panic!("hard patch-to-cluster model needs an assignment"),
            (MODE_SOFT, _) => KeySource::Soft { extra },
            _ => KeySource::Tokens,
        };
        let [b, _, _] = features.dims();
        let mut x = self.embed.forward(features);
        for block in &self.blocks {
            x = block.forward(x, b, &keys);
        }
        let [bt, d] = x.dims();
        let x = x.reshape([b, bt / b, d]);
        let pooled = if extra > 0 {
            x.narrow(1, 0, 1)
        } else {
            x.mean_dim(1)
        };
        let pooled = self.norm.forward(pooled.reshape([b, d]));
        self.head.forward(self.dropout.forward(pooled))
    }

    /// Like [`Self::forward`] but checks every shape first and returns an error instead of
    /// panicking: features must be `[B>0, n_patches, in_dim]`; hard models need
    /// `assign` `[B, clusters, n_patches]`.
    pub fn try_forward(
        &self,
        features: Tensor<B, 3>,
        assign: Option<Tensor<B, 3>>,
    ) -> Result<Tensor<B, 2>, ModelError> {
        let [b, n, f] = features.dims();
        if b == 0 || n != self.n_patches || f != self.in_dim {
            return Err(ModelError::InvalidInput(format!(
                "features must be [B>0, {}, {}], got [{b}, {n}, {f}]",
                self.n_patches, self.in_dim
            )));
        }
        if self.mode == MODE_HARD {
            match &assign {
                None => {
                    return Err(ModelError::InvalidInput(
                        "hard patch-to-cluster model needs an assignment [B, M, N]".into(),
                    ));
                }
                Some(a) => {
                    let dims = a.dims();
                    if dims != [b, self.clusters, self.n_patches] {
                        return Err(ModelError::InvalidInput(format!(
                            "assignment must be [{b}, {}, {}], got {dims:?}",
                            self.clusters, self.n_patches
                        )));
                    }
                }
            }
        }
        Ok(self.forward(features, assign))
    }
}
