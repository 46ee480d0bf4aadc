//! The weight-free baseline: each 16×16×3 patch flattened as it is.

use core::marker::PhantomData;

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use super::{EmbedError, NUM_PATCHES, PATCH, check_input};

/// Size of a flattened patch: 3 channels × 16 × 16.
pub const PIXELS_DIM: usize = 3 * PATCH * PATCH;

/// Flattens each 16×16 patch: `[B, 3, 96, 96]` → `[B, 36, 768]`; the ViT's own linear layer is
/// the learned projection.
///
/// Patch `p = row * 6 + col`; inside a patch the 768 values are channel-major, i.e. feature
/// index `c * 256 + y * 16 + x` (the order of PyTorch's `F.unfold` / a 16×16 stride-16 conv).
#[derive(Module, Debug)]
pub struct PixelEmbedder<B: Backend> {
    /// No parameters; only ties the type to a backend so it fits the [`super::Embedder`] enum.
    _backend: PhantomData<B>,
}

impl<B: Backend> Default for PixelEmbedder<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B: Backend> PixelEmbedder<B> {
    /// Creates the (parameter-free) embedder.
    pub fn new() -> Self {
        Self {
            _backend: PhantomData,
        }
    }

    /// Flattens the patches of `[B, 3, 96, 96]` images (values passed through unchanged).
    pub fn embed(&self, images: Tensor<B, 4>) -> Result<Tensor<B, 3>, EmbedError> {
        let [b, _, _, _] = check_input(&images)?;
        Ok(super::split_patches(images).reshape([b, NUM_PATCHES, PIXELS_DIM]))
    }
}
