//! Gaussian mixture with **diagonal** covariances, fitted by EM like scikit-learn's
//! `GaussianMixture(covariance_type="diag", init_params="kmeans")` (`reg_covar = 1e-6`,
//! `tol = 1e-3` on the mean log-likelihood, `max_iter = 100`, a final E-step gives the labels).
//!
//! ## Coordinates
//! The EM runs in the exact PCA coordinates of the `n` points, not in the `d`-dimensional input
//! space: with the centred Gram matrix `Gc = U Λ Uᵀ`, point `i` gets coordinates
//! `yᵢ = (√λ₁·U_{i1}, √λ₂·U_{i2}, …)` (descending `λ`). `Y Yᵀ = Gc`, so this is an isometry of the
//! centred data (distances, means and variances along every direction are preserved) in at most
//! `n − 1` dimensions instead of 2048 — EM costs `O(n·k·(n−1))` per iteration whatever `d` is.
//! Directions with `λ ≤ 1e-7·λ_max` (f32 round-off of the Gram matrix, and the one direction
//! removed by centring) are dropped: every point sits at 0 there, so they add the same constant
//! to every component's log-likelihood.
//!
//! **The diagonal is therefore in the PCA basis of the image's own patches**, i.e. each
//! component has its own variance along each principal axis, rather than along the raw embedding
//! axes. The two models coincide for spherical clusters; scikit-learn's results on the same PCA
//! coordinates are the reference in the tests.

use rand_chacha::ChaCha8Rng;

use super::ClusterError;
use super::kmeans::kmeans;
use super::linalg::sym_eigen;

/// Covariance regulariser added to every variance (scikit-learn's `reg_covar` default).
pub const REG_COVAR: f64 = 1e-6;
/// Convergence threshold on the change of the mean log-likelihood (scikit-learn's `tol`).
pub const TOL: f64 = 1e-3;
/// EM iteration cap (scikit-learn's `max_iter`).
pub const MAX_ITER: usize = 100;
/// Relative eigenvalue below which a principal direction is treated as empty.
const RANK_TOL: f64 = 1e-7;

/// PCA coordinates (`n × p`, row-major) of the points whose centred Gram matrix is `gram_c`.
/// Returns `(coords, p)`.
pub(crate) fn pca_coords(gram_c: &[f64], n: usize) -> Result<(Vec<f64>, usize), ClusterError> {
    let eig = sym_eigen(gram_c, n).ok_or(ClusterError::NoConvergence("GMM PCA eigensolver"))?;
    let lmax = eig.values.last().copied().unwrap_or(0.0);
    let keep: Vec<usize> = (0..n)
        .rev()
        .filter(|&r| eig.values[r] > 0.0 && eig.values[r] > RANK_TOL * lmax)
        .collect();
    let p = keep.len();
    let mut y = vec![0.0; n * p];
    for (c, &r) in keep.iter().enumerate() {
        let s = eig.values[r].sqrt();
        let v = &eig.vectors[r * n..(r + 1) * n];
        for i in 0..n {
            y[i * p + c] = s * v[i];
        }
    }
    Ok((y, p))
}

/// Diagonal-covariance GMM labels (not canonicalised), initialised from k-means.
pub(crate) fn gmm(
    gram_c: &[f64],
    dist2: &[f64],
    n: usize,
    k: usize,
    n_init: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<u32>, ClusterError> {
    let init = kmeans(gram_c, dist2, n, k, n_init, rng).labels;
    em_from_labels(gram_c, n, &init)
}

/// EM from the one-hot responsibilities of `init` (labels in `0..k'`); returns the labels of
/// the final E-step (not canonicalised).
pub(crate) fn em_from_labels(gram_c: &[f64], n: usize, init: &[u32]) -> Result<Vec<u32>, ClusterError> {
    let (y, p) = pca_coords(gram_c, n)?;
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is available (checked above).
            return Ok(unsafe { em_avx2(&y, p, n, init) }.labels);
        }
    }
    Ok(em_portable(&y, p, n, init).labels)
}

