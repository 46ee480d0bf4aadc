//! The clustering entry point on arbitrary `[36, d]` patch features (NaN, ±inf, huge values and
//! duplicate rows included) with any method and any k: a valid partition or an error, never a
//! panic or a hang. Input decoding: `cases::cluster_case`.
#![no_main]

#[path = "cases.rs"]
mod cases;

use cases::{N, cluster_case};
use libfuzzer_sys::fuzz_target;
use paca_fer::cluster::cluster;

fuzz_target!(|bytes: &[u8]| {
    let Some((x, d, spec)) = cluster_case(bytes) else {
        return;
    };
    match cluster(&x, N, d, &spec) {
        Ok(c) => {
            assert_eq!(c.labels.len(), N);
            assert!(c.k >= 1 && c.k <= N);
            assert!(c.labels.iter().all(|&l| (l as usize) < c.k));
            assert_eq!(c.centroids.len(), c.k * d);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
