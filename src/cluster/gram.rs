//! Gram matrix of one image's patch embeddings (`n × d`, row-major f32), shifted by the first
//! row: `Gᵢⱼ = ⟨xᵢ − x₀, xⱼ − x₀⟩`.
//!
//! This is the only `O(n²·d)` step of every clustering method, so it decides the per-image cost.
//!
//! **Why shifted.** Distances do not change when every point moves by the same vector, but f32
//! precision does: embeddings share a large common component, and `‖a‖² + ‖b‖² − 2⟨a,b⟩` on raw
//! vectors cancels most of their digits. Subtracting any point of the cloud removes that
//! component as well as the mean would; using row 0 needs no extra pass over the data (the mean
//! would cost a full read plus a write of a centred copy — measured at 30–50 % of the kernel
//! time on cold data). The exactly centred Gram matrix is recovered in f64 afterwards
//! (`Gc = J G J`, `J = I − 11ᵀ/n`), see `mod.rs`.
//!
//! Three implementations:
//!
//! * x86-64 with AVX2 + FMA (checked at run time): a register-blocked kernel that computes only
//!   the upper triangle (the matrix is symmetric), 3 × 3 dot products per block over eight f32
//!   lanes, subtracting `x₀` on the fly. Measured on the development machine it is ~6× faster
//!   than `matrixmultiply::sgemm` for this skinny shape (36 × 2048 × 36), see `RESULTS.md`;
//! * aarch64 (Jetson, every ARMv8-A core has NEON): the same scheme over four f32 lanes, in
//!   4 × 4 blocks (AArch64 has 32 vector registers: 16 accumulators, 4 column vectors, the row
//!   vector and the shift fit). `cargo bench --bench cluster -- gram` compares it with the
//!   portable path, see README's Jetson row;
//! * everywhere else (old x86, other architectures): a shifted copy of the data, then
//!   `matrixmultiply::sgemm`.
//!
//! Both accumulate in f32 (the input is f32) and hand back an f64 matrix, so that all later
//! `36 × 36` work runs in f64. Non-finite input makes some diagonal entry non-finite.

/// Panics unless `x` holds `n × d` values and `out` `n × n`: both kernels read through raw
/// pointers. Two comparisons next to the `O(n²·d)` work, so they stay on in release builds.
fn check_lengths(x: &[f32], n: usize, d: usize, out: &[f64]) {
    assert_eq!(
        x.len(),
        n * d,
        "gram: x holds {} values, not n·d = {n}·{d}",
        x.len()
    );
    assert_eq!(
        out.len(),
        n * n,
        "gram: out holds {} values, not n·n = {n}·{n}",
        out.len()
    );
}

/// Writes the full symmetric `n × n` shifted Gram matrix of `x` (`n × d`, row-major) into `out`
/// (f64). `scratch` is only used by the portable path (for the shifted copy). Panics if `x` or
/// `out` has the wrong length.
pub fn gram_shifted(x: &[f32], n: usize, d: usize, scratch: &mut Vec<f32>, out: &mut [f64]) {
    check_lengths(x, n, d, out);
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above); the slice lengths are
            // checked just above too, and the kernel stays inside them.
            unsafe { avx2::gram_upper(x, n, d, out) };
            mirror_upper(out, n);
            return;
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        // SAFETY: NEON is part of the AArch64 base ISA; the slice lengths are checked above and
        // the kernel stays inside them.
        unsafe { neon::gram_upper(x, n, d, out) };
        mirror_upper(out, n);
        let _ = scratch; // only the portable path needs it
    }
    #[cfg(not(target_arch = "aarch64"))]
    gram_portable(x, n, d, scratch, out);
}

/// The portable kernel on its own (shifted copy, then `matrixmultiply::sgemm`), whatever the CPU:
/// public so the benchmark and tests can compare it with the SIMD kernel [`gram_shifted`] picks.
pub fn gram_portable(x: &[f32], n: usize, d: usize, scratch: &mut Vec<f32>, out: &mut [f64]) {
    check_lengths(x, n, d, out);
    shift_copy(x, n, d, scratch);
    gram_sgemm(scratch, n, d, out);
}

/// `scratch = x − x₀` (row-wise).
fn shift_copy(x: &[f32], n: usize, d: usize, scratch: &mut Vec<f32>) {
    scratch.clear();
    if n == 0 {
        return;
    }
    let x0 = &x[..d];
    for row in x.chunks_exact(d).take(n) {
        scratch.extend(row.iter().zip(x0).map(|(&v, &s)| v - s));
    }
}

