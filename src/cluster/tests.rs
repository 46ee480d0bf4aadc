use super::*;

fn all_methods() -> Vec<Method> {
    vec![
        Method::KMeans,
        Method::Agglomerative(Linkage::Ward),
        Method::Agglomerative(Linkage::Average),
        Method::Agglomerative(Linkage::Complete),
        Method::Spectral(Affinity::Rbf { gamma: None }),
        Method::Spectral(Affinity::NearestNeighbors { n_neighbors: 4 }),
        Method::Gmm,
        Method::Dbscan {
            eps: None,
            min_samples: 3,
        },
    ]
}

/// Three tight groups of 4 points in 5-d, far apart.
fn three_groups() -> (Vec<f32>, usize, usize) {
    let (n, d) = (12, 5);
    let mut x = vec![0f32; n * d];
    for i in 0..n {
        let g = i / 4;
        for t in 0..d {
            let jitter = (((i * 31 + t * 17) % 11) as f32 - 5.0) * 0.01;
            x[i * d + t] = if t == g { 10.0 } else { 0.0 } + jitter + 100.0;
        }
    }
    (x, n, d)
}

#[test]
fn every_method_separates_three_groups() {
    let (x, n, d) = three_groups();
    for m in all_methods() {
        let c = cluster(&x, n, d, &ClusterSpec::new(m.clone(), 3)).expect("clusters");
        assert_eq!(c.k, 3, "{m}");
        assert_eq!(c.labels, vec![0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2], "{m}");
        assert_eq!(c.centroids.len(), 3 * d);
        for g in 0..3 {
            for t in 0..d {
                let mean: f32 = (0..4).map(|i| x[(g * 4 + i) * d + t]).sum::<f32>() / 4.0;
                assert!((c.centroids[g * d + t] - mean).abs() < 1e-4, "{m}");
            }
        }
    }
}

#[test]
fn shape_and_k_errors() {
    let x = vec![0.5f32; 12];
    let spec = |k| ClusterSpec::new(Method::KMeans, k);
    assert_eq!(
        cluster(&x, 3, 5, &spec(2)),
        Err(ClusterError::LengthMismatch {
            len: 12,
            n: 3,
            d: 5,
            expected: 15
        })
    );
    assert_eq!(cluster(&[], 0, 4, &spec(1)), Err(ClusterError::NoPoints));
    assert_eq!(cluster(&[], 3, 0, &spec(1)), Err(ClusterError::ZeroDim));
    assert_eq!(cluster(&x, 3, 4, &spec(0)), Err(ClusterError::ZeroK { n: 3 }));
    assert_eq!(
        cluster(&x, 3, 4, &spec(4)),
        Err(ClusterError::KTooLarge { k: 4, n: 3 })
    );
    assert!(matches!(
        cluster(&x, usize::MAX, 2, &spec(1)),
        Err(ClusterError::LengthMismatch { .. })
    ));
    let msg = cluster(&x, 3, 4, &spec(4)).expect_err("k > n").to_string();
    assert!(msg.contains("k = 4") && msg.contains("n = 3"), "{msg}");
}

#[test]
fn non_finite_values_are_reported_with_position() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let (mut x, n, d) = three_groups();
        x[7 * d + 2] = bad;
        for m in all_methods() {
            let err = cluster(&x, n, d, &ClusterSpec::new(m, 2)).expect_err("non-finite");
            match err {
                ClusterError::NonFinite { point, dim, value } => {
                    assert_eq!((point, dim), (7, 2));
                    assert_eq!(value.to_bits(), bad.to_bits());
                }
                other => panic!("unexpected {other}"),
            }
        }
    }
    // inf and -inf in the same column (mean is NaN)
    let (mut x, n, d) = three_groups();
    x[d] = f32::INFINITY;
    x[2 * d] = f32::NEG_INFINITY;
    let err = cluster(&x, n, d, &ClusterSpec::new(Method::Gmm, 2)).expect_err("inf");
    assert!(err.to_string().contains("point 1, dim 0"), "{err}");
}