/// What [`em`] ends with.
#[derive(Debug, PartialEq)]
struct EmFit {
    /// Labels of the final E-step (not canonicalised).
    labels: Vec<u32>,
    /// Mean log-likelihood of the final E-step (0 when there is nothing to fit).
    log_likelihood: f64,
}

/// [`em`] compiled with AVX2 (4-lane f64 loops; no FMA contraction, so identical results).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn em_avx2(y: &[f64], p: usize, n: usize, init: &[u32]) -> EmFit {
    em(y, p, n, init)
}

/// [`em`] compiled for the crate's baseline target features (what CPUs without AVX2 run).
fn em_portable(y: &[f64], p: usize, n: usize, init: &[u32]) -> EmFit {
    em(y, p, n, init)
}

/// EM on the PCA coordinates `y` (`n × p`) from the partition `init`.
#[inline(always)]
fn em(y: &[f64], p: usize, n: usize, init: &[u32]) -> EmFit {
    if p == 0 {
        return EmFit {
            labels: init.to_vec(),
            log_likelihood: 0.0,
        };
    }
    let kk = init.iter().map(|&l| l as usize + 1).max().unwrap_or(1);
    let mut resp = vec![0.0; n * kk];
    for (i, &l) in init.iter().enumerate() {
        resp[i * kk + l as usize] = 1.0;
    }
    let mut model = Model::new(kk, p);
    model.m_step(y, &resp, n);
    let mut lower = f64::NEG_INFINITY;
    for _ in 0..MAX_ITER {
        let prev = lower;
        lower = model.e_step(y, n, &mut resp);
        model.m_step(y, &resp, n);
        if (lower - prev).abs() < TOL {
            break;
        }
    }
    let log_likelihood = model.e_step(y, n, &mut resp);
    let labels = (0..n)
        .map(|i| {
            let row = &resp[i * kk..(i + 1) * kk];
            let mut best = 0;
            for c in 1..kk {
                if row[c] > row[best] {
                    best = c;
                }
            }
            best as u32
        })
        .collect();
    EmFit {
        labels,
        log_likelihood,
    }
}

/// Mixture parameters. Means and inverse variances are kept twice: component-major for the
/// M-step's accumulations, and dimension-major (`[j][c]`) so that the E-step's inner loop runs
/// over components and vectorises.
struct Model {
    /// Components.
    kk: usize,
    /// PCA dimensions.
    p: usize,
    /// Log mixture weights.
    log_w: Vec<f64>,
    /// `kk × p` sums, then means.
    means: Vec<f64>,
    /// `kk × p` weighted squared deviations.
    var: Vec<f64>,
    /// `p × kk` means.
    means_t: Vec<f64>,
    /// `p × kk` inverse variances.
    inv_var_t: Vec<f64>,
    /// `−½ Σⱼ ln varⱼ` per component.
    half_log_det: Vec<f64>,
    /// Effective member count per component.
    nk: Vec<f64>,
    /// Per-component Mahalanobis scratch for one point.
    q: Vec<f64>,
}

impl Model {
    /// Zeroed parameters for `kk` components in `p` dimensions.
    fn new(kk: usize, p: usize) -> Self {
        Model {
            kk,
            p,
            log_w: vec![0.0; kk],
            means: vec![0.0; kk * p],
            var: vec![0.0; kk * p],
            means_t: vec![0.0; kk * p],
            inv_var_t: vec![1.0; kk * p],
            half_log_det: vec![0.0; kk],
            nk: vec![0.0; kk],
            q: vec![0.0; kk],
        }
    }

