"""Generates tests/fixtures/metrics/cases.json: random label/prediction vectors and scikit-learn's
accuracy, macro-F1, per-class recall and confusion matrix for them (the independent reference for
src/train/metrics.rs). Run once: python3 scripts/make_metrics_fixtures.py (needs numpy, scikit-learn)."""
import json
import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

rng = np.random.default_rng(2024)
cases = []
for n, classes, skew in [(50, 8, 0.0), (200, 8, 0.6), (30, 3, 0.0), (500, 8, 0.9), (7, 2, 0.0)]:
    truth = rng.integers(0, classes, n)
    pred = np.where(rng.random(n) < skew, truth, rng.integers(0, 8, n))
    labels = sorted(set(truth.tolist()) | set(pred.tolist()))
    rec = recall_score(truth, pred, labels=sorted(set(truth.tolist())), average=None, zero_division=0)
    cases.append({
        "truth": truth.tolist(),
        "pred": pred.tolist(),
        "accuracy": accuracy_score(truth, pred),
        "macro_f1": f1_score(truth, pred, labels=labels, average="macro", zero_division=0),
        "recall": {int(c): float(r) for c, r in zip(sorted(set(truth.tolist())), rec)},
        "confusion": confusion_matrix(truth, pred, labels=list(range(8))).tolist(),
    })
json.dump(cases, open("tests/fixtures/metrics/cases.json", "w"))
print(f"wrote {len(cases)} cases")
