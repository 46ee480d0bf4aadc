//! Agglomerative (hierarchical) clustering on the `n × n` squared-distance matrix with the
//! Lance–Williams update, stopped when `k` clusters remain.
//!
//! * Ward works on squared Euclidean distances (the Lance–Williams Ward recurrence is exact on
//!   them and gives the same merge order as scipy/scikit-learn's Euclidean Ward);
//! * average and complete work on Euclidean distances (`√D`), as scikit-learn does.
//!
//! All three linkages are reducible (`d(c, a∪b) ≥ min(d(c,a), d(c,b))`), so a cached nearest
//! neighbour per row stays valid unless it pointed at one of the two merged clusters; that keeps
//! the whole run at about `O(n²)` instead of `O(n³)`. Ties go to the lowest `(row, column)` pair.
//! Cutting a monotone dendrogram at `k` clusters is the state after the first `n − k` merges,
//! which is what scikit-learn's `_hc_cut` returns.

use super::Linkage;

/// Cluster index (not canonicalised) of each of the `n` points after `n − k` merges.
pub(crate) fn agglomerative(dist2: &[f64], n: usize, k: usize, linkage: Linkage) -> Vec<u32> {
    let mut dm: Vec<f64> = match linkage {
        Linkage::Ward => dist2.to_vec(),
        Linkage::Average | Linkage::Complete => dist2.iter().map(|v| v.max(0.0).sqrt()).collect(),
    };
    let mut active = vec![true; n];
    let mut size = vec![1usize; n];
    let mut owner: Vec<usize> = (0..n).collect();
    // nearest active neighbour with a larger index, per row
    let mut nn = vec![usize::MAX; n];
    let mut nnd = vec![f64::INFINITY; n];
    for i in 0..n {
        row_min(&dm, &active, n, i, &mut nn, &mut nnd);
    }
    let mut clusters = n;
    while clusters > k {
        // global minimum over the row caches (lowest row on ties)
        let mut a = usize::MAX;
        let mut best = f64::INFINITY;
        for i in 0..n {
            if active[i] && nn[i] != usize::MAX && nnd[i] < best {
                best = nnd[i];
                a = i;
            }
        }
        if a == usize::MAX {
            break; // cannot happen with finite distances; keep what we have
        }
        let b = nn[a];
        let (sa, sb) = (size[a] as f64, size[b] as f64);
        let dab = dm[a * n + b];
        for c in 0..n {
            if !active[c] || c == a || c == b {
                continue;
            }
            let dac = dm[a * n + c];
            let dbc = dm[b * n + c];
            let v = match linkage {
                Linkage::Ward => {
                    let sc = size[c] as f64;
                    ((sa + sc) * dac + (sb + sc) * dbc - sc * dab) / (sa + sb + sc)
                }
                Linkage::Average => (sa * dac + sb * dbc) / (sa + sb),
                Linkage::Complete => dac.max(dbc),
            };
            dm[a * n + c] = v;
            dm[c * n + a] = v;
        }
        active[b] = false;
        // retired clusters are never the minimum again
        for c in 0..n {
            dm[b * n + c] = f64::INFINITY;
            dm[c * n + b] = f64::INFINITY;
        }
        size[a] += size[b];
        for o in owner.iter_mut() {
            if *o == b {
                *o = a;
            }
        }
        clusters -= 1;
        // refresh caches: row a, rows whose neighbour was a or b, and rows before a whose
        // distance to the merged cluster now ties or beats their cached neighbour
        for c in 0..n {
            if !active[c] {
                continue;
            }
            if c == a || nn[c] == a || nn[c] == b {
                row_min(&dm, &active, n, c, &mut nn, &mut nnd);
            } else if c < a {
                let v = dm[c * n + a];
                if v < nnd[c] || (v == nnd[c] && a < nn[c]) {
                    nnd[c] = v;
                    nn[c] = a;
                }
            }
        }
    }
    owner.iter().map(|&o| o as u32).collect()
}

/// Recomputes the nearest active neighbour `j > i` of row `i` (retired columns hold +inf).
fn row_min(dm: &[f64], active: &[bool], n: usize, i: usize, nn: &mut [usize], nnd: &mut [f64]) {
    let row = &dm[i * n + i + 1..(i + 1) * n];
    let bd = row.iter().copied().fold(f64::INFINITY, f64::min);
    let mut bj = row
        .iter()
        .position(|&v| v == bd)
        .map_or(usize::MAX, |p| i + 1 + p);
    if bd == f64::INFINITY {
        // only retired (or infinitely far) clusters left: take the first active one, if any
        bj = ((i + 1)..n).find(|&j| active[j]).unwrap_or(usize::MAX);
    }
    nn[i] = bj;
    nnd[i] = bd;
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
    fn one_dimensional_chains() {
        // 0 1 2 | 10 11 | 30
        let p = [0.0, 1.0, 2.0, 10.0, 11.0, 30.0];
        for l in [Linkage::Ward, Linkage::Average, Linkage::Complete] {
            let lab = agglomerative(&d2(&p), 6, 3, l);
            assert_eq!(lab[0], lab[1]);
            assert_eq!(lab[1], lab[2]);
            assert_eq!(lab[3], lab[4]);
            assert_ne!(lab[0], lab[3]);
            assert_ne!(lab[5], lab[3]);
            assert_ne!(lab[5], lab[0]);
        }
    }

    #[test]
    fn complete_and_average_differ_where_expected() {
        // Complete linkage refuses to chain: 0,1 | 2.2,3.2 | 4.4 with k=2.
        let p = [0.0, 1.0, 2.2, 3.2, 4.4];
        let c = agglomerative(&d2(&p), 5, 2, Linkage::Complete);
        assert_eq!(c[0], c[1]);
        assert_eq!(c[2], c[3]);
        assert_eq!(c[3], c[4]);
        assert_ne!(c[0], c[2]);
        // k = n leaves every point alone, k = 1 merges all
        let all = agglomerative(&d2(&p), 5, 5, Linkage::Ward);
        assert_eq!(all, vec![0, 1, 2, 3, 4]);
        let one = agglomerative(&d2(&p), 5, 1, Linkage::Average);
        assert!(one.iter().all(|&l| l == one[0]));
    }
}
