#!/usr/bin/env python3
"""Time `paca-fer bench cluster` against scikit-learn on the same embeddings, one thread each.

Usage:
    python3 scripts/bench_vs_sklearn.py BINARY [--images 5000] [--dim 2048]
        [--sklearn-images 500] [--data /tmp/paca_cluster_bench.npy] [--seed 0]

BINARY is `paca-fer` (or the development crate's `cluster-bench`); it is run as
`BINARY bench cluster --embeddings F --method M --k K --threads 1 --labels-out L --json`.

Data (written once, reused if present with the same shape): IMAGES x 36 x DIM float32. Each
image has its own random number of patch groups (2..8, uneven sizes) with centres ~30 noise-stds
apart (distance 30 in units of the noise std; in 2048-d that makes
intra- vs inter-group squared distances ~4100 vs ~5000), different noise levels per group, on top of a shared offset vector -- i.e. per-image
random blobs that look like patch embeddings (big common component, a few patch "parts").
Generated from numpy's PCG64 with --seed.

scikit-learn runs with OPENBLAS_NUM_THREADS=1 (and OMP/MKL=1), per image, with the same methods
and parameters as the engine:
  kmeans                  KMeans(k, n_init=4, random_state=0)
  agglomerative:{ward,average,complete}  AgglomerativeClustering(k, linkage=...)
  spectral:rbf            SpectralClustering(k, gamma=1/median pairwise sq. distance, n_init=4)
  spectral:nn=10          SpectralClustering(k, affinity='nearest_neighbors', n_neighbors=10,
                          n_init=4)
  gmm                     GaussianMixture(k, 'diag') on the PCA coordinates (eigh of the centred
                          Gram matrix), PCA included in the time
  dbscan:min_samples=3    DBSCAN(eps=MST-gap heuristic, min_samples=3), heuristic included;
                          DBSCAN ignores k, so it runs once; noise points are given the
                          label of their nearest clustered point, as the engine does
scikit-learn is timed on the first --sklearn-images images and scaled linearly to --images
(per-image cost does not depend on the image index); ours always runs on all images, best of
--repeats runs (the fastest; file I/O excluded, as in `bench cluster`). For shared machines the
table also shows ours' CPU time and its fastest 100-image stretch (`best_batch_us_per_image`). The table also gives the
mean ARI between our labels and scikit-learn's on the timed subset, and -- for the randomised
methods -- between two scikit-learn runs with random_state 0 and 1: where k differs from an
image's number of patch groups the partition is ambiguous and seeds disagree, so that column is
the yardstick for ours-vs-sklearn.
"""

import os

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
from scipy.spatial.distance import pdist, squareform  # noqa: E402
from sklearn.cluster import DBSCAN, AgglomerativeClustering, KMeans, SpectralClustering  # noqa: E402
from sklearn.metrics import adjusted_rand_score  # noqa: E402
from sklearn.mixture import GaussianMixture  # noqa: E402

N = 36
METHODS = [
    "kmeans",
    "agglomerative:ward",
    "agglomerative:average",
    "agglomerative:complete",
    "spectral:rbf",
    "spectral:nn=10",
    "gmm",
    "dbscan:min_samples=3",
]


def make_data(path, images, dim, seed):
    if os.path.exists(path):
        arr = np.load(path, mmap_mode="r")
        if arr.shape == (images, N, dim) and arr.dtype == np.float32:
            return
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(images, N, dim))
    offset = 3.0 * rng.normal(size=dim)
    for i in range(images):
        g = int(rng.integers(2, 9))
        sizes = rng.multinomial(N - g, np.ones(g) / g) + 1
        labels = rng.permutation(np.repeat(np.arange(g), sizes))
        centres = rng.normal(size=(g, dim)) * 30.0 / np.sqrt(2 * dim)
        std = rng.uniform(0.7, 1.3, size=g)
        x = offset + centres[labels] + rng.normal(size=(N, dim)) * std[labels][:, None]
        out[i] = x
    out.flush()
    del out


