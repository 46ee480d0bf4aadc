//! K-Means in kernel form: points are only seen through their Gram matrix `K` (and the squared
//! distances `D` derived from it), so one `n × n` matrix serves any input dimension.
//!
//! For a cluster `S` with mean `c`, `‖xᵢ − c‖² = Kᵢᵢ − (2/|S|)·Σ_{j∈S} Kᵢⱼ + (1/|S|²)·Σ_{j,l∈S} Kⱼₗ`,
//! which costs `O(n²)` per Lloyd iteration however large `d` is. Seeding is scikit-learn's
//! greedy k-means++ (`2 + ⌊ln k⌋` candidates per centre, the one that lowers the potential most
//! wins), drawn from the caller's seeded ChaCha RNG; Lloyd runs until no label changes (or
//! `MAX_ITER`); the best of `n_init` seeded restarts (lowest inertia) is kept.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Lloyd iteration cap (scikit-learn's default `max_iter`).
pub(crate) const MAX_ITER: usize = 300;

/// Labels (`0..k'`, not canonicalised) and inertia of the best restart.
pub(crate) struct KMeansFit {
    /// Cluster index per point.
    pub labels: Vec<u32>,
    /// Sum of squared distances of the points to their cluster mean.
    pub inertia: f64,
}

/// Kernel k-means of `n` points given their Gram matrix `kern` and squared distances `dist2`
/// (both `n × n`). Returns at most `k` clusters (fewer only if the points have fewer than `k`
/// distinct positions).
pub(crate) fn kmeans(
    kern: &[f64],
    dist2: &[f64],
    n: usize,
    k: usize,
    n_init: usize,
    rng: &mut ChaCha8Rng,
) -> KMeansFit {
    let mut best: Option<KMeansFit> = None;
    for _ in 0..n_init.max(1) {
        let centres = kmeans_pp(dist2, n, k, rng);
        let fit = lloyd(kern, dist2, n, &centres);
        if best.as_ref().is_none_or(|b| fit.inertia < b.inertia) {
            best = Some(fit);
        }
    }
    best.unwrap_or_else(|| KMeansFit {
        labels: vec![0; n],
        inertia: 0.0,
    })
}

/// Greedy k-means++ seeding on the squared-distance matrix; returns point indices.
pub(crate) fn kmeans_pp(dist2: &[f64], n: usize, k: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let trials = 2 + (k as f64).ln().floor() as usize;
    let first = rng.random_range(0..n);
    let mut centres = vec![first];
    let mut closest: Vec<f64> = dist2[first * n..(first + 1) * n].to_vec();
    let mut pot: f64 = closest.iter().sum();
    let mut cand_closest = vec![0.0; n];
    let mut best_closest = vec![0.0; n];
    while centres.len() < k {
        if pot <= 0.0 {
            break; // every point coincides with a chosen centre
        }
        let mut best_pot = f64::INFINITY;
        let mut best_idx = usize::MAX;
        for _ in 0..trials {
            let target = rng.random::<f64>() * pot;
            let mut acc = 0.0;
            let mut cand = n - 1;
            for (i, &c) in closest.iter().enumerate() {
                acc += c;
                if acc > target {
                    cand = i;
                    break;
                }
            }
            let row = &dist2[cand * n..(cand + 1) * n];
            let mut p = 0.0;
            for ((o, &a), &b) in cand_closest.iter_mut().zip(&closest).zip(row) {
                *o = a.min(b);
                p += *o;
            }
            if p < best_pot {
                best_pot = p;
                best_idx = cand;
                best_closest.copy_from_slice(&cand_closest);
            }
        }
        if best_idx == usize::MAX {
            break; // no candidate lowered the potential (cannot happen for finite distances)
        }
        centres.push(best_idx);
        closest.copy_from_slice(&best_closest);
        pot = best_pot;
    }
    centres
}

