//! Spectral clustering on the `n × n` squared-distance matrix, following scikit-learn's
//! `SpectralClustering(assign_labels="kmeans")` step by step:
//!
//! 1. affinity `A`: RBF `exp(−γ·‖xᵢ − xⱼ‖²)`, or the symmetrised k-nearest-neighbour
//!    connectivity `½(C + Cᵀ)` (each point counts itself among its `n_neighbors`);
//! 2. normalised Laplacian `L = I − D^{-½} A' D^{-½}`, `A'` = `A` without self loops (as
//!    `scipy.sparse.csgraph.laplacian(normed=True)` builds it, diagonal then set to 1);
//! 3. the `k` eigenvectors of the smallest eigenvalues of `L` (= largest of `D^{-½}A'D^{-½}`)
//!    from our own dense symmetric eigensolver (`linalg.rs`);
//! 4. each eigenvector scaled by `D^{-½}` (scikit-learn's `spectral_embedding` recovers
//!    `u = D^{-½} x`; this is the Shi–Malik random-walk embedding — we follow scikit-learn here
//!    rather than Ng–Jordan–Weiss row normalisation so that results are comparable);
//! 5. k-means (kernel form, seeded, several restarts) on the rows of the `n × k` embedding.
//!
//! ## Gamma
//! scikit-learn's default `gamma = 1.0` is meaningless for unnormalised 2048-d embeddings:
//! pairwise squared distances are in the hundreds or thousands, so `exp(−D)` underflows to 0 for
//! every pair and the graph falls apart. The default here is the median heuristic
//! `γ = 1 / median_{i<j} ‖xᵢ − xⱼ‖²`, which puts the typical affinity at `e^{-1}` whatever the
//! scale or dimension of the embeddings (if more than half the pairs coincide, the mean of the
//! squared distances replaces the median).

use rand_chacha::ChaCha8Rng;

use super::kmeans::kmeans;
use super::linalg::sym_eigen;
use super::{Affinity, ClusterError};

