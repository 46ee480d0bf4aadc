#!/usr/bin/env python3
"""Generate the scikit-learn reference fixtures for tests/cluster_sklearn.rs.

Run once (output is committed):  python3 scripts/make_cluster_fixtures.py [OUT_DIR]
Default OUT_DIR: tests/fixtures/cluster.  Needs numpy and scikit-learn.

Each dataset is one image's patch embeddings, 36 x d float32, written as <name>.npy, plus
<name>_labels.npy (int32 [rows, 36], one row per method, row names in manifest.json):

* blobs_k{2,4,8}   36 x 2048, well separated Gaussian blobs on top of a large shared offset
                   (like real embeddings, whose patches share a big common component)
* overlap_k{2,4,8} 36 x 256, blobs whose spreads overlap
* aniso_k4         36 x 256, blobs sheared by a random linear map (elongated clusters)
* uneven_k4        36 x 256, clusters of 20/8/5/3 points with different spreads
* vitlike_k4       36 x 768, shared mean + per-cluster low-rank factors + patch noise

Methods and parameters (mirrored by the Rust engine, see src/cluster/):
* kmeans          KMeans(k, n_init=4, random_state=0)
* agglo_{ward,average,complete}  AgglomerativeClustering(k, linkage=...)
* spectral_rbf    SpectralClustering(k, affinity='rbf', gamma=1/median(pairwise sq. dist),
                  n_init=4, random_state=0) -- sklearn's default gamma=1.0 underflows here
* spectral_nn     SpectralClustering(k, affinity='nearest_neighbors', n_neighbors=NN, n_init=4)
                  with NN = clamp(36 // k, 3, 10)
* gmm             GaussianMixture(k, covariance_type='diag', random_state=0) fitted on the exact
                  PCA coordinates of the 36 points (eigh of the centred Gram matrix, directions
                  with eigenvalue <= 1e-7 * max dropped) -- the basis the Rust GMM uses
* gmm_from_kmeans the same EM started from the kmeans row's partition (one-hot M-step), to check
                  the EM itself independently of the k-means initialisation's RNG
* gmm_raw         the same on the raw embeddings (diagonal in the input basis), for reference
* dbscan          DBSCAN(eps=E, min_samples=3); E = the largest relative gap in the upper half of
                  the sorted minimum-spanning-tree edge lengths (see dbscan_eps); -1 = noise
* dbscan_assigned dbscan with each noise point given the label of its nearest non-noise point
                  (the Rust engine's noise rule)
* truth           generating labels
"""

import json
import os
import sys

import numpy as np
import sklearn
from scipy.spatial.distance import pdist, squareform
from sklearn.cluster import DBSCAN, AgglomerativeClustering, KMeans, SpectralClustering
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture

N = 36
KMEANS_N_INIT = 4
MIN_SAMPLES = 3
RANK_TOL = 1e-7


