//! Criterion benchmark of per-image clustering at the study's shape (36 patches × 2048 dims),
//! every method at k = 2, 4, 8, plus linfa-clustering (the reference implementation used in the
//! tests) on the same image for comparison. Run: `cargo bench --bench cluster`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
#[path = "../tests/common/linfa_reference.rs"]
#[allow(dead_code)]
mod linfa_reference;

use linfa_reference::{linfa_dbscan, linfa_kmeans};
use paca_fer::cluster::{Affinity, ClusterSpec, Linkage, Method, Workspace, dbscan_default_eps, gram};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const N: usize = 36;
const D: usize = 2048;

/// One image: 4 groups of patches around random centres, uniform noise, shared offset.
fn image(seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let offset: Vec<f32> = (0..D).map(|_| rng.random_range(-3.0..3.0)).collect();
    let centres: Vec<f32> = (0..4 * D).map(|_| rng.random_range(-1.0..1.0)).collect();
    let mut x = Vec::with_capacity(N * D);
    for i in 0..N {
        let g = i % 4;
        for t in 0..D {
            x.push(offset[t] + centres[g * D + t] + rng.random_range(-0.8..0.8));
        }
    }
    x
}

fn methods() -> Vec<Method> {
    vec![
        Method::KMeans,
        Method::Agglomerative(Linkage::Ward),
        Method::Agglomerative(Linkage::Average),
        Method::Agglomerative(Linkage::Complete),
        Method::Spectral(Affinity::Rbf { gamma: None }),
        Method::Spectral(Affinity::NearestNeighbors { n_neighbors: 10 }),
        Method::Gmm,
        Method::Dbscan {
            eps: None,
            min_samples: 3,
        },
    ]
}

fn bench_methods(c: &mut Criterion) {
    let x = image(1);
    let mut group = c.benchmark_group("cluster_36x2048");
    group.sample_size(20);
    group.warm_up_time(std::time::Duration::from_millis(300));
    group.measurement_time(std::time::Duration::from_secs(1));
    let mut ws = Workspace::new();
    for m in methods() {
        for k in [2usize, 4, 8] {
            let spec = ClusterSpec::new(m.clone(), k);
            group.bench_with_input(BenchmarkId::new(m.to_string(), k), &spec, |b, spec| {
                b.iter(|| ws.cluster(&x, N, D, spec))
            });
        }
    }
    group.finish();
}

/// The Gram kernel alone: the SIMD kernel `gram_shifted` dispatches to (AVX2/FMA on x86-64, NEON
/// on aarch64) against the portable `matrixmultiply` path on the same image.
fn bench_gram(c: &mut Criterion) {
    let x = image(1);
    let mut group = c.benchmark_group("gram_36x2048");
    group.sample_size(30);
    group.warm_up_time(std::time::Duration::from_millis(300));
    group.measurement_time(std::time::Duration::from_secs(1));
    let mut scratch = Vec::new();
    let mut out = vec![0.0; N * N];
    group.bench_function("simd", |b| {
        b.iter(|| gram::gram_shifted(&x, N, D, &mut scratch, &mut out))
    });
    group.bench_function("portable", |b| {
        b.iter(|| gram::gram_portable(&x, N, D, &mut scratch, &mut out))
    });
    group.finish();
}

fn bench_linfa(c: &mut Criterion) {
    let x = image(1);
    let mut group = c.benchmark_group("linfa_36x2048");
    group.sample_size(10);
    group.warm_up_time(std::time::Duration::from_millis(300));
    group.measurement_time(std::time::Duration::from_secs(1));
    for k in [2usize, 4, 8] {
        group.bench_with_input(BenchmarkId::new("kmeans_n_runs_1", k), &k, |b, &k| {
            b.iter(|| linfa_kmeans(&x, N, D, k, 1))
        });
    }
    // same eps as our default, so both do the same work
    let d2 = {
        let mut d2 = vec![0.0; N * N];
        for i in 0..N {
            for j in 0..N {
                d2[i * N + j] = (0..D)
                    .map(|t| f64::from(x[i * D + t] - x[j * D + t]).powi(2))
                    .sum();
            }
        }
        d2
    };
    let eps = dbscan_default_eps(&d2, N);
    group.bench_function("dbscan", |b| b.iter(|| linfa_dbscan(&x, N, D, eps, 3)));
    group.finish();
}

criterion_group!(benches, bench_methods, bench_gram, bench_linfa);
criterion_main!(benches);