#[test]
fn huge_values_overflow_cleanly() {
    for d in [5, 16] {
        let n = 6;
        let mut x = vec![1.0f32; n * d];
        for v in x.iter_mut().take(d) {
            *v = 3e30;
        }
        let err = cluster(&x, n, d, &ClusterSpec::new(Method::KMeans, 2)).expect_err("overflow");
        assert!(matches!(err, ClusterError::Overflow { .. }), "{err}");
        assert!(err.to_string().contains("3e30"), "{err}");
    }
}

#[test]
fn identical_rows_give_one_cluster() {
    let (n, d) = (36, 16);
    let x: Vec<f32> = (0..n * d).map(|i| (i % d) as f32 * 0.25 - 1.0).collect();
    for m in all_methods() {
        for k in [1, 2, 8] {
            let c = cluster(&x, n, d, &ClusterSpec::new(m.clone(), k)).expect("fallback");
            assert_eq!(c.k, 1, "{m}");
            assert!(c.labels.iter().all(|&l| l == 0), "{m}");
            assert_eq!(&c.centroids[..], &x[..d], "{m}");
        }
    }
}

#[test]
fn few_distinct_rows_each_get_a_cluster() {
    // 6 points, only 3 distinct positions (pairs of duplicates), k = 4 > 3 distinct
    let rows: [[f32; 2]; 3] = [[0.0, 0.0], [5.0, 1.0], [-3.0, 4.0]];
    let x: Vec<f32> = [0, 1, 0, 2, 1, 2].iter().flat_map(|&r| rows[r]).collect();
    for m in all_methods() {
        if matches!(m, Method::Dbscan { .. }) {
            continue;
        }
        for k in [3, 4, 6] {
            let c = cluster(&x, 6, 2, &ClusterSpec::new(m.clone(), k)).expect("fallback");
            assert_eq!(c.k, 3, "{m} k={k}");
            assert_eq!(c.labels, vec![0, 1, 0, 2, 1, 2], "{m} k={k}");
        }
        // k below the distinct count still clusters normally and uses every label
        let c = cluster(&x, 6, 2, &ClusterSpec::new(m.clone(), 2)).expect("clusters");
        assert_eq!(c.k, 2, "{m}");
        assert_eq!(c.labels[0], c.labels[2], "{m}");
    }
}

#[test]
fn single_point_and_single_dimension() {
    for m in all_methods() {
        let c = cluster(&[2.5], 1, 1, &ClusterSpec::new(m.clone(), 1)).expect("one point");
        assert_eq!((c.labels, c.k, c.centroids), (vec![0], 1, vec![2.5]), "{m}");
        let x = [0.0, 0.1, 0.2, 9.0, 9.1, 9.2];
        let c = cluster(&x, 6, 1, &ClusterSpec::new(m.clone(), 2)).expect("1-d");
        assert_eq!(c.labels, vec![0, 0, 0, 1, 1, 1], "{m}");
    }
}

#[test]
fn invalid_method_parameters_are_errors() {
    let (x, n, d) = three_groups();
    let bad = [
        Method::Spectral(Affinity::Rbf { gamma: Some(0.0) }),
        Method::Spectral(Affinity::Rbf {
            gamma: Some(f32::NAN),
        }),
        Method::Spectral(Affinity::NearestNeighbors { n_neighbors: 1 }),
        Method::Dbscan {
            eps: Some(-0.5),
            min_samples: 3,
        },
        Method::Dbscan {
            eps: None,
            min_samples: 0,
        },
    ];
    for m in bad {
        let err = cluster(&x, n, d, &ClusterSpec::new(m.clone(), 2)).expect_err("invalid");
        assert!(matches!(err, ClusterError::InvalidParameter(_)), "{m}: {err}");
        assert!(err.to_string().contains("expected"), "{err}");
    }
}

