//! Per-image clustering of patch embeddings (`n × d` f32, typically `36 × 2048`) into `k` groups,
//! behind one enum-dispatched entry point ([`cluster`], [`cluster_batch`]).
//!
//! ## Design (why it is fast)
//! Every method only needs pairwise geometry, so each image is reduced once to its `n × n`
//! Gram matrix (the only `O(n²·d)` step: an AVX2/FMA kernel on x86-64, `matrixmultiply::sgemm`
//! elsewhere, see `gram.rs`) and the squared distances derived from it. All methods then run on
//! `36 × 36` f64 matrices, and the `k × d` centroids (member means in input space) are computed
//! once at the end. The Gram matrix is taken of the rows shifted by the first row (a component
//! shared by all patches changes no distance but would cost f32 precision in
//! `‖a‖² + ‖b‖² − 2⟨a,b⟩`), then centred exactly in f64.
//!
//! ## Determinism
//! Randomised steps (k-means++ seeding, restarts) draw from a ChaCha8 RNG seeded with
//! [`ClusterSpec::seed`]; labels are renumbered in order of first appearance; so the same input
//! and spec always give the same [`Clustering`], on any thread count.
//!
//! ## Why not linfa
//! linfa-clustering's `KMeans` measured 1.1–5.6 ms per `36 × 2048` image with `n_runs = 1`,
//! 5–25× over the 240 µs/image budget. linfa is kept as an independent reference
//! (`tests/common/linfa_reference.rs`) in the tests and the benchmark, out of the library.
//!
//! ## Methods (all follow scikit-learn's algorithms and defaults unless said otherwise)
//! * **k-means** — kernel-form Lloyd (`‖xᵢ − c‖²` from Gram sums), greedy k-means++ seeding,
//!   [`KMEANS_N_INIT`] seeded restarts, lowest inertia kept.
//! * **agglomerative** — Lance–Williams on the distance matrix; Ward (default) on squared
//!   Euclidean distances, average/complete on Euclidean distances; cut at `k` clusters.
//! * **spectral** — affinity, normalised Laplacian, its `k` smallest eigenvectors (own
//!   Householder and implicit-QL eigensolver), scaled by `D^{-½}` as scikit-learn's
//!   `spectral_embedding` does, then k-means on the rows. RBF `gamma` defaults to `1 / median` pairwise squared distance ([`median_gamma`]):
//!   scikit-learn's default `gamma = 1.0` makes every affinity between 2048-d embeddings
//!   `exp(−hundreds) ≈ 0`, i.e. no graph at all. `spectral:nn` uses the symmetrised k-NN graph.
//! * **gmm** — diagonal-covariance EM (`reg_covar = 1e-6`, `tol = 1e-3`, k-means init with
//!   [`KMEANS_N_INIT`] restarts) run in
//!   the exact PCA coordinates of the image's patches (eigenvectors of the centred Gram matrix,
//!   an isometry of the data into ≤ `n − 1` dims): **the covariances are diagonal in that PCA
//!   basis**, not in the raw embedding axes.
//! * **dbscan** — scikit-learn's DBSCAN; default `eps` = the largest relative gap of the
//!   minimum-spanning-tree edge lengths ([`dbscan_default_eps`]); noise points join the cluster
//!   of their nearest clustered point; `Clustering::k` is the number of clusters found (the
//!   requested `k` is only validated).
//!
//! ## Degenerate input
//! Bad shapes, `k = 0`, `k > n`, non-finite values and overflowing values return a
//! [`ClusterError`]. Duplicate rows are fine; if there are at most `k` distinct rows, each group
//! of identical rows becomes one cluster (so all-identical input gives one cluster with
//! `Clustering::k = 1`), for every method.

mod agglomerative;
pub mod bench;
mod dbscan;
mod gmm;
pub mod gram;
mod kmeans;
pub(crate) mod linalg;
pub mod metrics;
mod spectral;

use std::fmt;
use std::str::FromStr;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use dbscan::default_eps as dbscan_default_eps;
pub use spectral::median_gamma;