    /// M-step from responsibilities `resp` (`n × kk`, probabilities).
    #[inline(always)]
    fn m_step(&mut self, y: &[f64], resp: &[f64], n: usize) {
        let (kk, p) = (self.kk, self.p);
        self.nk.iter_mut().for_each(|v| *v = 10.0 * f64::EPSILON);
        self.means.iter_mut().for_each(|m| *m = 0.0);
        for i in 0..n {
            let yi = &y[i * p..(i + 1) * p];
            for c in 0..kk {
                let r = resp[i * kk + c];
                self.nk[c] += r;
                if r != 0.0 {
                    for (m, &v) in self.means[c * p..(c + 1) * p].iter_mut().zip(yi) {
                        *m += r * v;
                    }
                }
            }
        }
        for c in 0..kk {
            let inv = 1.0 / self.nk[c];
            self.means[c * p..(c + 1) * p].iter_mut().for_each(|m| *m *= inv);
        }
        self.var.iter_mut().for_each(|v| *v = 0.0);
        for i in 0..n {
            let yi = &y[i * p..(i + 1) * p];
            for c in 0..kk {
                let r = resp[i * kk + c];
                if r != 0.0 {
                    let mu = &self.means[c * p..(c + 1) * p];
                    for ((s, &v), &m) in self.var[c * p..(c + 1) * p].iter_mut().zip(yi).zip(mu) {
                        let dlt = v - m;
                        *s += r * dlt * dlt;
                    }
                }
            }
        }
        let total: f64 = self.nk.iter().sum();
        for c in 0..kk {
            let inv = 1.0 / self.nk[c];
            let mut log_det = 0.0;
            // Σ ln v as ln of partial products (8 variances ≥ 1e-6 each cannot under/overflow)
            for chunk in self.var[c * p..(c + 1) * p].chunks_mut(8) {
                let mut prod = 1.0;
                for v in chunk.iter_mut() {
                    *v = *v * inv + REG_COVAR;
                    prod *= *v;
                }
                log_det += prod.ln();
            }
            for j in 0..p {
                self.means_t[j * kk + c] = self.means[c * p + j];
                self.inv_var_t[j * kk + c] = 1.0 / self.var[c * p + j];
            }
            self.half_log_det[c] = -0.5 * log_det;
            self.log_w[c] = (self.nk[c] / total).ln();
        }
    }

    /// E-step: writes responsibilities (probabilities) into `resp` and returns the mean
    /// log-likelihood.
    #[inline(always)]
    fn e_step(&mut self, y: &[f64], n: usize, resp: &mut [f64]) -> f64 {
        let (kk, p) = (self.kk, self.p);
        let cst = -0.5 * p as f64 * (2.0 * std::f64::consts::PI).ln();
        let mut total = 0.0;
        for i in 0..n {
            let yi = &y[i * p..(i + 1) * p];
            self.q.iter_mut().for_each(|v| *v = 0.0);
            for (j, &v) in yi.iter().enumerate() {
                let mu = &self.means_t[j * kk..(j + 1) * kk];
                let iv = &self.inv_var_t[j * kk..(j + 1) * kk];
                for ((q, &m), &w) in self.q.iter_mut().zip(mu).zip(iv) {
                    let dlt = v - m;
                    *q += dlt * dlt * w;
                }
            }
            let row = &mut resp[i * kk..(i + 1) * kk];
            let mut mx = f64::NEG_INFINITY;
            for (c, out) in row.iter_mut().enumerate() {
                *out = cst - 0.5 * self.q[c] + self.half_log_det[c] + self.log_w[c];
                mx = mx.max(*out);
            }
            let mut sum = 0.0;
            for v in row.iter_mut() {
                let t = *v - mx;
                // exp underflows to 0 below about -745; skipping those calls avoids libm's slow
                // underflow path, which far-apart components hit for most terms
                *v = if t < -745.0 { 0.0 } else { t.exp() };
                sum += *v;
            }
            let inv = 1.0 / sum;
            row.iter_mut().for_each(|v| *v *= inv);
            total += mx + sum.ln();
        }
        total / n as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::path::Path;

    use crate::cluster::{Workspace, canonicalise};

    /// One scikit-learn fixture of `tests/fixtures/cluster`, ready for [`em`].
    struct EmCase {
        name: String,
        /// PCA coordinates (`n × p`).
        y: Vec<f64>,
        p: usize,
        n: usize,
        /// scikit-learn's k-means partition (canonical).
        init: Vec<u32>,
        /// scikit-learn's EM labels from that partition (row `gmm_from_kmeans`).
        sklearn: Vec<u32>,
    }

    /// Every fixture of `tests/fixtures/cluster`.
    fn sklearn_em_cases() -> Vec<EmCase> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster");
        let text = std::fs::read_to_string(dir.join("manifest.json")).expect("manifest.json");
        let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest parses");
        let datasets = manifest["datasets"].as_array().expect("datasets");
        datasets
            .iter()
            .map(|ds| {
                let name = ds["name"].as_str().expect("name").to_string();
                let (shape, x) = crate::npy::read_f32(&dir.join(format!("{name}.npy"))).expect("x");
                let (_, labels) =
                    crate::npy::read_i32(&dir.join(format!("{name}_labels.npy"))).expect("labels");
                let (n, d) = (shape[0], shape[1]);
                let row = |want: &str| -> Vec<u32> {
                    let rows = ds["rows"].as_array().expect("rows");
                    let r = rows.iter().position(|m| m == want).expect("row present");
                    labels[r * n..(r + 1) * n].iter().map(|&l| l as u32).collect()
                };
                let mut ws = Workspace::new();
                ws.prepare(&x, n, d).expect("finite data");
                let (y, p) = pca_coords(&ws.gram, n).expect("converges");
                let init = canonicalise(&row("kmeans")).0;
                let sklearn = row("gmm_from_kmeans");
                EmCase {
                    name,
                    y,
                    p,
                    n,
                    init,
                    sklearn,
                }
            })
            .collect()
    }