#[test]
fn method_names_round_trip() {
    let cases = [
        ("kmeans", Method::KMeans),
        ("agglomerative", Method::Agglomerative(Linkage::Ward)),
        ("agglomerative:average", Method::Agglomerative(Linkage::Average)),
        ("Agglomerative:Complete", Method::Agglomerative(Linkage::Complete)),
        ("spectral", Method::Spectral(Affinity::Rbf { gamma: None })),
        (
            "spectral:rbf=0.25",
            Method::Spectral(Affinity::Rbf { gamma: Some(0.25) }),
        ),
        (
            "spectral:nn",
            Method::Spectral(Affinity::NearestNeighbors {
                n_neighbors: DEFAULT_N_NEIGHBORS,
            }),
        ),
        (
            "spectral:nn=6",
            Method::Spectral(Affinity::NearestNeighbors { n_neighbors: 6 }),
        ),
        ("gmm", Method::Gmm),
        (
            "dbscan",
            Method::Dbscan {
                eps: None,
                min_samples: DEFAULT_MIN_SAMPLES,
            },
        ),
        (
            "dbscan:eps=1.5,min_samples=4",
            Method::Dbscan {
                eps: Some(1.5),
                min_samples: 4,
            },
        ),
    ];
    for (s, m) in cases {
        let parsed: Method = s.parse().expect(s);
        assert_eq!(parsed, m, "{s}");
        let again: Method = m.to_string().parse().expect("display parses");
        assert_eq!(again, m);
        let json = serde_json::to_string(&m).expect("serialise");
        let back: Method = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, m, "{json}");
    }
    for bad in [
        "",
        "kmeans:3",
        "spectral:foo",
        "dbscan:eps=x",
        "dbscan:q=1",
        "hdbscan",
    ] {
        let err = bad.parse::<Method>().expect_err(bad);
        assert!(err.to_string().contains("expected kmeans"), "{err}");
    }
    let spec: ClusterSpec =
        serde_json::from_str(r#"{"method":"agglomerative:complete","k":4}"#).expect("spec");
    assert_eq!(
        spec,
        ClusterSpec::new(Method::Agglomerative(Linkage::Complete), 4)
    );
}

#[test]
fn batch_matches_single_and_is_thread_independent() {
    let (x1, n, d) = three_groups();
    let mut x = x1.clone();
    x.extend(x1.iter().rev());
    x.extend(x1.iter().map(|v| v * 2.0));
    for m in all_methods() {
        let spec = ClusterSpec {
            method: m.clone(),
            k: 3,
            seed: 9,
        };
        let one = cluster_batch(&x, 3, n, d, &spec, 1).expect("1 thread");
        let two = cluster_batch(&x, 3, n, d, &spec, 2).expect("2 threads");
        assert_eq!(one, two, "{m}");
        for (i, c) in one.iter().enumerate() {
            let single = cluster(&x[i * n * d..(i + 1) * n * d], n, d, &spec).expect("single");
            assert_eq!(&single, c, "{m}");
        }
    }
    let spec = ClusterSpec::new(Method::KMeans, 2);
    assert!(matches!(
        cluster_batch(&x, 2, n, d, &spec, 1),
        Err(ClusterError::BatchLengthMismatch { .. })
    ));
    assert!(matches!(
        cluster_batch(&x, 3, n, d, &spec, 0),
        Err(ClusterError::ThreadPool(_))
    ));
    assert_eq!(cluster_batch(&[], 0, n, d, &spec, 1), Ok(vec![]));
    let mut bad = x.clone();
    bad[2 * n * d + 3] = f32::NAN;
    let err = cluster_batch(&bad, 3, n, d, &spec, 2).expect_err("nan in image 2");
    assert!(err.to_string().starts_with("image 2: non-finite"), "{err}");
}

#[test]
fn canonical_labels_follow_first_appearance() {
    assert_eq!(canonicalise(&[5, 5, 2, 9, 2]), (vec![0, 0, 1, 2, 1], 3));
    assert_eq!(canonicalise(&[]), (vec![], 0));
}

/// Minimum over 15 batches of the mean time per call, in µs.
fn min_time(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..15 {
        let t = std::time::Instant::now();
        for _ in 0..reps {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e6 / reps as f64);
    }
    best
}