def mst_gap_eps(x):
    dist = squareform(pdist(x))
    n = len(x)
    inside = np.zeros(n, bool)
    inside[0] = True
    best = dist[0].copy()
    edges = []
    for _ in range(n - 1):
        cand = np.where(inside, np.inf, best)
        j = int(np.argmin(cand))
        edges.append(cand[j])
        inside[j] = True
        best = np.minimum(best, dist[j])
    e = np.sort(edges)
    m = len(e)
    pick, ratio = None, -1.0
    for j in range(m // 2, m - 1):
        if e[j] > 0 and e[j + 1] / e[j] > ratio:
            pick, ratio = j, e[j + 1] / e[j]
    return float(np.sqrt(e[pick] * e[pick + 1])) if pick is not None else float(e[-1]) * 1.000001


def pca_coords(x):
    xc = x - x.mean(axis=0)
    lam, u = np.linalg.eigh(xc @ xc.T)
    order = np.argsort(lam)[::-1]
    lam, u = lam[order], u[:, order]
    keep = (lam > 0) & (lam > 1e-7 * lam[0])
    return u[:, keep] * np.sqrt(lam[keep])


def assign_noise(x, labels):
    """Noise (-1) joins the cluster of its nearest clustered point (the engine's rule)."""
    out = labels.copy()
    clustered = np.flatnonzero(labels >= 0)
    if len(clustered) == 0:
        return np.zeros_like(labels)
    dist = squareform(pdist(x, "sqeuclidean"))
    for i in np.flatnonzero(labels < 0):
        out[i] = labels[clustered[np.argmin(dist[i, clustered])]]
    return out


RANDOMISED = ("kmeans", "spectral:rbf", "spectral:nn=10", "gmm")


def sklearn_labels(method, x, k, seed=0):
    if method == "kmeans":
        return KMeans(k, n_init=4, random_state=seed).fit_predict(x)
    if method.startswith("agglomerative:"):
        return AgglomerativeClustering(n_clusters=k, linkage=method.split(":")[1]).fit_predict(x)
    if method == "spectral:rbf":
        gamma = 1.0 / np.median(pdist(x, "sqeuclidean"))
        return SpectralClustering(k, gamma=gamma, n_init=4, random_state=seed).fit_predict(x)
    if method == "spectral:nn=10":
        return SpectralClustering(k, affinity="nearest_neighbors", n_neighbors=10, n_init=4,
                                  random_state=seed).fit_predict(x)
    if method == "gmm":
        return GaussianMixture(k, covariance_type="diag", random_state=seed).fit_predict(
            pca_coords(x))
    if method.startswith("dbscan"):
        return assign_noise(x, DBSCAN(eps=mst_gap_eps(x), min_samples=3).fit_predict(x))
    raise ValueError(method)


def run_ours(binary, data, method, k, labels_out, repeats):
    """Best (lowest `seconds`) of `repeats` runs: the machine may be shared."""
    best = None
    for _ in range(repeats):
        cmd = [binary, "bench", "cluster", "--embeddings", data, "--method", method, "--k",
               str(k), "--threads", "1", "--labels-out", labels_out, "--json"]
        res = subprocess.run(cmd, check=True, capture_output=True, text=True)
        out = json.loads(res.stdout.strip().splitlines()[-1])
        if best is None or out["seconds"] < best["seconds"]:
            best = out
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--sklearn-images", type=int, default=500)
    ap.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "paca_cluster_bench.npy"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="runs of ours; the fastest counts")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")

    make_data(args.data, args.images, args.dim, args.seed)
    emb = np.load(args.data, mmap_mode="r")
    sub = min(args.sklearn_images, args.images)
    scale = args.images / sub
    labels_out = os.path.join(tempfile.gettempdir(), "paca_cluster_bench_labels.npy")

    print(f"load average before: {os.getloadavg()}", file=sys.stderr)
    print(f"data: {args.data} {emb.shape} float32; ours on all {args.images} images, "
          f"scikit-learn timed on {sub} images x {scale:g}", file=sys.stderr)
    print(f"| method | k | ours s ({args.images} img) | ours µs/img | ours CPU s | ours best-batch "
          f"µs/img | sklearn s (scaled) | sklearn ms/img | speed-up | ARI ours vs sklearn "
          f"| ARI sklearn seed 0 vs 1 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for method in METHODS:
        for k in ((2,) if method.startswith("dbscan") else (2, 4, 8)):
            ours = run_ours(args.binary, args.data, method, k, labels_out, args.repeats)
            our_labels = np.load(labels_out)
            t0 = time.perf_counter()
            theirs = [sklearn_labels(method, np.asarray(emb[i]), k) for i in range(sub)]
            sk = (time.perf_counter() - t0) * scale
            ari = np.mean([adjusted_rand_score(our_labels[i], theirs[i]) for i in range(sub)])
            if method in RANDOMISED:
                again = [sklearn_labels(method, np.asarray(emb[i]), k, seed=1) for i in range(sub)]
                self_ari = f"{np.mean([adjusted_rand_score(a, b) for a, b in zip(theirs, again)]):.3f}"
            else:
                self_ari = "1 (deterministic)"
            kk = "-" if method.startswith("dbscan") else k
            cpu = ours.get("cpu_seconds")
            cpu = f"{cpu:.3f}" if isinstance(cpu, (int, float)) else "n/a"
            best = ours.get("best_batch_us_per_image")
            best = f"{best:.0f}" if isinstance(best, (int, float)) else "n/a"
            print(f"| {method} | {kk} | {ours['seconds']:.3f} | {ours['us_per_image']:.0f} | {cpu} "
                  f"| {best} "
                  f"| {sk:.1f} | {sk / args.images * 1e3:.2f} | {sk / ours['seconds']:.0f}× "
                  f"| {ari:.3f} | {self_ari} |", flush=True)


if __name__ == "__main__":
    main()
