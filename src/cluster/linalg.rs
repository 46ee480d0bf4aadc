//! Dependency-free symmetric eigensolver for the small (`n ≤ ~64`) matrices the clustering works
//! on (and, crate-visible for it, the PCA of the result plots, `train::plots::pca_2d`):
//! Householder reduction to tridiagonal form, then the implicit QL iteration with Wilkinson
//! shifts. Cost is `O(n³)` with a small constant (about `5n³` flops for eigenvectors too), far
//! below cyclic Jacobi, which needs several full sweeps of `n²/2` rotations.
//!
//! Eigenvectors are kept as **rows** (`vectors[r*n..(r+1)*n]` is the eigenvector of
//! `values[r]`) so that every plane rotation touches two contiguous rows and vectorises.

/// Eigen-decomposition of a symmetric matrix: ascending eigenvalues, eigenvectors as rows.
pub(crate) struct SymEigen {
    /// Eigenvalues in ascending order.
    pub values: Vec<f64>,
    /// Row `r` (`n` values) is the unit eigenvector of `values[r]`.
    pub vectors: Vec<f64>,
}

/// Decomposes the symmetric `n × n` row-major matrix `a` (only symmetric input is meaningful).
/// Returns `None` if the QL iteration fails to converge (not observed for finite input) or if
/// the input holds non-finite values.
pub(crate) fn sym_eigen(a: &[f64], n: usize) -> Option<SymEigen> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is available (checked above).
            return unsafe { sym_eigen_avx2(a, n) };
        }
    }
    sym_eigen_portable(a, n)
}

/// [`sym_eigen`] compiled for the crate's baseline target features (what CPUs without AVX2 run).
fn sym_eigen_portable(a: &[f64], n: usize) -> Option<SymEigen> {
    sym_eigen_impl(a, n)
}

/// [`sym_eigen`] compiled with AVX2 enabled (same arithmetic, wider vectors; no FMA
/// contraction, so results are identical to the portable build).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sym_eigen_avx2(a: &[f64], n: usize) -> Option<SymEigen> {
    sym_eigen_impl(a, n)
}

/// Body of [`sym_eigen`], inlined into each target-feature variant.
#[inline(always)]
fn sym_eigen_impl(a: &[f64], n: usize) -> Option<SymEigen> {
    if a.len() != n * n || a.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut w = a.to_vec();
    let mut d = vec![0.0; n];
    let mut e = vec![0.0; n];
    // zt starts as Qᵀ where A = Q T Qᵀ; QL rotations then turn its rows into eigenvectors.
    let mut zt = vec![0.0; n * n];
    for i in 0..n {
        zt[i * n + i] = 1.0;
    }
    tridiagonalise(&mut w, n, &mut d, &mut e, &mut zt);
    if !ql_implicit(&mut d, &mut e, &mut zt, n) {
        return None;
    }
    // sort ascending (stable, selection into new buffers)
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&x, &y| d[x].total_cmp(&d[y]));
    let values = order.iter().map(|&r| d[r]).collect();
    let mut vectors = Vec::with_capacity(n * n);
    for &r in &order {
        vectors.extend_from_slice(&zt[r * n..(r + 1) * n]);
    }
    Some(SymEigen { values, vectors })
}

