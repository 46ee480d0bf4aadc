//! Faces to patch features: the one path by which training, evaluation and the live runtime turn
//! 96×96 RGB faces into `[n, 36, dim]` embeddings.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use image::RgbImage;

use super::{EmbedError, Embedder, INPUT_SIZE, normalize_imagenet};
use crate::patch::{NUM_PATCHES, face_to_chw};

/// Faces per call of the embedder.
const BATCH: usize = 64;

/// Embeds 96×96 faces with `embedder` in batches, returning `[n, 36, dim]` image-major values;
/// a face of any other size is an [`EmbedError::FaceSize`] naming it, never a panic.
pub fn embed_faces<B: Backend>(
    faces: &[RgbImage],
    embedder: &Embedder<B>,
    device: &B::Device,
    progress: bool,
) -> Result<Vec<f32>, EmbedError> {
    let side = INPUT_SIZE as u32;
    if let Some((index, f)) = faces
        .iter()
        .enumerate()
        .find(|(_, f)| f.dimensions() != (side, side))
    {
        return Err(EmbedError::FaceSize {
            index,
            width: f.width(),
            height: f.height(),
        });
    }
    let dim = embedder.feat_dim();
    let mut out = Vec::with_capacity(faces.len() * NUM_PATCHES * dim);
    let bar = crate::progress::bar(progress, faces.len().div_ceil(BATCH) as u64, "embedding");
    for chunk in faces.chunks(BATCH) {
        let mut chw = Vec::with_capacity(chunk.len() * 3 * INPUT_SIZE * INPUT_SIZE);
        for f in chunk {
            face_to_chw(f, &mut chw);
        }
        let shape = [chunk.len(), 3, INPUT_SIZE, INPUT_SIZE];
        let x = Tensor::<B, 4>::from_data(TensorData::new(chw, shape), device);
        let e = embedder.embed(normalize_imagenet(x))?;
        let v = e
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .map_err(|e| EmbedError::Config(format!("embedder output is not f32: {e:?}")))?;
        out.extend(v);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(out)
}