def sizes_for(k, n=N):
    base = [n // k] * k
    for i in range(n % k):
        base[i] += 1
    return base


def assign(sizes, rng):
    labels = np.concatenate([np.full(s, c) for c, s in enumerate(sizes)])
    rng.shuffle(labels)
    return labels


def blobs(rng, k, d, sep, std, offset=0.0, sizes=None, stds=None):
    sizes = sizes or sizes_for(k)
    stds = stds or [std] * k
    labels = assign(sizes, rng)
    # centre-to-centre distance ~ sep (in units of the per-dimension noise std)
    centres = rng.normal(size=(k, d)) * sep / np.sqrt(2 * d)
    x = centres[labels] + rng.normal(size=(N, d)) * np.asarray(stds)[labels][:, None]
    x += offset * rng.normal(size=d)
    return x, labels


def vitlike(rng, k, d):
    sizes = sizes_for(k)
    labels = assign(sizes, rng)
    shared = 4.0 * rng.normal(size=d)
    factors = rng.normal(size=(k, 3, d))
    coeff = rng.normal(size=(N, 3))
    x = shared + 1.5 * rng.normal(size=(k, d))[labels]
    x += 0.6 * np.einsum("nr,nrd->nd", coeff, factors[labels])
    x += 0.5 * rng.normal(size=(N, d))
    return x, labels


def pca_coords(x):
    xc = x - x.mean(axis=0)
    g = xc @ xc.T
    lam, u = np.linalg.eigh(g)
    order = np.argsort(lam)[::-1]
    lam, u = lam[order], u[:, order]
    keep = (lam > 0) & (lam > RANK_TOL * lam[0])
    return u[:, keep] * np.sqrt(lam[keep])


def gmm_from_labels(y, labels, k, reg_covar=1e-6):
    """sklearn's diag GMM started from the one-hot M-step of `labels` (what its own k-means
    initialisation does), so that EM itself can be compared from an identical start."""
    resp = np.zeros((len(y), k))
    resp[np.arange(len(y)), labels] = 1.0
    nk = resp.sum(axis=0) + 10 * np.finfo(resp.dtype).eps
    means = resp.T @ y / nk[:, None]
    avg_x2 = resp.T @ (y * y) / nk[:, None]
    var = avg_x2 - 2 * means * (resp.T @ y / nk[:, None]) + means**2 + reg_covar
    gm = GaussianMixture(k, covariance_type="diag", random_state=0, weights_init=nk / len(y),
                         means_init=means, precisions_init=1.0 / var)
    return gm.fit_predict(y)


def dbscan_eps(x):
    """Largest relative gap in the upper half of the sorted minimum-spanning-tree edge lengths:
    eps = sqrt(e[j] * e[j+1]) for the j in [m//2, m-2] maximising e[j+1] / e[j] (m = n - 1
    edges, e[j] > 0). Mirrors dbscan::default_eps in the Rust engine."""
    dist = squareform(pdist(x))
    e = np.sort(mst_edges_dense(dist))
    m = len(e)
    best, best_ratio = None, -1.0
    for j in range(m // 2, m - 1):
        if e[j] > 0 and e[j + 1] / e[j] > best_ratio:
            best, best_ratio = j, e[j + 1] / e[j]
    if best is None:
        return float(e[-1]) * (1.0 + 1e-6) if m else 1.0
    return float(np.sqrt(e[best] * e[best + 1]))


def mst_edges_dense(dist):
    """Minimum-spanning-tree edge lengths by Prim's algorithm on a dense distance matrix."""
    n = len(dist)
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
    return np.array(edges)


def assign_noise(x, labels):
    out = labels.copy()
    dist = squareform(pdist(x, "sqeuclidean"))
    clustered = np.flatnonzero(labels >= 0)
    if len(clustered) == 0:
        return np.zeros_like(labels)
    for i in np.flatnonzero(labels < 0):
        j = clustered[np.argmin(dist[i, clustered])]
        out[i] = labels[j]
    return out


def run_all(x32, k):
    x = x32.astype(np.float64)
    gamma = 1.0 / float(np.median(pdist(x, "sqeuclidean")))
    nn = int(min(max(N // k, 3), 10))
    eps = dbscan_eps(x)
    rows = {}
    rows["kmeans"] = KMeans(k, n_init=KMEANS_N_INIT, random_state=0).fit_predict(x)
    for link in ["ward", "average", "complete"]:
        rows[f"agglo_{link}"] = AgglomerativeClustering(n_clusters=k, linkage=link).fit_predict(x)
    rows["spectral_rbf"] = SpectralClustering(
        k, affinity="rbf", gamma=gamma, n_init=KMEANS_N_INIT, random_state=0
    ).fit_predict(x)
    rows["spectral_nn"] = SpectralClustering(
        k, affinity="nearest_neighbors", n_neighbors=nn, n_init=KMEANS_N_INIT, random_state=0
    ).fit_predict(x)
    rows["gmm"] = GaussianMixture(k, covariance_type="diag", random_state=0).fit_predict(
        pca_coords(x)
    )
    rows["gmm_from_kmeans"] = gmm_from_labels(pca_coords(x), rows["kmeans"], k)
    rows["gmm_raw"] = GaussianMixture(k, covariance_type="diag", random_state=0).fit_predict(x)
    db = DBSCAN(eps=eps, min_samples=MIN_SAMPLES).fit_predict(x)
    rows["dbscan"] = db
    rows["dbscan_assigned"] = assign_noise(x, db)
    params = {"gamma": gamma, "n_neighbors": nn, "eps": eps, "min_samples": MIN_SAMPLES}
    return rows, params


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join("tests", "fixtures", "cluster")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20240611)
    datasets = []
    for k in (2, 4, 8):
        datasets.append((f"blobs_k{k}", k, *blobs(rng, k, 2048, sep=40.0, std=1.0, offset=30.0)))
    for k in (2, 4, 8):
        datasets.append((f"overlap_k{k}", k, *blobs(rng, k, 256, sep=8.0, std=1.0, offset=5.0)))
    x, lab = blobs(rng, 4, 256, sep=14.0, std=1.0)
    shear = rng.normal(size=(256, 256)) * np.linspace(2.0, 0.1, 256)[None, :] / np.sqrt(256) * 2.0
    datasets.append(("aniso_k4", 4, x @ shear, lab))
    datasets.append(
        ("uneven_k4", 4, *blobs(rng, 4, 256, sep=14.0, std=1.0, sizes=[20, 8, 5, 3],
                                stds=[1.3, 1.0, 0.7, 0.5]))
    )
    datasets.append(("vitlike_k4", 4, *vitlike(rng, 4, 768)))

    manifest = {
        "generator": "scripts/make_cluster_fixtures.py",
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "datasets": [],
    }
    print(f"{'dataset':14s} " + " ".join(f"{m:>9s}" for m in [
        "kmeans", "ward", "average", "complete", "sp_rbf", "sp_nn", "gmm", "gmm_raw", "dbscan*"]))
    for name, k, x, truth in datasets:
        x32 = np.ascontiguousarray(x, dtype=np.float32)
        rows, params = run_all(x32, k)
        rows["truth"] = truth
        names = list(rows)
        labels = np.stack([np.asarray(rows[m], dtype=np.int32) for m in names])
        np.save(os.path.join(out, f"{name}.npy"), x32)
        np.save(os.path.join(out, f"{name}_labels.npy"), labels)
        manifest["datasets"].append({
            "name": name, "k": k, "n": int(x32.shape[0]), "d": int(x32.shape[1]),
            "rows": names, **params,
        })
        aris = [adjusted_rand_score(truth, rows[m]) for m in [
            "kmeans", "agglo_ward", "agglo_average", "agglo_complete", "spectral_rbf",
            "spectral_nn", "gmm", "gmm_raw", "dbscan_assigned"]]
        print(f"{name:14s} " + " ".join(f"{a:9.3f}" for a in aris)
              + f"   noise={int((rows['dbscan'] < 0).sum())}")
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
