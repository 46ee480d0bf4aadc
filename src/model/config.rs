//! Serialisable model configuration, saved as `config.json` beside every checkpoint.

use burn::config::Config;

use crate::model::error::ModelError;

/// How patches are assigned to clusters in patch-to-cluster attention.
#[derive(Config, Debug, PartialEq, Eq, Copy)]
pub enum Assignment {
    /// Fixed assignment supplied by the clustering engine (`[B, M, N]`, rows = 1/|cluster|).
    Hard,
    /// Learned per-block linear head on the tokens, softmax over the N patches per cluster.
    Soft,
}

/// Which attention every transformer block uses.
#[derive(Config, Debug, PartialEq, Eq, Copy)]
pub enum AttentionKind {
    /// Queries from patch tokens, keys/values from `clusters` centroids (PaCa-ViT).
    PatchToCluster {
        /// Number of clusters M per image.
        clusters: usize,
        /// Hard (external labels) or soft (learned) assignment.
        assignment: Assignment,
    },
    /// Plain multi-head self-attention between all tokens (the control).
    PatchToPatch,
}

/// How the final token sequence is reduced to one vector per image.
#[derive(Config, Debug, PartialEq, Eq, Copy)]
pub enum Pooling {
    /// Average of the patch tokens, then LayerNorm.
    Mean,
    /// A learned class token prepended to the patches; its final state is used.
    ClassToken,
}

/// Architecture and regularisation settings of the ViT; everything needed to rebuild it.
///
/// `mlp_ratio` defaults to 2.0: the MLP is the largest cost per block on CPU and the
/// data sets here are small, so a narrower MLP trades little accuracy for ~30 % speed.
#[derive(Config, Debug, PartialEq)]
pub struct ModelConfig {
    /// Width of each patch's input feature vector (768 = raw 16×16×3, 96 = MobileNetV2 s16).
    pub in_dim: usize,
    /// Token width.
    #[config(default = 128)]
    pub d_model: usize,
    /// Attention heads; must divide `d_model`.
    #[config(default = 4)]
    pub heads: usize,
    /// Number of transformer blocks.
    #[config(default = 6)]
    pub depth: usize,
    /// MLP hidden width as a multiple of `d_model`.
    #[config(default = 2.0)]
    pub mlp_ratio: f64,
    /// Patches per image (6×6 grid of 16×16 patches on a 96×96 face).
    #[config(default = 36)]
    pub n_patches: usize,
    /// Output classes (8 emotions).
    #[config(default = 8)]
    pub n_classes: usize,
    /// Element dropout after attention, after the MLP and before the head (training only).
    /// Default 0: per-element dropout costs ~10 % of a CPU training step; regularise with
    /// `drop_path` instead (the DeiT recipe: dropout 0, stochastic depth 0.1).
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Stochastic depth: probability of skipping a block's residual branch per image
    /// (training only), rising linearly from 0 at the first block to this value at the last.
    #[config(default = 0.1)]
    pub drop_path: f64,
    /// Attention used by every block.
    #[config(default = "AttentionKind::PatchToCluster { clusters: 4, assignment: Assignment::Hard }")]
    pub attention: AttentionKind,
    /// Sequence pooling before the classifier head.
    #[config(default = "Pooling::Mean")]
    pub pooling: Pooling,
}

impl ModelConfig {
    /// Checks the invariants every constructor relies on, so building never panics.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |msg: String| Err(ModelError::InvalidConfig(msg));
        if self.in_dim == 0 {
            return bad("in_dim must be > 0".into());
        }
        if self.d_model == 0 || self.heads == 0 || !self.d_model.is_multiple_of(self.heads) {
            return bad(format!(
                "d_model ({}) must be a positive multiple of heads ({})",
                self.d_model, self.heads
            ));
        }
        if self.n_patches == 0 || self.n_classes == 0 {
            return bad("n_patches and n_classes must be > 0".into());
        }
        if !(self.mlp_ratio.is_finite() && self.mlp_ratio > 0.0) {
            return bad(format!("mlp_ratio must be > 0, got {}", self.mlp_ratio));
        }
        if self.mlp_hidden() == 0 {
            return bad("mlp_ratio * d_model rounds to 0".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        if !(0.0..1.0).contains(&self.drop_path) {
            return bad(format!("drop_path must be in [0, 1), got {}", self.drop_path));
        }
        if let AttentionKind::PatchToCluster { clusters, .. } = self.attention
            && clusters == 0
        {
            return bad("clusters must be > 0".into());
        }
        Ok(())
    }

    /// Hidden width of the MLP (`round(d_model * mlp_ratio)`).
    pub fn mlp_hidden(&self) -> usize {
        (self.d_model as f64 * self.mlp_ratio).round() as usize
    }

    /// Stochastic-depth rate of block `index` (linear schedule from 0 to `drop_path`).
    pub fn drop_path_at(&self, index: usize) -> f64 {
        if self.depth <= 1 {
            self.drop_path
        } else {
            self.drop_path * index as f64 / (self.depth - 1) as f64
        }
    }

    /// Number of clusters M for patch-to-cluster attention, `None` for patch-to-patch.
    pub fn clusters(&self) -> Option<usize> {
        match self.attention {
            AttentionKind::PatchToCluster { clusters, .. } => Some(clusters),
            AttentionKind::PatchToPatch => None,
        }
    }

    /// Whether `forward` needs an externally supplied hard assignment `[B, M, N]`.
    pub fn needs_assignment(&self) -> bool {
        matches!(
            self.attention,
            AttentionKind::PatchToCluster {
                assignment: Assignment::Hard,
                ..
            }
        )
    }

    /// Number of extra (non-patch) tokens at the front of the sequence: 1 with a class token.
    pub fn extra_tokens(&self) -> usize {
        match self.pooling {
            Pooling::ClassToken => 1,
            Pooling::Mean => 0,
        }
    }
}
