//! Classification metrics: accuracy, macro-F1 (scikit-learn's convention), per-class accuracy
//! (recall) and the confusion matrix.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::labels::{Emotion, NUM_CLASSES};

/// Metrics of one evaluation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Metrics {
    /// Fraction of images whose top prediction is the label.
    pub accuracy: f64,
    /// Unweighted mean F1 over the classes present in the labels or the predictions.
    pub macro_f1: f64,
    /// Per-class accuracy (recall): correct / images of that class; classes with no image are omitted.
    pub per_class: BTreeMap<String, f64>,
    /// `confusion[true][predicted]` counts, 8×8 in canonical class order.
    pub confusion: Vec<Vec<u64>>,
    /// Images evaluated.
    pub images: usize,
}

/// Computes [`Metrics`] from true and predicted class indices (both `< 8`, same length).
pub fn compute(truth: &[usize], pred: &[usize]) -> Metrics {
    assert_eq!(truth.len(), pred.len(), "truth and predictions differ in length");
    let mut confusion = vec![vec![0u64; NUM_CLASSES]; NUM_CLASSES];
    for (&t, &p) in truth.iter().zip(pred) {
        confusion[t][p] += 1;
    }
    let n = truth.len();
    let correct: u64 = (0..NUM_CLASSES).map(|c| confusion[c][c]).sum();
    let mut per_class = BTreeMap::new();
    let mut f1_sum = 0.0;
    let mut present = 0usize;
    for (c, row) in confusion.iter().enumerate() {
        let tp = row[c] as f64;
        let support: u64 = row.iter().sum();
        let predicted: u64 = (0..NUM_CLASSES).map(|r| confusion[r][c]).sum();
        if support > 0 {
            per_class.insert(Emotion::ALL[c].name().to_string(), tp / support as f64);
        }
        if support > 0 || predicted > 0 {
            present += 1;
            // F1 = 2TP / (2TP + FP + FN); 0 when the class is never right (scikit-learn's zero_division=0).
            f1_sum += 2.0 * tp / (support + predicted) as f64;
        }
    }
    Metrics {
        accuracy: if n == 0 { 0.0 } else { correct as f64 / n as f64 },
        macro_f1: if present == 0 {
            0.0
        } else {
            f1_sum / present as f64
        },
        per_class,
        confusion,
        images: n,
    }
}