/// Number of patches per image in the study (a 6 × 6 grid); the API accepts any `n`.
pub const PATCHES: usize = 36;
/// Seeded k-means restarts (k-means, spectral embedding, GMM initialisation); the lowest
/// inertia wins. Each restart costs a few microseconds on `36 × 36`.
pub const KMEANS_N_INIT: usize = 4;
/// Default `n_neighbors` of the k-NN spectral affinity (scikit-learn's default).
pub const DEFAULT_N_NEIGHBORS: usize = 10;
/// Default DBSCAN `min_samples` (scikit-learn's 5 is too many for 36 patches in up to 8 groups).
pub const DEFAULT_MIN_SAMPLES: usize = 3;

/// Clustering algorithm, parsed from / printed as `kmeans`, `agglomerative[:ward|average|complete]`,
/// `spectral[:rbf[=GAMMA]|nn[=N]]`, `gmm`, `dbscan[:eps=E][,min_samples=M]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Method {
    /// Kernel-form Lloyd k-means with k-means++ seeding and seeded restarts.
    KMeans,
    /// Bottom-up hierarchical clustering cut at `k` clusters.
    Agglomerative(Linkage),
    /// Normalised-Laplacian spectral embedding followed by k-means.
    Spectral(Affinity),
    /// Diagonal-covariance Gaussian mixture (EM in the PCA basis of the image's patches).
    Gmm,
    /// Density-based clustering; finds its own number of clusters, noise joins the nearest one.
    Dbscan {
        /// Neighbourhood radius; `None` = data-scaled default (see [`dbscan_default_eps`]).
        eps: Option<f32>,
        /// Neighbours (the point included) needed for a core point.
        min_samples: usize,
    },
}

/// Linkage criterion of agglomerative clustering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Linkage {
    /// Minimum increase of within-cluster variance (scikit-learn's default).
    #[default]
    Ward,
    /// Mean Euclidean distance between members (UPGMA).
    Average,
    /// Maximum Euclidean distance between members.
    Complete,
}

/// Affinity (graph) used by spectral clustering.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Affinity {
    /// `exp(−γ‖xᵢ − xⱼ‖²)`; `gamma = None` uses the median heuristic ([`median_gamma`]).
    Rbf {
        /// Kernel width; `None` = `1 / median` of the pairwise squared distances.
        gamma: Option<f32>,
    },
    /// Symmetrised k-nearest-neighbour connectivity (the point counts as its own neighbour).
    NearestNeighbors {
        /// Neighbours per point, itself included (clamped to `n`).
        n_neighbors: usize,
    },
}

impl Default for Affinity {
    fn default() -> Self {
        Affinity::Rbf { gamma: None }
    }
}

/// What to run on each image: method, number of clusters, RNG seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterSpec {
    /// Algorithm and its parameters.
    pub method: Method,
    /// Requested clusters (`1 ≤ k ≤ n`; DBSCAN finds its own).
    pub k: usize,
    /// Seed of the ChaCha8 RNG used by randomised steps.
    #[serde(default)]
    pub seed: u64,
}

impl ClusterSpec {
    /// Spec with the given method and `k`, seed 0.
    pub fn new(method: Method, k: usize) -> Self {
        ClusterSpec { method, k, seed: 0 }
    }
}

/// Result for one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clustering {
    /// Cluster of each patch, in `0..k`, numbered in order of first appearance.
    pub labels: Vec<u32>,
    /// Clusters actually used (every label in `0..k` occurs): the requested `k`, except for
    /// DBSCAN (what it found), inputs with fewer distinct rows than `k`, and the rare spectral /
    /// GMM fit that leaves a cluster empty.
    pub k: usize,
    /// `k × d` row-major member means, in input space.
    pub centroids: Vec<f32>,
}

