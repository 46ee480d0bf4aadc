//! The `paca-fer` binary end to end: help, JSON output, and exit codes on bad input.

mod common;

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_paca-fer"))
}

#[test]
fn every_subcommand_has_help() {
    for sub in [
        vec!["--help"],
        vec!["data", "stats", "--help"],
        vec!["train", "--help"],
        vec!["eval", "--help"],
        vec!["predict", "--help"],
        vec!["select", "--help"],
        vec!["run", "--help"],
        vec!["bench", "cluster", "--help"],
        vec!["bench", "train", "--help"],
        vec!["bench", "pipeline", "--help"],
    ] {
        let out = bin().args(&sub).output().unwrap();
        assert!(out.status.success(), "{sub:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage"), "{sub:?}: {text}");
    }
    let train = String::from_utf8(bin().args(["train", "--help"]).output().unwrap().stdout).unwrap();
    for flag in [
        "--data", "--method", "--k", "--sweep", "--resume", "--quick", "--epochs",
    ] {
        assert!(train.contains(flag), "train --help lacks {flag}");
    }
}

#[test]
fn data_stats_json_on_ferplus() {
    let Some(root) = common::ferplus() else { return };
    let out = bin()
        .args(["data", "stats", "--data"])
        .arg(&root)
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("exactly one JSON object on stdout");
    assert_eq!(v["totals"]["train"], 25_045);
    assert_eq!(v["totals"]["valid"], 3_191);
    assert!(v["splits"]["valid"]["contempt"].as_u64().unwrap() > 0);
    assert_eq!(v["skipped"], 0);
}

#[test]
fn data_stats_counts_a_corrupt_image_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    common::make_image_folder(dir.path(), &[("sad", 2), ("surprise", 1)]);
    std::fs::write(dir.path().join("sad/broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let out = bin()
        .args(["data", "stats", "--json", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["skipped"], 1);
    assert_eq!(v["splits"]["all"]["sad"], 2);
    assert!(v["skipped_files"][0].as_str().unwrap().ends_with("broken.png"));
}

#[test]
fn bad_inputs_exit_non_zero_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    // Missing path.
    let out = bin()
        .args(["data", "stats", "--data"])
        .arg(dir.path().join("missing"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing"));
    // Empty directory.
    let out = bin()
        .args(["data", "stats", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no images"));
    // Unknown class folder.
    common::make_image_folder(dir.path(), &[("bored", 1)]);
    let out = bin()
        .args(["data", "stats", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bored"));
    // Unknown config key.
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[train]\nepoch = 3\n").unwrap();
    let out = bin()
        .args(["data", "stats", "--config"])
        .arg(&cfg)
        .arg("--data")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("epoch") && err.contains("bad.toml"), "{err}");
}