#[test]
#[ignore = "timing breakdown, run with --release -- --ignored --nocapture"]
fn perf_breakdown() {
    let (n, d) = (36, 2048);
    let x: Vec<f32> = (0..n * d)
        .map(|i| ((i * 7919 + 13) % 1009) as f32 / 1009.0 + if (i / d) % 3 == 0 { 2.0 } else { 0.0 })
        .collect();
    let r = 200;
    let mut ws = Workspace::new();
    println!(
        "prepare      {:7.1} us",
        min_time(r, || ws.prepare(&x, n, d).expect("ok"))
    );
    let mut g = vec![0.0; n * n];
    let mut scratch = Vec::new();
    println!(
        "gram         {:7.1} us",
        min_time(r, || gram::gram_shifted(&x, n, d, &mut scratch, &mut g))
    );
    println!(
        "gram sgemm   {:7.1} us",
        min_time(r / 4, || gram::gram_sgemm(&x, n, d, &mut g))
    );
    println!(
        "duplicates   {:7.1} us",
        min_time(r, || {
            std::hint::black_box(duplicate_groups(&x, n, d));
        })
    );
    let labels: Vec<u32> = (0..n as u32).map(|i| i % 8).collect();
    println!(
        "centroids    {:7.1} us",
        min_time(r, || {
            std::hint::black_box(centroids(&x, n, d, &labels, 8));
        })
    );
    println!(
        "sym_eigen    {:7.1} us",
        min_time(r, || {
            std::hint::black_box(linalg::sym_eigen(&ws.gram, n));
        })
    );
    {
        let a = ws.gram.clone();
        let mut w = a.clone();
        let (mut dd, mut ee, mut zt) = (vec![0.0; n], vec![0.0; n], vec![0.0; n * n]);
        println!(
            "tridiag      {:7.1} us",
            min_time(r, || {
                w.copy_from_slice(&a);
                zt.iter_mut().for_each(|v| *v = 0.0);
                linalg::tridiagonalise(&mut w, n, &mut dd, &mut ee, &mut zt);
            })
        );
        w.copy_from_slice(&a);
        for i in 0..n {
            zt[i * n + i] = 1.0;
        }
        linalg::tridiagonalise(&mut w, n, &mut dd, &mut ee, &mut zt);
        let (d0, e0, z0) = (dd.clone(), ee.clone(), zt.clone());
        println!(
            "ql           {:7.1} us",
            min_time(r, || {
                dd.copy_from_slice(&d0);
                ee.copy_from_slice(&e0);
                zt.copy_from_slice(&z0);
                linalg::ql_implicit(&mut dd, &mut ee, &mut zt, n);
            })
        );
    }
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for k in [2, 8] {
        let (gm, d2) = (&ws.gram, &ws.dist2);
        println!(
            "kmeans k={k}   {:7.1} us",
            min_time(r, || {
                std::hint::black_box(kmeans::kmeans(gm, d2, n, k, KMEANS_N_INIT, &mut rng));
            })
        );
        println!(
            "ward k={k}     {:7.1} us",
            min_time(r, || {
                std::hint::black_box(agglomerative::agglomerative(d2, n, k, Linkage::Ward));
            })
        );
        println!(
            "gmm k={k}      {:7.1} us",
            min_time(r, || {
                std::hint::black_box(gmm::gmm(gm, d2, n, k, KMEANS_N_INIT, &mut rng).ok());
            })
        );
        let a = Affinity::Rbf { gamma: None };
        println!(
            "spectral k={k} {:7.1} us",
            min_time(r, || {
                std::hint::black_box(spectral::spectral(d2, n, k, &a, KMEANS_N_INIT, &mut rng).ok());
            })
        );
    }
    println!(
        "dbscan       {:7.1} us",
        min_time(r, || {
            std::hint::black_box(dbscan::dbscan(&ws.dist2, n, None, 3).ok());
        })
    );
    let images = 400;
    let big: Vec<f32> = (0..images * n * d)
        .map(|i| ((i * 7919 + 13) % 1009) as f32)
        .collect();
    let mut img = 0;
    println!(
        "prepare cold {:7.1} us",
        min_time(images / 4, || {
            let at = (img % images) * n * d;
            img += 1;
            ws.prepare(&big[at..at + n * d], n, d).expect("ok");
        })
    );
    let spec = ClusterSpec::new(Method::KMeans, 4);
    println!(
        "full kmeans4 {:7.1} us",
        min_time(r, || {
            std::hint::black_box(ws.cluster(&x, n, d, &spec).ok());
        })
    );
}

