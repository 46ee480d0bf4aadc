//! Decoding of fuzz inputs shared by the fuzz targets and `tests/fuzz_inputs.rs` (included by
//! path in both), so a saved crash input replays exactly as it was found.

use paca_fer::cluster::{Affinity, ClusterSpec, Linkage, Method};

/// Patches per image.
pub const N: usize = 36;

/// A clustering case from fuzz bytes: byte 0 picks the method, byte 1 k (0..40, so 0 and
/// k > 36 occur), byte 2 the feature width d (1..=12), byte 3 a method parameter; the rest are
/// little-endian f32 values (NaN, ±inf and subnormal bit patterns included), repeated to fill
/// `[36, d]`, so short inputs give many duplicate rows. Returns `(x, d, spec)`.
pub fn cluster_case(bytes: &[u8]) -> Option<(Vec<f32>, usize, ClusterSpec)> {
    if bytes.len() < 4 {
        return None;
    }
    let method = match bytes[0] % 9 {
        0 => Method::KMeans,
        1 => Method::Agglomerative(Linkage::Ward),
        2 => Method::Agglomerative(Linkage::Average),
        3 => Method::Agglomerative(Linkage::Complete),
        4 => Method::Spectral(Affinity::Rbf { gamma: None }),
        5 => Method::Spectral(Affinity::NearestNeighbors {
            n_neighbors: bytes[3] as usize,
        }),
        6 => Method::Gmm,
        7 => Method::Dbscan {
            eps: None,
            min_samples: bytes[3] as usize,
        },
        _ => Method::Dbscan {
            eps: Some(f32::from(bytes[3]) / 16.0),
            min_samples: 3,
        },
    };
    let k = bytes[1] as usize % 40;
    let d = 1 + bytes[2] as usize % 12;
    let raw = &bytes[4..];
    let x: Vec<f32> = if raw.len() < 4 {
        vec![0.0; N * d]
    } else {
        let vals: Vec<f32> = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        (0..N * d).map(|i| vals[i % vals.len()]).collect()
    };
    Some((x, d, ClusterSpec { method, k, seed: 7 }))
}