/// Householder reduction of the symmetric `w` to tridiagonal `(d, e)` (`e[i]` couples `i` and
/// `i+1`, `e[n-1] = 0`), left-multiplying `zt` by each reflector so that it ends as `Qᵀ`.
#[inline(always)]
pub(crate) fn tridiagonalise(w: &mut [f64], n: usize, d: &mut [f64], e: &mut [f64], zt: &mut [f64]) {
    let mut v = vec![0.0; n];
    let mut p = vec![0.0; n];
    let mut s = vec![0.0; n];
    for k in 0..n.saturating_sub(2) {
        let lo = k + 1;
        // x = w[k][lo..n] (row k equals column k by symmetry)
        let norm = w[k * n + lo..k * n + n].iter().map(|x| x * x).sum::<f64>().sqrt();
        d[k] = w[k * n + k];
        let x0 = w[k * n + lo];
        if norm == 0.0 {
            e[k] = 0.0;
            continue;
        }
        let alpha = if x0 >= 0.0 { -norm } else { norm };
        for t in lo..n {
            v[t] = w[k * n + t];
        }
        v[lo] -= alpha;
        let vnorm2: f64 = v[lo..n].iter().map(|x| x * x).sum();
        if vnorm2 == 0.0 {
            e[k] = x0;
            continue;
        }
        e[k] = alpha;
        let beta = 2.0 / vnorm2;
        // p = beta * S v, S = w[lo.., lo..]; S is symmetric, so accumulate rows (axpy, which
        // vectorises) instead of dot products (a serial chain of dependent adds)
        p[lo..n].iter_mut().for_each(|x| *x = 0.0);
        for r in lo..n {
            let vr = beta * v[r];
            for (pc, &a) in p[lo..n].iter_mut().zip(&w[r * n + lo..r * n + n]) {
                *pc += vr * a;
            }
        }
        let kk = 0.5 * beta * v[lo..n].iter().zip(&p[lo..n]).map(|(a, b)| a * b).sum::<f64>();
        for t in lo..n {
            p[t] -= kk * v[t]; // p becomes q
        }
        for r in lo..n {
            let (vr, qr) = (v[r], p[r]);
            let row = &mut w[r * n + lo..r * n + n];
            for ((x, &vc), &qc) in row.iter_mut().zip(&v[lo..n]).zip(&p[lo..n]) {
                *x -= vr * qc + qr * vc;
            }
        }
        // zt <- H zt, H = I - beta v vᵀ (v supported on lo..n)
        s.iter_mut().for_each(|x| *x = 0.0);
        for r in lo..n {
            let vr = v[r];
            for (sc, &z) in s.iter_mut().zip(&zt[r * n..(r + 1) * n]) {
                *sc += vr * z;
            }
        }
        for r in lo..n {
            let f = beta * v[r];
            for (z, &sc) in zt[r * n..(r + 1) * n].iter_mut().zip(&s) {
                *z -= f * sc;
            }
        }
    }
    if n >= 2 {
        d[n - 2] = w[(n - 2) * n + n - 2];
        e[n - 2] = w[(n - 2) * n + n - 1];
    }
    if n >= 1 {
        d[n - 1] = w[(n - 1) * n + n - 1];
        e[n - 1] = 0.0;
    }
}