    #[test]
    fn simd_build_matches_portable_build() {
        // The two builds `em_from_labels` dispatches between, called explicitly on every
        // scikit-learn fixture: the AVX2 build must give the portable build's labels and
        // log-likelihood bit for bit, and the portable build scikit-learn's partition from the
        // same start (so a bug both builds share fails too).
        if cfg!(target_feature = "avx2") {
            eprintln!("note: the crate is compiled with AVX2 enabled, so the portable build uses it too");
        }
        let cases = sklearn_em_cases();
        assert_eq!(cases.len(), 9, "fixtures in tests/fixtures/cluster/manifest.json");
        for EmCase {
            name,
            y,
            p,
            n,
            init,
            sklearn,
        } in cases
        {
            let portable = em_portable(&y, p, n, &init);
            assert!(portable.log_likelihood.is_finite(), "{name}: {portable:?}");
            assert_eq!(
                canonicalise(&portable.labels).0,
                canonicalise(&sklearn).0,
                "{name}: portable EM vs scikit-learn from the same start"
            );
            match avx2_build(&y, p, n, &init) {
                Some(fast) => assert_eq!(fast, portable, "{name}: AVX2 vs portable build"),
                None => eprintln!("SKIPPED (SIMD side): this CPU lacks AVX2; the portable build was checked"),
            }
        }
    }

    /// The AVX2 build's EM, or `None` on a CPU without AVX2.
    fn avx2_build(y: &[f64], p: usize, n: usize, init: &[u32]) -> Option<EmFit> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 is available (checked above).
                return Some(unsafe { em_avx2(y, p, n, init) });
            }
        }
        let _ = (y, p, n, init);
        None
    }

    #[test]
    fn pca_coords_reproduce_the_gram_matrix() {
        // 4 centred points in 3-d
        let pts = [
            [1.0, 2.0, 0.5],
            [-1.0, 0.0, 1.5],
            [0.5, -1.0, -1.0],
            [-0.5, -1.0, -1.0],
        ];
        let n = 4;
        let mut g = vec![0.0; 16];
        for i in 0..n {
            for j in 0..n {
                g[i * n + j] = (0..3).map(|t| pts[i][t] * pts[j][t]).sum();
            }
        }
        let (y, p) = pca_coords(&g, n).expect("converges");
        assert_eq!(p, 3);
        for i in 0..n {
            for j in 0..n {
                let dot: f64 = (0..p).map(|c| y[i * p + c] * y[j * p + c]).sum();
                assert!((dot - g[i * n + j]).abs() < 1e-12);
            }
        }
        // first coordinate carries the largest variance
        let var = |c: usize| (0..n).map(|i| y[i * p + c].powi(2)).sum::<f64>();
        assert!(var(0) >= var(1) && var(1) >= var(2));
    }
}
