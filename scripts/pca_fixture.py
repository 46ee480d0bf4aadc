#!/usr/bin/env python3
"""Reference values for the numpy fixtures of `pca_2d` in src/train/plots.rs.

For each fixture: numpy's SVD of the centred points gives the explained-variance ratios of the
first two components and their directions, each signed so that its largest-magnitude entry is
positive, the first such entry on a tie (the convention of `pca_2d`). "tall" (6 points in 4-d)
exercises `pca_2d`'s covariance path, "wide" (4 points in 6-d) its Gram-matrix path, with a tie
in PC2. Run: python3 scripts/pca_fixture.py (needs numpy).
"""
import numpy as np

FIXTURES = {
    "tall": [
        [1.0, 2.0, 0.5, -1.0],
        [2.0, 1.0, 0.0, 0.5],
        [3.0, 4.0, 1.5, -0.5],
        [-1.0, 0.0, 2.0, 1.0],
        [0.5, -2.0, 1.0, 2.0],
        [4.0, 3.0, -1.0, 0.0],
    ],
    "wide": [
        [1.0, 0.0, 2.0, -1.0, 0.5, 3.0],
        [0.0, 1.0, -1.0, 2.0, 1.5, 0.0],
        [2.0, 2.0, 0.0, 1.0, -0.5, 1.0],
        [-1.0, 0.5, 1.0, 0.0, 2.0, -2.0],
    ],
}

for name, rows in FIXTURES.items():
    x = np.array(rows)
    xc = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    var = s**2
    print(f"{name}: explained =", [repr(float(v)) for v in var[:2] / var.sum()])
    for k in range(2):
        v = vt[k]
        # The first entry within 1e-9 of the largest magnitude decides (as in pca_2d).
        top = np.abs(v).max()
        if v[np.argmax(np.abs(v) >= top * (1 - 1e-9))] < 0:
            v = -v
        print(f"{name}: pc{k + 1} =", [repr(float(c)) for c in v])