/// Lloyd iterations in kernel form, starting from the given seed points.
pub(crate) fn lloyd(kern: &[f64], dist2: &[f64], n: usize, centres: &[usize]) -> KMeansFit {
    let kk = centres.len();
    let mut labels = vec![0u32; n];
    let mut own = vec![0.0f64; n];
    for i in 0..n {
        let mut bc = 0;
        let mut bd = f64::INFINITY;
        for (c, &p) in centres.iter().enumerate() {
            let dd = dist2[i * n + p];
            if dd < bd {
                bd = dd;
                bc = c;
            }
        }
        labels[i] = bc as u32;
        own[i] = bd;
    }
    let mut counts = vec![0usize; kk];
    let mut rowsum = vec![0.0f64; kk * n];
    let mut csum = vec![0.0f64; kk];
    let mut inertia = f64::INFINITY;
    for _ in 0..MAX_ITER {
        counts.iter_mut().for_each(|c| *c = 0);
        rowsum.iter_mut().for_each(|v| *v = 0.0);
        for (j, &l) in labels.iter().enumerate() {
            let c = l as usize;
            counts[c] += 1;
            let dst = &mut rowsum[c * n..(c + 1) * n];
            for (o, &kv) in dst.iter_mut().zip(&kern[j * n..(j + 1) * n]) {
                *o += kv;
            }
        }
        csum.iter_mut().for_each(|v| *v = 0.0);
        for (j, &l) in labels.iter().enumerate() {
            let c = l as usize;
            csum[c] += rowsum[c * n + j];
        }
        let mut changed = false;
        inertia = 0.0;
        for i in 0..n {
            let kii = kern[i * n + i];
            let mut bc = labels[i] as usize;
            let mut bd = f64::INFINITY;
            for c in 0..kk {
                if counts[c] == 0 {
                    continue;
                }
                let inv = 1.0 / counts[c] as f64;
                let dd = (kii - 2.0 * rowsum[c * n + i] * inv + csum[c] * inv * inv).max(0.0);
                if dd < bd {
                    bd = dd;
                    bc = c;
                }
            }
            if bc as u32 != labels[i] {
                changed = true;
                labels[i] = bc as u32;
            }
            own[i] = bd;
            inertia += bd;
        }
        if relocate_empty(&mut labels, &mut own, kk) {
            changed = true;
        }
        if !changed {
            break;
        }
    }
    KMeansFit { labels, inertia }
}

/// Moves the points farthest from their centre into empty clusters (as scikit-learn does).
/// Returns whether anything moved.
fn relocate_empty(labels: &mut [u32], own: &mut [f64], kk: usize) -> bool {
    let mut moved = false;
    loop {
        let mut counts = vec![0usize; kk];
        for &l in labels.iter() {
            counts[l as usize] += 1;
        }
        let Some(empty) = counts.iter().position(|&c| c == 0) else {
            return moved;
        };
        let mut far = None;
        let mut far_d = -1.0;
        for (i, &l) in labels.iter().enumerate() {
            if counts[l as usize] > 1 && own[i] > far_d {
                far_d = own[i];
                far = Some(i);
            }
        }
        let Some(i) = far else {
            return moved; // fewer points than clusters: nothing to move
        };
        labels[i] = empty as u32;
        own[i] = 0.0;
        moved = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn gram_of(points: &[[f64; 2]]) -> (Vec<f64>, Vec<f64>) {
        let n = points.len();
        let mut k = vec![0.0; n * n];
        let mut d = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                k[i * n + j] = points[i][0] * points[j][0] + points[i][1] * points[j][1];
                let dx = points[i][0] - points[j][0];
                let dy = points[i][1] - points[j][1];
                d[i * n + j] = dx * dx + dy * dy;
            }
        }
        (k, d)
    }

    #[test]
    fn separates_two_groups_and_reports_inertia() {
        let pts = [[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 1.0]];
        let (k, d) = gram_of(&pts);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let fit = kmeans(&k, &d, 4, 2, 3, &mut rng);
        assert_eq!(fit.labels[0], fit.labels[1]);
        assert_eq!(fit.labels[2], fit.labels[3]);
        assert_ne!(fit.labels[0], fit.labels[2]);
        // each point is 0.5 from its centre: inertia = 4 * 0.25
        assert!((fit.inertia - 1.0).abs() < 1e-12);
    }

    #[test]
    fn kmeans_pp_never_repeats_a_point_while_distance_remains() {
        let pts = [[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0]];
        let (_, d) = gram_of(&pts);
        for seed in 0..20 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut c = kmeans_pp(&d, 5, 5, &mut rng);
            c.sort_unstable();
            assert_eq!(c, vec![0, 1, 2, 3, 4]);
        }
    }
}