#[test]
#[ignore = "per-method timing on a .npy file: PERF_NPY=path cargo test --release -- --ignored"]
fn perf_file() {
    let Ok(path) = std::env::var("PERF_NPY") else {
        return;
    };
    let emb = crate::npy::read_embeddings(std::path::Path::new(&path)).expect("npy");
    let (n, d) = (emb.patches, emb.dim);
    let images = emb.images.min(300);
    let x = &emb.data[..images * n * d];
    let mut ws = Workspace::new();
    let mut img = 0;
    let mut next = || {
        let at = (img % images) * n * d;
        img += 1;
        &x[at..at + n * d]
    };
    println!(
        "prepare     {:7.1} us",
        min_time(images / 3, || ws.prepare(next(), n, d).expect("ok"))
    );
    for m in [
        "kmeans",
        "agglomerative:ward",
        "spectral:rbf",
        "spectral:nn",
        "gmm",
        "dbscan",
    ] {
        for k in [2, 8] {
            let spec = ClusterSpec::new(m.parse().expect("method"), k);
            let t = min_time(images / 3, || {
                std::hint::black_box(ws.cluster(next(), n, d, &spec).ok());
            });
            println!("{m:22} k={k} {t:7.1} us");
        }
    }
    // eigen solver and kmeans on prepared matrices of real images
    let mut mats = Vec::new();
    for i in 0..images.min(50) {
        ws.prepare(&x[i * n * d..(i + 1) * n * d], n, d).expect("ok");
        mats.push((ws.gram.clone(), ws.dist2.clone()));
    }
    let mut t = 0;
    println!(
        "sym_eigen   {:7.1} us",
        min_time(50, || {
            let (g, _) = &mats[t % mats.len()];
            t += 1;
            std::hint::black_box(linalg::sym_eigen(g, n));
        })
    );
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for k in [2, 8] {
        println!(
            "kmeans k={k}  {:7.1} us",
            min_time(50, || {
                let (g, d2) = &mats[t % mats.len()];
                t += 1;
                std::hint::black_box(kmeans::kmeans(g, d2, n, k, KMEANS_N_INIT, &mut rng));
            })
        );
        let a = Affinity::Rbf { gamma: None };
        println!(
            "spectral k={k} {:7.1} us",
            min_time(50, || {
                let (_, d2) = &mats[t % mats.len()];
                t += 1;
                std::hint::black_box(spectral::spectral(d2, n, k, &a, KMEANS_N_INIT, &mut rng).ok());
            })
        );
        println!(
            "ward k={k}    {:7.1} us",
            min_time(50, || {
                let (_, d2) = &mats[t % mats.len()];
                t += 1;
                std::hint::black_box(agglomerative::agglomerative(d2, n, k, Linkage::Ward));
            })
        );
        println!(
            "dbscan       {:7.1} us",
            min_time(50, || {
                let (_, d2) = &mats[t % mats.len()];
                t += 1;
                std::hint::black_box(dbscan::dbscan(d2, n, None, 3).ok());
            })
        );
        println!(
            "gmm k={k}     {:7.1} us",
            min_time(50, || {
                let (g, d2) = &mats[t % mats.len()];
                t += 1;
                std::hint::black_box(gmm::gmm(g, d2, n, k, KMEANS_N_INIT, &mut rng).ok());
            })
        );
    }
}
