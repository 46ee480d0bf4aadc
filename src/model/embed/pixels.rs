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

#[cfg(test)]
mod tests {
    use burn::tensor::TensorData;

    use super::*;
    use crate::patch::{FACE_SIZE, PATCH_SIZE, face_to_chw, patchify};

    /// The pixel embedder cuts the same 36 patches as [`patchify`], the byte-level reference of
    /// the patch geometry: patch `p` of the embedding holds patch `p`'s pixels, channel-major.
    #[test]
    fn pixel_patches_are_patchify_patches() {
        type B = burn::backend::NdArray<f32>;
        // Every pixel distinct, so a patch or channel in the wrong place cannot match.
        let face = image::RgbImage::from_fn(FACE_SIZE, FACE_SIZE, |x, y| {
            image::Rgb([(x * 2 + y) as u8, (y * 2 + x / 3) as u8, (x * 7 + y * 5) as u8])
        });
        let mut chw = vec![];
        face_to_chw(&face, &mut chw);
        let s = FACE_SIZE as usize;
        let x = Tensor::<B, 4>::from_data(TensorData::new(chw, [1, 3, s, s]), &Default::default());
        let got: Vec<f32> = PixelEmbedder::<B>::new()
            .embed(x)
            .unwrap()
            .into_data()
            .to_vec()
            .unwrap();
        let patches = patchify(&face, PATCH_SIZE).unwrap();
        assert_eq!(got.len(), patches.len() * PIXELS_DIM);
        let side = PATCH_SIZE as usize;
        for (p, bytes) in patches.iter().enumerate() {
            for (i, px) in bytes.chunks(3).enumerate() {
                for (c, &v) in px.iter().enumerate() {
                    let feature = got[p * PIXELS_DIM + c * side * side + i];
                    assert_eq!(feature, v as f32 / 255.0, "patch {p}, pixel {i}, channel {c}");
                }
            }
        }
    }
}
