//! Building and preparing patch→cluster assignment matrices `A` of shape `[B, M, N]`.
//!
//! Row `m` of `A[b]` holds the weights that average image `b`'s patch tokens into centroid
//! `m`: for hard clustering `1/|cluster m|` on its members and 0 elsewhere; an empty
//! cluster is an all-zero row and is masked out of the attention softmax.

use burn::tensor::{Tensor, TensorData, backend::Backend};

use crate::cluster::{ClusterSpec, cluster_batch};
use crate::model::error::ModelError;

/// Additive score bias that removes a key from the softmax (exp underflows to exactly 0).
pub(crate) const MASK_BIAS: f32 = -1.0e9;

/// Builds the normalised hard assignment `[batch, m, n]` from per-image cluster labels.
///
/// `labels` holds `batch * n` cluster ids, image-major (the clustering engine's output
/// concatenated); every id must be `< m`. Clusters with no member get an all-zero row.
pub fn hard_assignment<B: Backend>(
    labels: &[u32],
    batch: usize,
    n: usize,
    m: usize,
    device: &B::Device,
) -> Result<Tensor<B, 3>, ModelError> {
    if batch == 0 || n == 0 || m == 0 {
        return Err(ModelError::InvalidInput(format!(
            "hard_assignment needs batch, n, m > 0 (got {batch}, {n}, {m})"
        )));
    }
    if labels.len() != batch * n {
        return Err(ModelError::InvalidInput(format!(
            "expected {} cluster labels ({batch} images × {n} patches), got {}",
            batch * n,
            labels.len()
        )));
    }
    if let Some(bad) = labels.iter().find(|&&l| l as usize >= m) {
        return Err(ModelError::InvalidInput(format!(
            "cluster label {bad} out of range for {m} clusters"
        )));
    }
    let mut values = vec![0.0f32; batch * m * n];
    let mut counts = vec![0usize; m];
    for (b, image) in labels.chunks_exact(n).enumerate() {
        counts.iter_mut().for_each(|c| *c = 0);
        image.iter().for_each(|&l| counts[l as usize] += 1);
        let rows = &mut values[b * m * n..(b + 1) * m * n];
        for (p, &l) in image.iter().enumerate() {
            let l = l as usize;
            rows[l * n + p] = 1.0 / counts[l] as f32;
        }
    }
    Ok(Tensor::from_data(TensorData::new(values, [batch, m, n]), device))
}

/// Clusters each of `batch` images' `n` patch features (`[batch, n, dim]`, flat) with `spec` and
/// returns the labels and the hard assignment `[batch, m, n]` a patch-to-cluster model reads.
/// Labels beyond the model's `m` slots (DBSCAN may find more) share the last slot; the returned
/// labels are the clustering's own. The one path from features to an assignment: inference, and
/// fine-tuning with the clusters recomputed from the trunk's current features.
pub fn clustered_assignment<B: Backend>(
    features: &[f32],
    batch: usize,
    n: usize,
    dim: usize,
    spec: &ClusterSpec,
    m: usize,
    device: &B::Device,
) -> Result<(Vec<u32>, Tensor<B, 3>), ModelError> {
    let threads = if batch > 1 {
        std::thread::available_parallelism().map_or(1, |t| t.get())
    } else {
        1
    };
    let out = cluster_batch(features, batch, n, dim, spec, threads)
        .map_err(|e| ModelError::InvalidInput(format!("clustering the patches: {e}")))?;
    let labels: Vec<u32> = out.into_iter().flat_map(|c| c.labels).collect();
    let top = m.max(1) as u32 - 1;
    let capped: Vec<u32> = labels.iter().map(|&l| l.min(top)).collect();
    let a = hard_assignment::<B>(&capped, batch, n, m, device)?;
    Ok((labels, a))
}

/// The identity assignment `[batch, n, n]`: every patch is its own cluster.
///
/// With it, patch-to-cluster attention reduces exactly to patch-to-patch attention.
pub fn identity_assignment<B: Backend>(batch: usize, n: usize, device: &B::Device) -> Tensor<B, 3> {
    let eye: Tensor<B, 2> = Tensor::eye(n, device);
    eye.unsqueeze::<3>().expand([batch, n, n])
}

/// Prepends `extra` identity rows/columns so extra tokens (the class token) act as their
/// own singleton clusters: `[B, M, N]` → `[B, extra + M, extra + N]`.
pub(crate) fn with_extra_tokens<B: Backend>(assign: Tensor<B, 3>, extra: usize) -> Tensor<B, 3> {
    if extra == 0 {
        return assign;
    }
    let [batch, m, n] = assign.dims();
    let device = assign.device();
    let eye: Tensor<B, 2> = Tensor::eye(extra, &device);
    let top = Tensor::cat(
        vec![
            eye.unsqueeze::<3>().expand([batch, extra, extra]),
            Tensor::zeros([batch, extra, n], &device),
        ],
        2,
    );
    let bottom = Tensor::cat(vec![Tensor::zeros([batch, m, extra], &device), assign], 2);
    Tensor::cat(vec![top, bottom], 1)
}

/// Score bias `[B, 1, 1, M]`: 0 for clusters with members, [`MASK_BIAS`] for empty rows.
pub(crate) fn empty_cluster_bias<B: Backend>(assign: &Tensor<B, 3>) -> Tensor<B, 4> {
    let [batch, m, _] = assign.dims();
    let empty = assign
        .clone()
        .abs()
        .sum_dim(2)
        .equal_elem(0.0)
        .reshape([batch, 1, 1, m]);
    Tensor::zeros([batch, 1, 1, m], &assign.device()).mask_fill(empty, MASK_BIAS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray<f32>;

    #[test]
    fn hard_assignment_normalises_rows_and_leaves_empty_rows_zero() {
        let dev = Default::default();
        // one image, 4 patches, 3 clusters; cluster 2 empty
        let a = hard_assignment::<B>(&[0, 1, 0, 0], 1, 4, 3, &dev).unwrap();
        let v = a.into_data().to_vec::<f32>().unwrap();
        let third = 1.0 / 3.0;
        let expect = [third, 0.0, third, third, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        for (x, e) in v.iter().zip(expect) {
            assert!((x - e).abs() < 1e-7, "{v:?}");
        }
    }

    #[test]
    fn hard_assignment_rejects_bad_labels() {
        let dev = Default::default();
        assert!(hard_assignment::<B>(&[0, 1, 5, 0], 1, 4, 3, &dev).is_err());
        assert!(hard_assignment::<B>(&[0, 1, 0], 1, 4, 3, &dev).is_err());
        assert!(hard_assignment::<B>(&[], 0, 4, 3, &dev).is_err());
    }

    #[test]
    fn empty_bias_marks_only_empty_rows() {
        let dev = Default::default();
        let a = hard_assignment::<B>(&[0, 0, 2, 2], 1, 4, 3, &dev).unwrap();
        let bias = empty_cluster_bias(&a).into_data().to_vec::<f32>().unwrap();
        assert_eq!(bias, vec![0.0, MASK_BIAS, 0.0]);
    }

    #[test]
    fn extra_tokens_become_singleton_clusters() {
        let dev = Default::default();
        let a = hard_assignment::<B>(&[0, 1], 1, 2, 2, &dev).unwrap();
        let ext = with_extra_tokens(a, 1);
        assert_eq!(ext.dims(), [1, 3, 3]);
        let v = ext.into_data().to_vec::<f32>().unwrap();
        assert_eq!(v, vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
    }
}