/// Why clustering could not run (the message names what was wrong and what was expected).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClusterError {
    /// `x.len()` does not match the stated shape.
    #[error("input has {len} values but n = {n} points × d = {d} dims needs {expected}")]
    LengthMismatch {
        /// Values supplied.
        len: usize,
        /// Points stated.
        n: usize,
        /// Dimensions stated.
        d: usize,
        /// `n*d` (saturating).
        expected: usize,
    },
    /// `n = 0`.
    #[error("no points to cluster (n = 0), expected n >= 1")]
    NoPoints,
    /// `d = 0`.
    #[error("points have no dimensions (d = 0), expected d >= 1")]
    ZeroDim,
    /// `k = 0`.
    #[error("k = 0 clusters requested, expected 1 <= k <= n = {n}")]
    ZeroK {
        /// Points available.
        n: usize,
    },
    /// `k > n`.
    #[error("k = {k} clusters requested but there are only n = {n} points, expected k <= n")]
    KTooLarge {
        /// Clusters requested.
        k: usize,
        /// Points available.
        n: usize,
    },
    /// NaN or ±inf in the input.
    #[error("non-finite value {value} at point {point}, dim {dim}; expected finite embeddings")]
    NonFinite {
        /// Row of the first offending value.
        point: usize,
        /// Column of the first offending value.
        dim: usize,
        /// The value (NaN or ±inf).
        value: f32,
    },
    /// Values so large that squared norms overflow f32.
    #[error(
        "embedding values too large: squared distances between patches overflow f32 (max |x| = {max_abs:e}); expected squared distances < 3.4e38"
    )]
    Overflow {
        /// Largest absolute input value.
        max_abs: f32,
    },
    /// Method parameter out of range (message names it).
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// An iterative solver did not converge (never observed for finite input).
    #[error("{0} did not converge")]
    NoConvergence(&'static str),
    /// `threads = 0` or the rayon pool could not be built.
    #[error("thread pool: {0}")]
    ThreadPool(String),
    /// A batch's `x.len()` does not match `images × n × d`.
    #[error("batch has {len} values but images = {images} × n = {n} × d = {d} needs {expected}")]
    BatchLengthMismatch {
        /// Values supplied.
        len: usize,
        /// Images stated.
        images: usize,
        /// Points per image.
        n: usize,
        /// Dimensions.
        d: usize,
        /// `images*n*d` (saturating).
        expected: usize,
    },
    /// Clustering failed for one image of a batch.
    #[error("image {image}: {source}")]
    Image {
        /// Index of the image in the batch.
        image: usize,
        /// The underlying error.
        source: Box<ClusterError>,
    },
}

/// Why a method name could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown clustering method '{0}', expected kmeans, agglomerative[:ward|average|complete], spectral[:rbf[=GAMMA]|nn[=N]], gmm or dbscan[:eps=E][,min_samples=M]"
)]
pub struct ParseMethodError(pub String);

impl fmt::Display for Linkage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Linkage::Ward => "ward",
            Linkage::Average => "average",
            Linkage::Complete => "complete",
        })
    }
}

impl Method {
    /// The method's name without parameters (`kmeans`, `agglomerative`, `spectral`, `gmm`, `dbscan`).
    pub fn family(&self) -> &'static str {
        match self {
            Method::KMeans => "kmeans",
            Method::Agglomerative(_) => "agglomerative",
            Method::Spectral(_) => "spectral",
            Method::Gmm => "gmm",
            Method::Dbscan { .. } => "dbscan",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Method::KMeans => f.write_str("kmeans"),
            Method::Agglomerative(l) => write!(f, "agglomerative:{l}"),
            Method::Spectral(Affinity::Rbf { gamma: None }) => f.write_str("spectral:rbf"),
            Method::Spectral(Affinity::Rbf { gamma: Some(g) }) => write!(f, "spectral:rbf={g}"),
            Method::Spectral(Affinity::NearestNeighbors { n_neighbors }) => {
                write!(f, "spectral:nn={n_neighbors}")
            }
            Method::Gmm => f.write_str("gmm"),
            Method::Dbscan {
                eps: None,
                min_samples,
            } => write!(f, "dbscan:min_samples={min_samples}"),
            Method::Dbscan {
                eps: Some(e),
                min_samples,
            } => write!(f, "dbscan:eps={e},min_samples={min_samples}"),
        }
    }
}

