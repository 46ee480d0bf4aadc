//! `paca-fer bench cluster`: time per-image clustering of a `.npy` file of patch embeddings.
//!
//! Reads `[images, patches, dim]` `<f4` embeddings, clusters every image with the given method
//! and `k` on `threads` threads, and reports wall time of the clustering alone (file I/O
//! excluded) as JSON: `{"method","k","images","dim","threads","seconds","us_per_image"}`, plus
//! two figures for shared machines (both `threads = 1` only, else `null`): `cpu_seconds`, the
//! CPU time of the clustering thread (Linux), and `best_batch_us_per_image`, the wall time per
//! image of the fastest stretch of 100 consecutive images — on a busy machine `seconds` also
//! counts waiting for a CPU and refilling caches after other processes ran.
//! Optionally writes the labels as `<i4` `[images, patches]`.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;

use super::{ClusterError, ClusterSpec, Method, cluster_batch};

/// Images per timed stretch for `best_batch_us_per_image`.
const BATCH: usize = 100;
use crate::npy::{self, NpyError};

/// Arguments of `bench cluster` (CLI flags map one to one).
#[derive(Debug, Clone, PartialEq)]
pub struct BenchClusterArgs {
    /// `--embeddings FILE.npy`: `<f4` array `[images, patches, dim]`.
    pub embeddings: PathBuf,
    /// `--method M`: clustering method (see [`Method`]'s `FromStr`).
    pub method: Method,
    /// `--k K`: requested clusters per image.
    pub k: usize,
    /// `--threads N` (default 1): rayon threads across images.
    pub threads: usize,
    /// `--labels-out OUT.npy`: where to write `<i4` labels `[images, patches]`, if wanted.
    pub labels_out: Option<PathBuf>,
    /// `--seed S` (default 0): RNG seed of the randomised methods.
    pub seed: u64,
}

