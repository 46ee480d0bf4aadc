//! Partition-agreement metrics, used to compare our labels with scikit-learn's and linfa's.

use std::collections::HashMap;
use std::hash::Hash;

/// Adjusted Rand index of two labelings of the same points (1 = identical partitions up to
/// renaming, ≈0 = chance agreement), as scikit-learn's `adjusted_rand_score`. `None` if the
/// lengths differ or are zero.
pub fn adjusted_rand_index<A, B>(a: &[A], b: &[B]) -> Option<f64>
where
    A: Copy + Eq + Hash,
    B: Copy + Eq + Hash,
{
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let pairs = |m: f64| m * (m - 1.0) / 2.0;
    let mut joint: HashMap<(A, B), usize> = HashMap::new();
    let mut rows: HashMap<A, usize> = HashMap::new();
    let mut cols: HashMap<B, usize> = HashMap::new();
    for (&x, &y) in a.iter().zip(b) {
        *joint.entry((x, y)).or_default() += 1;
        *rows.entry(x).or_default() += 1;
        *cols.entry(y).or_default() += 1;
    }
    let index: f64 = joint.values().map(|&c| pairs(c as f64)).sum();
    let sum_a: f64 = rows.values().map(|&c| pairs(c as f64)).sum();
    let sum_b: f64 = cols.values().map(|&c| pairs(c as f64)).sum();
    let total = pairs(a.len() as f64);
    let expected = if total > 0.0 { sum_a * sum_b / total } else { 0.0 };
    let max = 0.5 * (sum_a + sum_b);
    if max == expected {
        // both partitions trivial in the same way (all singletons or one cluster)
        return Some(1.0);
    }
    Some((index - expected) / (max - expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // identical up to renaming
        assert_eq!(adjusted_rand_index(&[0, 0, 1, 1], &[5, 5, 3, 3]), Some(1.0));
        // scikit-learn docs example: adjusted_rand_score([0, 0, 1, 1], [0, 0, 1, 2]) = 0.571428...
        let v = adjusted_rand_index(&[0, 0, 1, 1], &[0, 0, 1, 2]).expect("same length");
        assert!((v - 4.0 / 7.0).abs() < 1e-12, "{v}");
        // completely split: adjusted_rand_score([0, 0, 0, 0], [0, 1, 2, 3]) = 0
        assert_eq!(adjusted_rand_index(&[0, 0, 0, 0], &[0, 1, 2, 3]), Some(0.0));
        // negative for worse-than-chance: adjusted_rand_score([0, 0, 1, 1], [0, 1, 0, 1]) = -0.5
        let v = adjusted_rand_index(&[0, 0, 1, 1], &[0, 1, 0, 1]).expect("same length");
        assert!((v + 0.5).abs() < 1e-12, "{v}");
        assert_eq!(adjusted_rand_index::<u32, u32>(&[], &[]), None);
        assert_eq!(adjusted_rand_index(&[0u32], &[0u32, 1]), None);
    }
}