/// Portable path: `matrixmultiply::sgemm` into an f32 buffer, then widened to f64 and symmetrised.
/// Panics if `x` or `out` has the wrong length.
pub(crate) fn gram_sgemm(x: &[f32], n: usize, d: usize, out: &mut [f64]) {
    check_lengths(x, n, d, out);
    let mut g = vec![0f32; n * n];
    if n > 0 && d > 0 {
        // SAFETY: `x` holds n*d values (checked above; row stride d), `g` holds n*n values (row
        // stride n);
        // A = X (n × d, row-major) and B = Xᵀ (d × n, given as X with swapped strides).
        unsafe {
            matrixmultiply::sgemm(
                n,
                d,
                n,
                1.0,
                x.as_ptr(),
                d as isize,
                1,
                x.as_ptr(),
                1,
                d as isize,
                0.0,
                g.as_mut_ptr(),
                n as isize,
                1,
            );
        }
    }
    for i in 0..n {
        for j in i..n {
            let v = 0.5 * (f64::from(g[i * n + j]) + f64::from(g[j * n + i]));
            out[i * n + j] = v;
            out[j * n + i] = v;
        }
    }
}

/// Copies the upper triangle of the `n × n` matrix onto its lower triangle.
fn mirror_upper(out: &mut [f64], n: usize) {
    for i in 0..n {
        for j in (i + 1)..n {
            out[j * n + i] = out[i * n + j];
        }
    }
}

/// Writes block entry `(i0 + r, j0 + c)` as its SIMD lane sum `sums[r][c]` plus the scalar tail
/// (columns `tail..d`, which the lanes did not cover), in f64: the end both SIMD kernels share.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn finish_block<const RR: usize, const CC: usize>(
    x: &[f32],
    d: usize,
    n: usize,
    (i0, j0): (usize, usize),
    tail: usize,
    sums: &[[f64; CC]; RR],
    out: &mut [f64],
) {
    let x0 = &x[..d];
    for (r, sr) in sums.iter().enumerate() {
        let row_i = &x[(i0 + r) * d..(i0 + r + 1) * d];
        for (c, &lanes) in sr.iter().enumerate() {
            let row_j = &x[(j0 + c) * d..(j0 + c + 1) * d];
            let tail_sum: f64 = (tail..d)
                .map(|t| f64::from(row_i[t] - x0[t]) * f64::from(row_j[t] - x0[t]))
                .sum();
            out[(i0 + r) * n + j0 + c] = lanes + tail_sum;
        }
    }
}

/// The AVX2 + FMA kernel.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Rows per block.
    const R: usize = 3;
    /// Columns per block: 9 accumulators + 3 column vectors + the row vector + the shift fit
    /// the 16 ymm registers (4 × 3 with the on-the-fly shift spills and runs ~2× slower).
    const C: usize = 3;

    /// Upper triangle (j ≥ i) of the shifted `X·Xᵀ` into `out`; entries below the diagonal may
    /// be left untouched or written with valid values.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn gram_upper(x: &[f32], n: usize, d: usize, out: &mut [f64]) {
        let mut i0 = 0;
        while i0 < n {
            let rows = (n - i0).min(R);
            // first column block that reaches the diagonal of this row block
            let mut j0 = (i0 / C) * C;
            while j0 < n {
                let cols = (n - j0).min(C);
                // SAFETY: rows i0..i0+rows and j0..j0+cols are inside the n × d matrix.
                unsafe {
                    match (rows, cols) {
                        (3, 3) => block::<3, 3>(x, d, i0, j0, n, out),
                        (3, 2) => block::<3, 2>(x, d, i0, j0, n, out),
                        (3, 1) => block::<3, 1>(x, d, i0, j0, n, out),
                        (2, 3) => block::<2, 3>(x, d, i0, j0, n, out),
                        (2, 2) => block::<2, 2>(x, d, i0, j0, n, out),
                        (2, 1) => block::<2, 1>(x, d, i0, j0, n, out),
                        (1, 3) => block::<1, 3>(x, d, i0, j0, n, out),
                        (1, 2) => block::<1, 2>(x, d, i0, j0, n, out),
                        _ => block::<1, 1>(x, d, i0, j0, n, out),
                    }
                }
                j0 += C;
            }
            i0 += R;
        }
    }

    /// Dot products of rows `i0..i0+RR` with rows `j0..j0+CC`, all shifted by row 0, written
    /// to `out[i][j]`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn block<const RR: usize, const CC: usize>(
        x: &[f32],
        d: usize,
        i0: usize,
        j0: usize,
        n: usize,
        out: &mut [f64],
    ) {
        let base = x.as_ptr();
        let mut acc = [[_mm256_setzero_ps(); CC]; RR];
        let chunks = d / 8;
        for c in 0..chunks {
            let off = c * 8;
            // SAFETY: row 0 exists and off+8 <= d.
            let s = unsafe { _mm256_loadu_ps(base.add(off)) };
            let mut b = [_mm256_setzero_ps(); CC];
            for (cc, bv) in b.iter_mut().enumerate() {
                // SAFETY: row j0+cc < n and off+8 <= d.
                *bv = _mm256_sub_ps(unsafe { _mm256_loadu_ps(base.add((j0 + cc) * d + off)) }, s);
            }
            for (r, accr) in acc.iter_mut().enumerate() {
                // SAFETY: row i0+r < n and off+8 <= d.
                let a = _mm256_sub_ps(unsafe { _mm256_loadu_ps(base.add((i0 + r) * d + off)) }, s);
                for (accv, bv) in accr.iter_mut().zip(b.iter()) {
                    *accv = _mm256_fmadd_ps(a, *bv, *accv);
                }
            }
        }
        let mut sums = [[0.0; CC]; RR];
        for (sr, accr) in sums.iter_mut().zip(acc.iter()) {
            for (sv, v) in sr.iter_mut().zip(accr.iter()) {
                *sv = hsum(*v);
            }
        }
        super::finish_block(x, d, n, (i0, j0), chunks * 8, &sums, out);
    }

    /// Sum of the eight lanes, in f64.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn hsum(v: __m256) -> f64 {
        let lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
        let hi = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v));
        let s = _mm256_add_pd(lo, hi);
        let s2 = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd::<1>(s));
        let s1 = _mm_add_sd(s2, _mm_unpackhi_pd(s2, s2));
        _mm_cvtsd_f64(s1)
    }
}