impl FromStr for Method {
    type Err = ParseMethodError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseMethodError(s.to_string());
        let lower = s.trim().to_ascii_lowercase();
        let (name, arg) = match lower.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (lower.as_str(), None),
        };
        match (name, arg) {
            ("kmeans" | "k-means", None) => Ok(Method::KMeans),
            ("gmm", None) => Ok(Method::Gmm),
            ("agglomerative" | "ward", None) => Ok(Method::Agglomerative(Linkage::Ward)),
            ("agglomerative", Some("ward")) => Ok(Method::Agglomerative(Linkage::Ward)),
            ("agglomerative", Some("average")) => Ok(Method::Agglomerative(Linkage::Average)),
            ("agglomerative", Some("complete")) => Ok(Method::Agglomerative(Linkage::Complete)),
            ("spectral", None | Some("rbf")) => Ok(Method::Spectral(Affinity::Rbf { gamma: None })),
            ("spectral", Some("nn")) => Ok(Method::Spectral(Affinity::NearestNeighbors {
                n_neighbors: DEFAULT_N_NEIGHBORS,
            })),
            ("spectral", Some(a)) => {
                if let Some(g) = a.strip_prefix("rbf=") {
                    let gamma: f32 = g.parse().map_err(|_| err())?;
                    Ok(Method::Spectral(Affinity::Rbf { gamma: Some(gamma) }))
                } else if let Some(nb) = a.strip_prefix("nn=") {
                    let n_neighbors: usize = nb.parse().map_err(|_| err())?;
                    Ok(Method::Spectral(Affinity::NearestNeighbors { n_neighbors }))
                } else {
                    Err(err())
                }
            }
            ("dbscan", args) => {
                let mut eps = None;
                let mut min_samples = DEFAULT_MIN_SAMPLES;
                for part in args.unwrap_or("").split(',').filter(|p| !p.is_empty()) {
                    let (key, val) = part.split_once('=').ok_or_else(err)?;
                    match key.trim() {
                        "eps" => eps = Some(val.trim().parse::<f32>().map_err(|_| err())?),
                        "min_samples" | "min" => min_samples = val.trim().parse().map_err(|_| err())?,
                        _ => return Err(err()),
                    }
                }
                Ok(Method::Dbscan { eps, min_samples })
            }
            _ => Err(err()),
        }
    }
}

impl TryFrom<String> for Method {
    type Error = ParseMethodError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Method> for String {
    fn from(m: Method) -> String {
        m.to_string()
    }
}

/// Reusable scratch buffers: cluster many images without reallocating (one per thread).
#[derive(Debug, Default, Clone)]
pub struct Workspace {
    /// Shifted copy of the input (portable Gram path only).
    scratch: Vec<f32>,
    /// Row means of the shifted Gram matrix (for the exact centring).
    row_mean: Vec<f64>,
    /// `n × n` centred Gram matrix.
    gram: Vec<f64>,
    /// `n × n` squared Euclidean distances.
    dist2: Vec<f64>,
}

impl Workspace {
    /// Empty workspace; buffers grow on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// Clusters one image (`x`: `n × d` row-major); same result as [`cluster`].
    pub fn cluster(
        &mut self,
        x: &[f32],
        n: usize,
        d: usize,
        spec: &ClusterSpec,
    ) -> Result<Clustering, ClusterError> {
        validate(x, n, d, spec.k)?;
        self.prepare(x, n, d)?;
        let group = duplicate_groups(x, n, d);
        let distinct = group.iter().enumerate().filter(|(i, g)| *i == **g).count();
        for i in 0..n {
            for j in 0..n {
                if group[i] == group[j] {
                    self.dist2[i * n + j] = 0.0;
                }
            }
        }
        let dbscan = matches!(spec.method, Method::Dbscan { .. });
        let raw: Vec<u32> = if distinct == 1 || (!dbscan && spec.k >= distinct) {
            // at most k distinct rows: each group of identical rows is one cluster
            log::debug!(
                "{distinct} distinct patch rows for k = {}: one cluster each",
                spec.k
            );
            group.iter().map(|&g| g as u32).collect()
        } else {
            self.run_method(n, spec)?
        };
        let (labels, k) = canonicalise(&raw);
        let centroids = centroids(x, n, d, &labels, k);
        Ok(Clustering { labels, k, centroids })
    }