/// Data-scaled RBF gamma: `1 / median` of the pairwise squared distances (`i < j`), falling
/// back to `1 / mean` when the median is zero. `None` if every distance is zero.
pub fn median_gamma(dist2: &[f64], n: usize) -> Option<f64> {
    let mut v: Vec<f64> = Vec::with_capacity(n * n.saturating_sub(1) / 2);
    for i in 0..n {
        v.extend_from_slice(&dist2[i * n + i + 1..(i + 1) * n]);
    }
    if v.is_empty() {
        return None;
    }
    let m = median(&mut v);
    if m > 0.0 {
        return Some(1.0 / m);
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    (mean > 0.0).then(|| 1.0 / mean)
}

/// Median (average of the two middle values for an even count), reordering `v`.
pub(crate) fn median(v: &mut [f64]) -> f64 {
    let len = v.len();
    let mid = len / 2;
    let (_, &mut hi, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    if len % 2 == 1 {
        hi
    } else {
        let lo = v[..mid].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        0.5 * (lo + hi)
    }
}

/// Builds the affinity matrix (`n × n`, zero diagonal) for the chosen affinity.
pub(crate) fn affinity(dist2: &[f64], n: usize, aff: &Affinity) -> Result<Vec<f64>, ClusterError> {
    let mut a = vec![0.0; n * n];
    match *aff {
        Affinity::Rbf { gamma } => {
            let g = match gamma {
                Some(g) if g.is_finite() && g > 0.0 => f64::from(g),
                Some(g) => {
                    return Err(ClusterError::InvalidParameter(format!(
                        "spectral gamma = {g}, expected a finite value > 0"
                    )));
                }
                None => median_gamma(dist2, n).unwrap_or(1.0),
            };
            for i in 0..n {
                for j in (i + 1)..n {
                    let v = (-g * dist2[i * n + j]).exp();
                    a[i * n + j] = v;
                    a[j * n + i] = v;
                }
            }
        }
        Affinity::NearestNeighbors { n_neighbors } => {
            if n_neighbors < 2 {
                return Err(ClusterError::InvalidParameter(format!(
                    "spectral n_neighbors = {n_neighbors}, expected >= 2 (the point itself counts as one)"
                )));
            }
            // neighbours including the point itself, as kneighbors_graph(include_self=True)
            let nb = n_neighbors.min(n);
            let mut order: Vec<usize> = Vec::with_capacity(n);
            for i in 0..n {
                order.clear();
                order.extend(0..n);
                let row = &dist2[i * n..(i + 1) * n];
                // self first (distance 0), then by distance, ties by index: a total order, so
                // the selected set is deterministic; only the nb smallest are needed
                let cmp = |x: &usize, y: &usize| {
                    (*x != i)
                        .cmp(&(*y != i))
                        .then(row[*x].total_cmp(&row[*y]))
                        .then(x.cmp(y))
                };
                if nb < n {
                    order.select_nth_unstable_by(nb - 1, cmp);
                }
                for &j in &order[..nb] {
                    if j != i {
                        a[i * n + j] += 0.5;
                        a[j * n + i] += 0.5;
                    }
                }
            }
        }
    }
    Ok(a)
}

/// Spectral clustering labels (not canonicalised) of the `n` points.
pub(crate) fn spectral(
    dist2: &[f64],
    n: usize,
    k: usize,
    aff: &Affinity,
    n_init: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<u32>, ClusterError> {
    let mut m = affinity(dist2, n, aff)?;
    let dd: Vec<f64> = (0..n)
        .map(|i| {
            let deg: f64 = m[i * n..(i + 1) * n].iter().sum();
            if deg > 0.0 { deg.sqrt() } else { 1.0 }
        })
        .collect();
    // M = D^-1/2 A' D^-1/2: its largest eigenvalues are L's smallest. scikit-learn sets the
    // Laplacian's diagonal to 1 everywhere (`_set_diag`), so isolated nodes keep M = 0.
    for i in 0..n {
        for j in 0..n {
            m[i * n + j] /= dd[i] * dd[j];
        }
    }
    let eig = sym_eigen(&m, n).ok_or(ClusterError::NoConvergence("spectral eigensolver"))?;
    let kk = k.min(n);
    // embedding rows: e[i][c] = v_c[i] / dd[i] for the kk largest eigenvalues
    let mut emb = vec![0.0; n * kk];
    for c in 0..kk {
        let r = n - 1 - c;
        let v = &eig.vectors[r * n..(r + 1) * n];
        for i in 0..n {
            emb[i * kk + c] = v[i] / dd[i];
        }
    }
    let mut kern = vec![0.0; n * n];
    for i in 0..n {
        for j in i..n {
            let s: f64 = (0..kk).map(|c| emb[i * kk + c] * emb[j * kk + c]).sum();
            kern[i * n + j] = s;
            kern[j * n + i] = s;
        }
    }
    let mut d2 = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            d2[i * n + j] = (kern[i * n + i] + kern[j * n + j] - 2.0 * kern[i * n + j]).max(0.0);
        }
    }
    Ok(kmeans(&kern, &d2, n, k, n_init, rng).labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn median_gamma_falls_back_to_mean() {
        // 3 points, two identical: distances (0, 4, 4) -> median 4
        let d = [0.0, 0.0, 4.0, 0.0, 0.0, 4.0, 4.0, 4.0, 0.0];
        assert_eq!(median_gamma(&d, 3), Some(0.25));
        // 4 points, three identical: distances 0,0,0,9,9,9 -> median 4.5
        let mut d4 = vec![0.0; 16];
        for i in 0..3 {
            d4[i * 4 + 3] = 9.0;
            d4[3 * 4 + i] = 9.0;
        }
        assert_eq!(median_gamma(&d4, 4), Some(1.0 / 4.5));
        assert_eq!(median_gamma(&[0.0; 4], 2), None);
    }

    #[test]
    fn knn_affinity_is_symmetric_half_weights() {
        // points on a line at 0, 1, 5
        let p = [0.0f64, 1.0, 5.0];
        let mut d = vec![0.0; 9];
        for i in 0..3 {
            for j in 0..3 {
                d[i * 3 + j] = (p[i] - p[j]).powi(2);
            }
        }
        let a = affinity(&d, 3, &Affinity::NearestNeighbors { n_neighbors: 2 }).expect("valid");
        // 0<->1 mutual (1.0), 2->1 one-way (0.5), 0-2 none
        assert_eq!(a, vec![0.0, 1.0, 0.0, 1.0, 0.0, 0.5, 0.0, 0.5, 0.0]);
        assert!(affinity(&d, 3, &Affinity::NearestNeighbors { n_neighbors: 1 }).is_err());
        assert!(affinity(&d, 3, &Affinity::Rbf { gamma: Some(-1.0) }).is_err());
    }
}