impl BenchClusterArgs {
    /// Arguments with the defaults `threads = 1`, no labels output, `seed = 0`.
    pub fn new(embeddings: impl Into<PathBuf>, method: Method, k: usize) -> Self {
        BenchClusterArgs {
            embeddings: embeddings.into(),
            method,
            k,
            threads: 1,
            labels_out: None,
            seed: 0,
        }
    }
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchClusterError {
    /// Reading the embeddings or writing the labels failed.
    #[error(transparent)]
    Npy(#[from] NpyError),
    /// Clustering failed (bad `k`, non-finite values, ...).
    #[error("clustering {path}: {source}")]
    Cluster {
        /// The embeddings file.
        path: PathBuf,
        /// The clustering error.
        source: ClusterError,
    },
}

/// Runs the benchmark and returns its JSON report (see the module doc).
pub fn bench_cluster(args: &BenchClusterArgs) -> Result<serde_json::Value, BenchClusterError> {
    let emb = npy::read_embeddings(&args.embeddings)?;
    if emb.patches != super::PATCHES {
        log::warn!(
            "{}: {} patches per image (the study uses {})",
            args.embeddings.display(),
            emb.patches,
            super::PATCHES
        );
    }
    let spec = ClusterSpec {
        method: args.method.clone(),
        k: args.k,
        seed: args.seed,
    };
    let cpu_start = thread_cpu_seconds();
    let start = Instant::now();
    let mut best_batch = f64::INFINITY;
    let result = if args.threads == 1 && emb.images > 0 {
        // one thread: same work, timed in stretches of BATCH images as well
        let stride = emb.patches * emb.dim;
        let mut all = Vec::with_capacity(emb.images);
        let mut res = Ok(());
        for first in (0..emb.images).step_by(BATCH) {
            let count = BATCH.min(emb.images - first);
            let t = Instant::now();
            let part = &emb.data[first * stride..(first + count) * stride];
            match cluster_batch(part, count, emb.patches, emb.dim, &spec, 1) {
                Ok(v) => all.extend(v),
                Err(ClusterError::Image { image, source }) => {
                    res = Err(ClusterError::Image {
                        image: first + image,
                        source,
                    });
                    break;
                }
                Err(e) => {
                    res = Err(e);
                    break;
                }
            }
            if count == BATCH {
                best_batch = best_batch.min(t.elapsed().as_secs_f64() * 1e6 / count as f64);
            }
        }
        res.map(|()| all)
    } else {
        cluster_batch(&emb.data, emb.images, emb.patches, emb.dim, &spec, args.threads)
    };
    let seconds = start.elapsed().as_secs_f64();
    let cpu_seconds = match (args.threads, cpu_start, thread_cpu_seconds()) {
        (1, Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let clusterings = result.map_err(|source| BenchClusterError::Cluster {
        path: args.embeddings.clone(),
        source,
    })?;
    if let Some(out) = &args.labels_out {
        let labels: Vec<Vec<u32>> = clusterings.into_iter().map(|c| c.labels).collect();
        npy::write_labels(out, &labels, emb.patches)?;
    }
    let us_per_image = if emb.images > 0 {
        seconds * 1e6 / emb.images as f64
    } else {
        0.0
    };
    Ok(json!({
        "method": args.method.to_string(),
        "k": args.k,
        "images": emb.images,
        "dim": emb.dim,
        "threads": args.threads,
        "seconds": seconds,
        "us_per_image": us_per_image,
        "cpu_seconds": cpu_seconds,
        "best_batch_us_per_image": best_batch.is_finite().then_some(best_batch),
    }))
}

/// CPU time consumed so far by the calling thread, from `/proc/thread-self/schedstat`
/// (nanoseconds on CPU); `None` where that file does not exist.
fn thread_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 * 1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_and_writes_labels() {
        let dir = tempfile::tempdir().expect("tempdir");
        let emb = dir.path().join("e.npy");
        let (images, n, d) = (3, 6, 4);
        let data: Vec<f32> = (0..images * n * d)
            .map(|i| {
                if (i / d) % n < 3 {
                    (i % 7) as f32 * 0.01
                } else {
                    5.0 + (i % 5) as f32 * 0.01
                }
            })
            .collect();
        npy::write_f32(&emb, &[images, n, d], &data).expect("write");
        let mut args = BenchClusterArgs::new(&emb, Method::KMeans, 2);
        args.labels_out = Some(dir.path().join("l.npy"));
        let v = bench_cluster(&args).expect("bench runs");
        assert_eq!(v["method"], "kmeans");
        assert_eq!(v["images"], 3);
        assert_eq!(v["dim"], 4);
        assert_eq!(v["threads"], 1);
        assert!(v["seconds"].as_f64().is_some_and(|s| s >= 0.0));
        if std::path::Path::new("/proc/thread-self/schedstat").exists() {
            assert!(v["cpu_seconds"].as_f64().is_some_and(|s| s >= 0.0));
        }
        let (shape, labels) = npy::read_i32(&dir.path().join("l.npy")).expect("labels");
        assert_eq!(shape, vec![3, 6]);
        assert_eq!(&labels[..6], &[0, 0, 0, 1, 1, 1]);
        // errors name the file
        args.k = 7;
        let err = bench_cluster(&args).expect_err("k > n").to_string();
        assert!(err.contains("e.npy") && err.contains("k = 7"), "{err}");
    }

    #[test]
    fn batch_errors_name_the_global_image_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let emb = dir.path().join("many.npy");
        let (images, n, d) = (250, 4, 3);
        let mut data: Vec<f32> = (0..images * n * d).map(|i| (i % 11) as f32).collect();
        data[180 * n * d + 5] = f32::NAN;
        npy::write_f32(&emb, &[images, n, d], &data).expect("write");
        let err = bench_cluster(&BenchClusterArgs::new(&emb, Method::KMeans, 2))
            .expect_err("nan")
            .to_string();
        assert!(
            err.contains("image 180: non-finite value NaN at point 1, dim 2"),
            "{err}"
        );
        data[180 * n * d + 5] = 1.0;
        npy::write_f32(&emb, &[images, n, d], &data).expect("write");
        let v = bench_cluster(&BenchClusterArgs::new(&emb, Method::KMeans, 2)).expect("runs");
        assert!(v["best_batch_us_per_image"].as_f64().is_some_and(|b| b > 0.0));
    }
}