/// Implicit QL iteration with Wilkinson shifts on the tridiagonal `(d, e)`; rotations are
/// applied to the rows of `zt`. Returns `false` if an eigenvalue needs more than 60 iterations.
#[inline(always)]
pub(crate) fn ql_implicit(d: &mut [f64], e: &mut [f64], zt: &mut [f64], n: usize) -> bool {
    for l in 0..n {
        let mut iter = 0;
        loop {
            let mut m = l;
            while m + 1 < n {
                let dd = d[m].abs() + d[m + 1].abs();
                if e[m].abs() <= f64::EPSILON * dd {
                    break;
                }
                m += 1;
            }
            if m == l {
                break;
            }
            iter += 1;
            if iter > 60 {
                return false;
            }
            let mut g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            let mut r = (g * g + 1.0).sqrt();
            g = d[m] - d[l] + e[l] / (g + r.copysign(g));
            let (mut s, mut c, mut p) = (1.0f64, 1.0f64, 0.0f64);
            let mut i = m;
            let mut deflated = false;
            while i > l {
                i -= 1;
                let f = s * e[i];
                let b = c * e[i];
                // plain sqrt: hypot's overflow care costs ~30 ns a call and values here are far
                // from f64's range limits
                r = (f * f + g * g).sqrt();
                e[i + 1] = r;
                if r == 0.0 {
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    deflated = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
                let (head, tail) = zt.split_at_mut((i + 1) * n);
                let zi = &mut head[i * n..];
                let zi1 = &mut tail[..n];
                for (a, b2) in zi.iter_mut().zip(zi1.iter_mut()) {
                    let f2 = *b2;
                    *b2 = s * *a + c * f2;
                    *a = c * *a - s * f2;
                }
            }
            if deflated {
                continue;
            }
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks `eig` against the definition (`A v = λ v`, orthonormal rows, ascending values) and
    /// its eigenvalues against [`jacobi_eigenvalues`].
    fn check_eigen(a: &[f64], n: usize, eig: &SymEigen) {
        let scale = a.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
        for r in 0..n {
            let v = &eig.vectors[r * n..(r + 1) * n];
            for i in 0..n {
                let av: f64 = (0..n).map(|j| a[i * n + j] * v[j]).sum();
                assert!((av - eig.values[r] * v[i]).abs() < 1e-10 * scale * n as f64);
            }
            for q in 0..n {
                let dot: f64 = (0..n).map(|j| v[j] * eig.vectors[q * n + j]).sum();
                let want = if q == r { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-10, "orthonormality {r} {q}: {dot}");
            }
        }
        for r in 1..n {
            assert!(eig.values[r - 1] <= eig.values[r]);
        }
        for (r, (got, want)) in eig.values.iter().zip(jacobi_eigenvalues(a, n)).enumerate() {
            assert!(
                (got - want).abs() < 1e-10 * scale * n as f64,
                "eigenvalue {r}: {got} vs Jacobi {want}"
            );
        }
    }

    /// Checks the dispatching [`sym_eigen`] on `a`.
    fn check(a: &[f64], n: usize) {
        check_eigen(a, n, &sym_eigen(a, n).expect("converges"));
    }

    /// Ascending eigenvalues of the symmetric `a` by textbook cyclic Jacobi rotations: slow, and
    /// independent of the Householder + QL solver under test.
    fn jacobi_eigenvalues(a: &[f64], n: usize) -> Vec<f64> {
        let mut m = a.to_vec();
        let total: f64 = m.iter().map(|v| v * v).sum();
        for _sweep in 0..100 {
            let off: f64 = (0..n * n).filter(|t| t / n != t % n).map(|t| m[t] * m[t]).sum();
            if off <= 1e-32 * total {
                break;
            }
            for p in 0..n {
                for q in p + 1..n {
                    let apq = m[p * n + q];
                    if apq == 0.0 {
                        continue;
                    }
                    // Rotation J zeroing m[p][q]: m = Jᵀ m J (columns, then rows p and q).
                    let theta = (m[q * n + q] - m[p * n + p]) / (2.0 * apq);
                    let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                    let c = 1.0 / (t * t + 1.0).sqrt();
                    let s = t * c;
                    for k in 0..n {
                        let (kp, kq) = (m[k * n + p], m[k * n + q]);
                        m[k * n + p] = c * kp - s * kq;
                        m[k * n + q] = s * kp + c * kq;
                    }
                    for k in 0..n {
                        let (pk, qk) = (m[p * n + k], m[q * n + k]);
                        m[p * n + k] = c * pk - s * qk;
                        m[q * n + k] = s * pk + c * qk;
                    }
                }
            }
        }
        let mut values: Vec<f64> = (0..n).map(|i| m[i * n + i]).collect();
        values.sort_by(f64::total_cmp);
        values
    }

    /// A symmetric `n × n` matrix with entries in -0.5..0.5 from a fixed-seed generator.
    fn random_symmetric(n: usize, state: &mut u64) -> Vec<f64> {
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in i..n {
                *state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let v = ((*state >> 11) as f64 / (1u64 << 53) as f64) - 0.5;
                a[i * n + j] = v;
                a[j * n + i] = v;
            }
        }
        a
    }

    #[test]
    fn random_symmetric_matrices() {
        let mut state = 12345u64;
        for &n in &[1usize, 2, 3, 5, 17, 36] {
            check(&random_symmetric(n, &mut state), n);
        }
    }

    #[test]
    fn simd_build_matches_portable_build_bit_for_bit() {
        // The two builds `sym_eigen` dispatches between, called explicitly: the AVX2 one must give
        // the portable one's bits, and the portable one must agree with the definition and with
        // cyclic Jacobi (so a bug both builds share fails too).
        let n = 36;
        let structured: Vec<f64> = (0..n * n)
            .map(|t| {
                let (i, j) = (t / n, t % n);
                let (lo, hi) = (i.min(j), i.max(j));
                (((lo * 31 + hi * 17) % 23) as f64 - 11.0) / 7.0
            })
            .collect();
        let mut state = 777u64;
        let cases = [
            (n, structured),
            (7, random_symmetric(7, &mut state)),
            (36, random_symmetric(36, &mut state)),
        ];
        if cfg!(target_feature = "avx2") {
            eprintln!("note: the crate is compiled with AVX2 enabled, so the portable build uses it too");
        }
        for (n, a) in &cases {
            let portable = sym_eigen_portable(a, *n).expect("converges");
            check_eigen(a, *n, &portable);
            match avx2_build(a, *n) {
                Some(fast) => {
                    assert_eq!(fast.values, portable.values, "n = {n}");
                    assert_eq!(fast.vectors, portable.vectors, "n = {n}");
                }
                None => eprintln!("SKIPPED (SIMD side): this CPU lacks AVX2; the portable build was checked"),
            }
        }
    }

    /// The AVX2 build's decomposition of `a`, or `None` on a CPU without AVX2.
    fn avx2_build(a: &[f64], n: usize) -> Option<SymEigen> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 is available (checked above).
                return Some(unsafe { sym_eigen_avx2(a, n) }.expect("converges"));
            }
        }
        let _ = (a, n);
        None
    }

    #[test]
    fn degenerate_and_diagonal_matrices() {
        let n = 6;
        let mut id = vec![0.0; n * n];
        for i in 0..n {
            id[i * n + i] = 2.0;
        }
        check(&id, n);
        let ones = vec![1.0; n * n];
        check(&ones, n);
        let eig = sym_eigen(&ones, n).expect("converges");
        assert!((eig.values[n - 1] - n as f64).abs() < 1e-12);
        assert!(eig.values[0].abs() < 1e-12);
        assert!(sym_eigen(&[f64::NAN], 1).is_none());
        assert!(sym_eigen(&[1.0, 2.0], 2).is_none());
    }
}