    /// Computes the centred Gram matrix and the squared distances of `x`'s rows.
    fn prepare(&mut self, x: &[f32], n: usize, d: usize) -> Result<(), ClusterError> {
        self.gram.clear();
        self.gram.resize(n * n, 0.0);
        // Gram matrix of the rows shifted by row 0 (see gram.rs for why)
        gram::gram_shifted(x, n, d, &mut self.scratch, &mut self.gram);
        let bad = (0..n).any(|i| {
            let v = self.gram[i * n + i];
            !v.is_finite() || v > f64::from(f32::MAX)
        });
        if bad {
            // NaN/inf input always leaves a non-finite diagonal entry; otherwise the squared
            // distances overflowed f32 (or did on the f32 accumulation path)
            if let Some((idx, &value)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(ClusterError::NonFinite {
                    point: idx / d,
                    dim: idx % d,
                    value,
                });
            }
            let max_abs = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            return Err(ClusterError::Overflow { max_abs });
        }
        self.dist2.clear();
        self.dist2.resize(n * n, 0.0);
        for i in 0..n {
            let gii = self.gram[i * n + i];
            for j in 0..n {
                let v = gii + self.gram[j * n + j] - 2.0 * self.gram[i * n + j];
                self.dist2[i * n + j] = if i == j { 0.0 } else { v.max(0.0) };
            }
        }
        // exact centring in f64: Gc = J G J with J = I − 11ᵀ/n
        let inv_n = 1.0 / n as f64;
        self.row_mean.clear();
        self.row_mean
            .extend(self.gram.chunks_exact(n).map(|r| r.iter().sum::<f64>() * inv_n));
        let total = self.row_mean.iter().sum::<f64>() * inv_n;
        for i in 0..n {
            for j in 0..n {
                self.gram[i * n + j] += total - self.row_mean[i] - self.row_mean[j];
            }
        }
        Ok(())
    }

