//! Reference clusterings computed with linfa-clustering on the same data, for the tests
//! (agreement / adjusted Rand index against our engine) and as a speed comparison in the
//! benchmark. Not used on the hot path: linfa's `KMeans` measured 1.1–5.6 ms per `36 × 2048`
//! image (`n_runs = 1`), 5–25× over the per-frame budget, and its `GaussianMixture` only offers
//! full covariances (singular for 36 points in 2048-d), so it is run on low-dimensional data.

use linfa::DatasetBase;
use linfa::ParamGuard;
use linfa::traits::{Fit, Predict, Transformer};
use linfa_clustering::{Dbscan, GaussianMixtureModel, KMeans};
use ndarray::Array2;

/// A linfa call failed (bad shape or parameters, or linfa's own error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("linfa reference: {0}")]
pub struct ReferenceError(pub String);

/// `n × d` row-major f32 data as an f64 ndarray.
fn to_array(x: &[f32], n: usize, d: usize) -> Result<Array2<f64>, ReferenceError> {
    if x.len() != n.saturating_mul(d) {
        return Err(ReferenceError(format!(
            "data has {} values, expected n*d = {n}*{d}",
            x.len()
        )));
    }
    Array2::from_shape_vec((n, d), x.iter().map(|&v| f64::from(v)).collect())
        .map_err(|e| ReferenceError(e.to_string()))
}

/// linfa `KMeans` (k-means++ init, fixed internal seed, `n_runs` restarts) labels.
pub fn linfa_kmeans(
    x: &[f32],
    n: usize,
    d: usize,
    k: usize,
    n_runs: usize,
) -> Result<Vec<u32>, ReferenceError> {
    let data = to_array(x, n, d)?;
    let ds = DatasetBase::from(data.clone());
    let model = KMeans::params(k)
        .n_runs(n_runs)
        .fit(&ds)
        .map_err(|e| ReferenceError(e.to_string()))?;
    Ok(model.predict(&data).iter().map(|&l| l as u32).collect())
}

/// linfa `GaussianMixtureModel` (full covariances, k-means init) labels; give it low-dimensional
/// data (e.g. a few PCA coordinates), full covariances need `n ≫ d` points.
pub fn linfa_gmm(
    x: &[f32],
    n: usize,
    d: usize,
    k: usize,
    reg_covar: f64,
) -> Result<Vec<u32>, ReferenceError> {
    let data = to_array(x, n, d)?;
    let ds = DatasetBase::from(data.clone());
    let model = GaussianMixtureModel::params(k)
        .n_runs(1)
        .tolerance(1e-3)
        .reg_covariance(reg_covar)
        .max_n_iterations(100)
        .fit(&ds)
        .map_err(|e| ReferenceError(e.to_string()))?;
    Ok(model.predict(&data).iter().map(|&l| l as u32).collect())
}

/// linfa `Dbscan` labels (`None` = noise); linfa's neighbourhood is `distance < eps` (strict).
pub fn linfa_dbscan(
    x: &[f32],
    n: usize,
    d: usize,
    eps: f64,
    min_samples: usize,
) -> Result<Vec<Option<u32>>, ReferenceError> {
    let data = to_array(x, n, d)?;
    let params = Dbscan::params(min_samples)
        .tolerance(eps)
        .check()
        .map_err(|e| ReferenceError(e.to_string()))?;
    let labels = params.transform(&data);
    Ok(labels.iter().map(|l| l.map(|v| v as u32)).collect())
}
