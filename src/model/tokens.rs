//! Patch features → tokens: linear projection, learned positions, optional class token.

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Distribution, Tensor, backend::Backend};

use crate::model::attention::linear3;

/// Turns `[B, N, in_dim]` patch features into flat `[B*(extra + N), D]` tokens.
#[derive(Module, Debug)]
pub struct TokenEmbedding<B: Backend> {
    /// `in_dim → D` projection shared by all patches.
    pub proj: Linear<B>,
    /// Learned positional embedding `[N, D]`, one row per patch position.
    pub pos: Param<Tensor<B, 2>>,
    /// Learned class token `[1, D]` when class-token pooling is used.
    pub cls: Option<Param<Tensor<B, 2>>>,
}

impl<B: Backend> TokenEmbedding<B> {
    /// Builds the embedding; positions and class token start from N(0, 0.02²).
    pub fn new(
        in_dim: usize,
        d_model: usize,
        n_patches: usize,
        class_token: bool,
        device: &B::Device,
    ) -> Self {
        let init = |rows| Tensor::random([rows, d_model], Distribution::Normal(0.0, 0.02), device);
        Self {
            proj: LinearConfig::new(in_dim, d_model).init(device),
            pos: Param::from_tensor(init(n_patches)),
            cls: class_token.then(|| Param::from_tensor(init(1))),
        }
    }

    /// `[B, N, in_dim]` → flat tokens `[B*(extra + N), D]` (class token first per image).
    pub fn forward(&self, features: Tensor<B, 3>) -> Tensor<B, 2> {
        let [b, n, _] = features.dims();
        let x = linear3(&self.proj, features) + self.pos.val().unsqueeze::<3>();
        let [_, _, d] = x.dims();
        match &self.cls {
            Some(cls) => {
                let cls = cls.val().unsqueeze::<3>().expand([b, 1, d]);
                Tensor::cat(vec![cls, x], 1).reshape([b * (n + 1), d])
            }
            None => x.reshape([b * n, d]),
        }
    }
}