/// The NEON kernel (AArch64).
#[cfg(target_arch = "aarch64")]
mod neon {
    use std::arch::aarch64::*;

    /// Rows per block.
    const R: usize = 4;
    /// Columns per block: 16 accumulators + 4 column vectors + the row vector + the shift use
    /// 22 of the 32 vector registers.
    const C: usize = 4;

    /// Upper triangle (j ≥ i) of the shifted `X·Xᵀ` into `out`; entries below the diagonal may
    /// be left untouched or written with valid values.
    pub(super) unsafe fn gram_upper(x: &[f32], n: usize, d: usize, out: &mut [f64]) {
        let mut i0 = 0;
        while i0 < n {
            let rows = (n - i0).min(R);
            // first column block that reaches the diagonal of this row block
            let mut j0 = (i0 / C) * C;
            while j0 < n {
                let cols = (n - j0).min(C);
                // SAFETY: rows i0..i0+rows and j0..j0+cols are inside the n × d matrix.
                unsafe {
                    match (rows, cols) {
                        (4, 4) => block::<4, 4>(x, d, i0, j0, n, out),
                        (4, 3) => block::<4, 3>(x, d, i0, j0, n, out),
                        (4, 2) => block::<4, 2>(x, d, i0, j0, n, out),
                        (4, 1) => block::<4, 1>(x, d, i0, j0, n, out),
                        (3, 4) => block::<3, 4>(x, d, i0, j0, n, out),
                        (3, 3) => block::<3, 3>(x, d, i0, j0, n, out),
                        (3, 2) => block::<3, 2>(x, d, i0, j0, n, out),
                        (3, 1) => block::<3, 1>(x, d, i0, j0, n, out),
                        (2, 4) => block::<2, 4>(x, d, i0, j0, n, out),
                        (2, 3) => block::<2, 3>(x, d, i0, j0, n, out),
                        (2, 2) => block::<2, 2>(x, d, i0, j0, n, out),
                        (2, 1) => block::<2, 1>(x, d, i0, j0, n, out),
                        (1, 4) => block::<1, 4>(x, d, i0, j0, n, out),
                        (1, 3) => block::<1, 3>(x, d, i0, j0, n, out),
                        (1, 2) => block::<1, 2>(x, d, i0, j0, n, out),
                        _ => block::<1, 1>(x, d, i0, j0, n, out),
                    }
                }
                j0 += C;
            }
            i0 += R;
        }
    }

