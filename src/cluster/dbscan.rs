//! DBSCAN on the `n × n` squared-distance matrix, reproducing scikit-learn's `DBSCAN`
//! (Euclidean metric, `‖xᵢ − xⱼ‖ ≤ eps` neighbourhoods that include the point itself, core points
//! have at least `min_samples` neighbours, clusters grown in index order with a LIFO stack so a
//! border point joins the first cluster that reaches it).
//!
//! Two additions make it usable as a per-frame clusterer that must label every patch:
//!
//! * **default eps** (`eps = None`): the largest relative gap in the upper half of the sorted
//!   minimum-spanning-tree edge lengths `e₀ ≤ … ≤ e_{n−2}`: `eps = √(eⱼ·eⱼ₊₁)` for the
//!   `j ∈ [⌊(n−1)/2⌋, n−3]` that maximises `eⱼ₊₁ / eⱼ`. Within a cluster the MST edges are the
//!   short hops between neighbours; the few edges joining clusters are the longest ones, and the
//!   jump to them is the biggest ratio. Only the upper half is searched because with `k ≤ n/2`
//!   clusters most edges are intra-cluster (this also ignores gaps among near-duplicates). A
//!   ratio of distances, so independent of the scale and dimension of the embeddings. A scaled
//!   median k-NN radius does not work here: in 2048-d, distances concentrate (intra- and
//!   inter-cluster distances of well-separated blobs differ by only ~15%), so any fixed factor
//!   either fragments or merges the clusters.
//! * **noise**: scikit-learn marks noise `-1`; here every noise point joins the cluster of its
//!   nearest non-noise point (ties: lowest index). If no point is core at all, every point goes
//!   to a single cluster.
//!
//! The number of clusters is whatever DBSCAN finds; the requested `k` is not used.

use super::ClusterError;

/// Default `eps` (see the module doc): geometric mean of the two MST edge lengths around the
/// largest relative gap in the upper half of the sorted edges. `0` for a single point.
pub fn default_eps(dist2: &[f64], n: usize) -> f64 {
    if n < 2 {
        return 0.0;
    }
    // Prim's algorithm on the dense distance matrix
    let mut inside = vec![false; n];
    let mut best: Vec<f64> = dist2[..n].iter().map(|v| v.max(0.0).sqrt()).collect();
    inside[0] = true;
    let mut edges = Vec::with_capacity(n - 1);
    for _ in 1..n {
        let mut j = usize::MAX;
        let mut bj = f64::INFINITY;
        for (c, (&b, &ins)) in best.iter().zip(&inside).enumerate() {
            if !ins && (b < bj || j == usize::MAX) {
                bj = b;
                j = c;
            }
        }
        edges.push(bj);
        inside[j] = true;
        for (c, b) in best.iter_mut().enumerate() {
            *b = b.min(dist2[j * n + c].max(0.0).sqrt());
        }
    }
    edges.sort_by(f64::total_cmp);
    let m = edges.len();
    let mut pick = None;
    let mut best_ratio = -1.0;
    for j in m / 2..m.saturating_sub(1) {
        if edges[j] > 0.0 && edges[j + 1] / edges[j] > best_ratio {
            best_ratio = edges[j + 1] / edges[j];
            pick = Some(j);
        }
    }
    match pick {
        Some(j) => (edges[j] * edges[j + 1]).sqrt(),
        None => edges[m - 1] * (1.0 + 1e-6),
    }
}