    /// Dispatches to the method on the prepared `n × n` matrices.
    fn run_method(&self, n: usize, spec: &ClusterSpec) -> Result<Vec<u32>, ClusterError> {
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        let (g, d2, k) = (&self.gram, &self.dist2, spec.k);
        match &spec.method {
            Method::KMeans => Ok(kmeans::kmeans(g, d2, n, k, KMEANS_N_INIT, &mut rng).labels),
            Method::Agglomerative(l) => Ok(agglomerative::agglomerative(d2, n, k, *l)),
            Method::Spectral(a) => spectral::spectral(d2, n, k, a, KMEANS_N_INIT, &mut rng),
            // scikit-learn initialises its GMM with a single k-means run; in 2048-d a single
            // k-means++ seeding puts two seeds in one blob too often (distances concentrate), so
            // the initialisation gets the same restarts as k-means itself
            Method::Gmm => gmm::gmm(g, d2, n, k, KMEANS_N_INIT, &mut rng),
            Method::Dbscan { eps, min_samples } => dbscan::dbscan(d2, n, *eps, *min_samples),
        }
    }
}

/// Clusters one image: `x` is `n × d` row-major f32 (one patch embedding per row).
pub fn cluster(x: &[f32], n: usize, d: usize, spec: &ClusterSpec) -> Result<Clustering, ClusterError> {
    Workspace::new().cluster(x, n, d, spec)
}

/// Runs the diagonal-GMM EM of [`Method::Gmm`] (PCA basis, scikit-learn's defaults) from the
/// given partition instead of a k-means initialisation — for refining an existing clustering,
/// and to check the EM against scikit-learn from an identical start. `init` holds one label per
/// point, in `0..n`.
pub fn gmm_from_labels(x: &[f32], n: usize, d: usize, init: &[u32]) -> Result<Clustering, ClusterError> {
    if init.len() != n || init.iter().any(|&l| l as usize >= n.max(1)) {
        return Err(ClusterError::InvalidParameter(format!(
            "gmm init has {} labels (max {:?}), expected n = {n} labels in 0..{n}",
            init.len(),
            init.iter().max()
        )));
    }
    validate(x, n, d, 1)?;
    let mut ws = Workspace::new();
    ws.prepare(x, n, d)?;
    let (dense, _) = canonicalise(init);
    let raw = gmm::em_from_labels(&ws.gram, n, &dense)?;
    let (labels, k) = canonicalise(&raw);
    let centroids = centroids(x, n, d, &labels, k);
    Ok(Clustering { labels, k, centroids })
}

/// Clusters `images` consecutive `n × d` images of `x`, in parallel on a rayon pool of
/// `threads` threads (`1` = the calling thread only). Results are in image order and identical
/// to per-image [`cluster`] calls whatever the thread count.
pub fn cluster_batch(
    x: &[f32],
    images: usize,
    n: usize,
    d: usize,
    spec: &ClusterSpec,
    threads: usize,
) -> Result<Vec<Clustering>, ClusterError> {
    let expected = images.saturating_mul(n).saturating_mul(d);
    if x.len() != expected {
        return Err(ClusterError::BatchLengthMismatch {
            len: x.len(),
            images,
            n,
            d,
            expected,
        });
    }
    if threads == 0 {
        return Err(ClusterError::ThreadPool(
            "threads = 0, expected at least 1".into(),
        ));
    }
    if images == 0 {
        return Ok(Vec::new());
    }
    let stride = n * d;
    let wrap = |image: usize| {
        move |e: ClusterError| ClusterError::Image {
            image,
            source: Box::new(e),
        }
    };
    if threads == 1 {
        let mut ws = Workspace::new();
        return (0..images)
            .map(|i| {
                ws.cluster(&x[i * stride..(i + 1) * stride], n, d, spec)
                    .map_err(wrap(i))
            })
            .collect();
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| ClusterError::ThreadPool(e.to_string()))?;
    pool.install(|| {
        (0..images)
            .into_par_iter()
            .map_init(Workspace::new, |ws, i| {
                ws.cluster(&x[i * stride..(i + 1) * stride], n, d, spec)
                    .map_err(wrap(i))
            })
            .collect()
    })
}

/// Checks shape and `k` before any work.
fn validate(x: &[f32], n: usize, d: usize, k: usize) -> Result<(), ClusterError> {
    let expected = n.saturating_mul(d);
    if x.len() != expected || n.checked_mul(d).is_none() {
        return Err(ClusterError::LengthMismatch {
            len: x.len(),
            n,
            d,
            expected,
        });
    }
    if n == 0 {
        return Err(ClusterError::NoPoints);
    }
    if d == 0 {
        return Err(ClusterError::ZeroDim);
    }
    if k == 0 {
        return Err(ClusterError::ZeroK { n });
    }
    if k > n {
        return Err(ClusterError::KTooLarge { k, n });
    }
    Ok(())
}

/// For each row, the index of the first row bit-identical to it (itself if none earlier).
fn duplicate_groups(x: &[f32], n: usize, d: usize) -> Vec<usize> {
    let mut group: Vec<usize> = (0..n).collect();
    for i in 1..n {
        let ri = &x[i * d..(i + 1) * d];
        for j in 0..i {
            if group[j] == j && x[j * d..(j + 1) * d] == *ri {
                group[i] = j;
                break;
            }
        }
    }
    group
}

/// Renumbers labels in order of first appearance; returns them and the number of clusters.
pub fn canonicalise(raw: &[u32]) -> (Vec<u32>, usize) {
    let mut map: Vec<(u32, u32)> = Vec::new();
    let labels = raw
        .iter()
        .map(|&r| match map.iter().find(|(from, _)| *from == r) {
            Some(&(_, to)) => to,
            None => {
                let to = map.len() as u32;
                map.push((r, to));
                to
            }
        })
        .collect();
    (labels, map.len())
}

/// Member means (`k × d`, row-major) of the input rows under canonical `labels`.
fn centroids(x: &[f32], n: usize, d: usize, labels: &[u32], k: usize) -> Vec<f32> {
    let mut sums = vec![0f32; k * d];
    let mut counts = vec![0usize; k];
    for (row, &l) in x.chunks_exact(d).take(n).zip(labels) {
        let l = l as usize;
        counts[l] += 1;
        for (s, &v) in sums[l * d..(l + 1) * d].iter_mut().zip(row) {
            *s += v;
        }
    }
    for (c, &cnt) in counts.iter().enumerate() {
        let inv = 1.0 / cnt.max(1) as f32;
        sums[c * d..(c + 1) * d].iter_mut().for_each(|s| *s *= inv);
    }
    sums
}

#[cfg(test)]
mod tests;
