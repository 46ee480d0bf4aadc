//! Replays the fuzzers' seed corpora (`fuzz/seeds/<target>/`) and every crash input they ever
//! found (`fuzz/regressions/<target>/`) through the same entry points and checks as the cargo-fuzz
//! targets in `fuzz/fuzz_targets/`, so a fixed crash stays fixed without nightly Rust.

mod common;

use std::path::{Path, PathBuf};

#[path = "../fuzz/fuzz_targets/cases.rs"]
mod cases;

use cases::{N, cluster_case};
use paca_fer::cluster::cluster;
use paca_fer::config::Config;
use paca_fer::data::decode_face;
use paca_fer::npy::parse_f32;
use paca_fer::patch::{face_to_chw, patchify, unpatchify};
use paca_fer::train::sweep::Sweep;

/// Seed and regression inputs of one fuzz target (at least the seeds must exist).
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = common::repo_root().join("fuzz");
    let mut out = vec![];
    for kind in ["seeds", "regressions"] {
        let Ok(dir) = std::fs::read_dir(root.join(kind).join(target)) else {
            continue;
        };
        for e in dir.flatten() {
            out.push((e.path(), std::fs::read(e.path()).unwrap()));
        }
    }
    assert!(!out.is_empty(), "no inputs for {target}");
    out
}

#[test]
fn image_inputs_decode_to_faces_or_fail_cleanly() {
    let mut decoded = 0;
    for (path, bytes) in inputs("image_preprocess") {
        match decode_face(&bytes, &path, 96) {
            Ok(face) => {
                decoded += 1;
                assert_eq!(face.dimensions(), (96, 96));
                let patches = patchify(&face, 16).unwrap();
                assert_eq!(patches.len(), 36);
                assert_eq!(unpatchify(&patches, 16).unwrap(), face);
                let mut chw = Vec::new();
                face_to_chw(&face, &mut chw);
                assert!(chw.iter().all(|v| (0.0..=1.0).contains(v)));
            }
            Err(e) => assert!(e.to_string().contains(&*path.to_string_lossy()), "{e}"),
        }
    }
    // The seeds are real images (FER+ PNG, JPEG, BMP, GIF): all of them decode.
    assert!(decoded >= 4, "{decoded} decoded");
}

#[test]
fn a_tiny_file_declaring_a_huge_image_is_refused_from_its_header() {
    // Found by the fuzzer: 484 bytes of JPEG declaring 16688×10800 decoded for over 10 s.
    let path = common::repo_root().join("fuzz/regressions/image_preprocess/timeout-jpeg-16688x10800.jpg");
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() < 1000);
    let err = decode_face(&bytes, &path, 96).unwrap_err().to_string();
    assert!(err.contains("timeout-jpeg-16688x10800.jpg"), "{err}");
    assert!(paca_fer::data::decode_image(&bytes).is_err());
}

#[test]
fn config_inputs_parse_or_name_the_file() {
    for (path, bytes) in inputs("config_toml") {
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        match Config::from_toml_str(text, &path) {
            Ok(c) => {
                let _ = c.validate(&path);
            }
            Err(e) => assert!(e.to_string().contains(&*path.to_string_lossy()), "{e}"),
        }
        if let Ok(s) = Sweep::from_toml_str(text, &path) {
            assert!(s.cells().iter().all(|c| (1..=36).contains(&c.k)));
        }
    }
    // The shipped configuration files (copied into the seeds) parse.
    let root = common::repo_root();
    let shipped = root.join("config/default.toml");
    Config::from_toml_str(&std::fs::read_to_string(&shipped).unwrap(), &shipped).unwrap();
    let sweep = root.join("config/sweep.toml");
    assert!(
        !Sweep::from_toml_str(&std::fs::read_to_string(&sweep).unwrap(), &sweep)
            .unwrap()
            .cells()
            .is_empty()
    );
}

#[test]
fn npy_inputs_read_or_fail_cleanly() {
    let mut read = 0;
    for (path, bytes) in inputs("npy_read") {
        if let Ok((shape, data)) = parse_f32(&bytes, &path) {
            read += 1;
            assert_eq!(shape.iter().product::<usize>(), data.len());
        }
    }
    assert!(read >= 2, "the two seed arrays must read");
    // A header length of 4 GiB in a 20-byte file is an error, not a 4 GiB allocation.
    let mut forged = b"\x93NUMPY\x02\x00".to_vec();
    forged.extend_from_slice(&u32::MAX.to_le_bytes());
    forged.extend_from_slice(b"{'descr'");
    let err = parse_f32(&forged, Path::new("forged.npy"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("forged.npy") && err.contains("header"), "{err}");
}

#[test]
fn cluster_inputs_partition_or_fail_cleanly() {
    let mut partitions = 0;
    for (path, bytes) in inputs("cluster_patches") {
        let Some((x, d, spec)) = cluster_case(&bytes) else {
            continue;
        };
        if let Ok(c) = cluster(&x, N, d, &spec) {
            partitions += 1;
            assert_eq!(c.labels.len(), N, "{}", path.display());
            assert!(c.labels.iter().all(|&l| (l as usize) < c.k));
            assert_eq!(c.centroids.len(), c.k * d);
        }
    }
    // Every method's finite seed (k = 4, d = 3) is partitioned.
    assert!(partitions >= 9, "{partitions} partitions");
}