    /// Dot products of rows `i0..i0+RR` with rows `j0..j0+CC`, all shifted by row 0, written
    /// to `out[i][j]`.
    #[inline]
    unsafe fn block<const RR: usize, const CC: usize>(
        x: &[f32],
        d: usize,
        i0: usize,
        j0: usize,
        n: usize,
        out: &mut [f64],
    ) {
        let base = x.as_ptr();
        // SAFETY (all loads below): row 0, rows i0+r < n and j0+cc < n exist and off+4 <= d.
        let mut acc = [[unsafe { vdupq_n_f32(0.0) }; CC]; RR];
        let chunks = d / 4;
        for c in 0..chunks {
            let off = c * 4;
            unsafe {
                let s = vld1q_f32(base.add(off));
                let mut b = [vdupq_n_f32(0.0); CC];
                for (cc, bv) in b.iter_mut().enumerate() {
                    *bv = vsubq_f32(vld1q_f32(base.add((j0 + cc) * d + off)), s);
                }
                for (r, accr) in acc.iter_mut().enumerate() {
                    let a = vsubq_f32(vld1q_f32(base.add((i0 + r) * d + off)), s);
                    for (accv, bv) in accr.iter_mut().zip(b.iter()) {
                        *accv = vfmaq_f32(*accv, a, *bv);
                    }
                }
            }
        }
        let mut sums = [[0.0; CC]; RR];
        for (sr, accr) in sums.iter_mut().zip(acc.iter()) {
            for (sv, v) in sr.iter_mut().zip(accr.iter()) {
                *sv = hsum(*v);
            }
        }
        super::finish_block(x, d, n, (i0, j0), chunks * 4, &sums, out);
    }

    /// Sum of the four lanes, in f64.
    #[inline]
    fn hsum(v: float32x4_t) -> f64 {
        // SAFETY: NEON is part of the AArch64 base ISA.
        unsafe {
            let lo = vcvt_f64_f32(vget_low_f32(v));
            let hi = vcvt_high_f64_f32(v);
            vaddvq_f64(vaddq_f64(lo, hi))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &[f32], n: usize, d: usize) -> Vec<f64> {
        let mut g = vec![0.0; n * n];
        let sh = |i: usize, t: usize| f64::from(x[i * d + t] - x[t]);
        for i in 0..n {
            for j in 0..n {
                g[i * n + j] = (0..d).map(|t| sh(i, t) * sh(j, t)).sum();
            }
        }
        g
    }

    fn data(n: usize, d: usize) -> Vec<f32> {
        (0..n * d)
            .map(|i| (((i * 7919 + 13) % 1009) as f32 / 1009.0) - 0.5)
            .collect()
    }

    /// [`gram_shifted`] of `x` taken as `n × d`, into an output of `out_len` values.
    fn gram_into(x: &[f32], n: usize, d: usize, out_len: usize) {
        gram_shifted(x, n, d, &mut Vec::new(), &mut vec![0.0; out_len]);
    }

    #[test]
    #[should_panic(expected = "values, not n·d")]
    fn input_longer_than_n_by_d_panics() {
        // Not an out-of-bounds read, but a caller bug the kernel would silently compute through.
        gram_into(&data(4 * 8 + 1, 1), 4, 8, 16);
    }

    #[test]
    #[should_panic(expected = "values, not n·d")]
    fn input_shorter_than_n_by_d_panics_before_reading_it() {
        gram_into(&data(4 * 8 - 1, 1), 4, 8, 16);
    }

    #[test]
    #[should_panic(expected = "values, not n·n")]
    fn output_of_the_wrong_length_panics() {
        gram_into(&data(4, 8), 4, 8, 17);
    }

    #[test]
    #[should_panic(expected = "values, not n·d")]
    fn portable_path_checks_its_input_length_too() {
        gram_sgemm(&data(4 * 8 - 1, 1), 4, 8, &mut [0.0; 16]);
    }

    #[test]
    fn matches_naive_for_odd_shapes() {
        for &(n, d) in &[
            (1, 1),
            (2, 3),
            (5, 7),
            (7, 9),
            (13, 17),
            (36, 2048),
            (36, 253),
            (11, 8),
        ] {
            let x = data(n, d);
            let want = naive(&x, n, d);
            let mut fast = vec![f64::NAN; n * n];
            let mut scratch = Vec::new();
            gram_shifted(&x, n, d, &mut scratch, &mut fast);
            let mut portable = vec![f64::NAN; n * n];
            gram_portable(&x, n, d, &mut scratch, &mut portable);
            let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            assert_eq!(scratch.len(), n * d);
            for t in 0..n * n {
                assert!(
                    (fast[t] - want[t]).abs() <= 1e-5 * scale,
                    "fast n={n} d={d} t={t}"
                );
                assert!((portable[t] - want[t]).abs() <= 1e-5 * scale, "sgemm n={n} d={d}");
            }
            for i in 0..n {
                for j in 0..n {
                    assert_eq!(fast[i * n + j], fast[j * n + i]);
                }
            }
        }
    }
}