/// DBSCAN labels (`0..clusters`, canonical by construction) with noise reassigned.
pub(crate) fn dbscan(
    dist2: &[f64],
    n: usize,
    eps: Option<f32>,
    min_samples: usize,
) -> Result<Vec<u32>, ClusterError> {
    if min_samples == 0 {
        return Err(ClusterError::InvalidParameter(
            "dbscan min_samples = 0, expected >= 1 (the point itself counts)".into(),
        ));
    }
    let eps = match eps {
        Some(e) if e.is_finite() && e > 0.0 => f64::from(e),
        Some(e) => {
            return Err(ClusterError::InvalidParameter(format!(
                "dbscan eps = {e}, expected a finite value > 0"
            )));
        }
        None => default_eps(dist2, n),
    };
    let eps2 = eps * eps;
    let neigh: Vec<Vec<usize>> = (0..n)
        .map(|i| (0..n).filter(|&j| dist2[i * n + j] <= eps2).collect())
        .collect();
    let core: Vec<bool> = neigh.iter().map(|v| v.len() >= min_samples).collect();
    const NOISE: u32 = u32::MAX;
    let mut labels = vec![NOISE; n];
    let mut next = 0u32;
    let mut stack = Vec::with_capacity(n);
    for start in 0..n {
        if labels[start] != NOISE || !core[start] {
            continue;
        }
        let mut i = start;
        loop {
            if labels[i] == NOISE {
                labels[i] = next;
                if core[i] {
                    stack.extend(neigh[i].iter().copied().filter(|&v| labels[v] == NOISE));
                }
            }
            match stack.pop() {
                Some(v) => i = v,
                None => break,
            }
        }
        next += 1;
    }
    if next == 0 {
        return Ok(vec![0; n]);
    }
    let clustered: Vec<bool> = labels.iter().map(|&l| l != NOISE).collect();
    for i in 0..n {
        if clustered[i] {
            continue;
        }
        let mut best = usize::MAX;
        let mut bd = f64::INFINITY;
        for j in 0..n {
            if clustered[j] && dist2[i * n + j] < bd {
                bd = dist2[i * n + j];
                best = j;
            }
        }
        labels[i] = labels[best];
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d2(p: &[f64]) -> Vec<f64> {
        let n = p.len();
        let mut d = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                d[i * n + j] = (p[i] - p[j]) * (p[i] - p[j]);
            }
        }
        d
    }

    #[test]
    fn finds_clusters_and_reassigns_noise() {
        // two dense groups and an outlier nearer the second group
        let p = [0.0, 0.1, 0.2, 5.0, 5.1, 5.2, 7.0];
        let lab = dbscan(&d2(&p), 7, Some(0.15), 2).expect("valid");
        assert_eq!(lab, vec![0, 0, 0, 1, 1, 1, 1]);
        // eps boundary is inclusive (distance exactly 1 with eps = 1)
        let lab = dbscan(&d2(&[0.0, 1.0, 10.0]), 3, Some(1.0), 2).expect("valid");
        assert_eq!(lab, vec![0, 0, 0]);
        // nothing is core: one cluster
        let lab = dbscan(&d2(&[0.0, 10.0, 20.0]), 3, Some(1.0), 2).expect("valid");
        assert_eq!(lab, vec![0, 0, 0]);
    }

    #[test]
    fn default_eps_sits_in_the_largest_mst_gap() {
        // MST edges: 1, 1, 1, 8, 1, 1 -> sorted 1,1,1,1,1,8; upper half j in 3..5: gap 1 -> 8
        let p = [0.0, 1.0, 2.0, 3.0, 11.0, 12.0, 13.0];
        let e = default_eps(&d2(&p), 7);
        assert!((e - 8f64.sqrt()).abs() < 1e-12, "{e}");
        let lab = dbscan(&d2(&p), 7, None, 2).expect("valid");
        assert_eq!(lab, vec![0, 0, 0, 0, 1, 1, 1]);
        // two points: just above their distance
        let e = default_eps(&d2(&[0.0, 2.0]), 2);
        assert!(e > 2.0 && e < 2.001);
        assert_eq!(default_eps(&[0.0], 1), 0.0);
        // rejects bad parameters
        assert!(dbscan(&d2(&p), 7, Some(-1.0), 2).is_err());
        assert!(dbscan(&d2(&p), 7, None, 0).is_err());
    }
}
