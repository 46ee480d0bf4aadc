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

/// Every command that runs a model takes `--device`; CUDA or burn-flex in a build without its
/// feature is refused up front with an error naming the feature, and an unknown device is a usage
/// error.
#[test]
fn device_flag_on_every_model_command() {
    let dir = tempfile::tempdir().unwrap();
    let face = dir.path().join("face.png");
    image::GrayImage::from_pixel(48, 48, image::Luma([128]))
        .save(&face)
        .unwrap();
    let face = face.to_str().unwrap();
    let data = dir.path().to_str().unwrap();
    for (sub, rest) in [
        (&["run"][..], &["--headless", "--input", face][..]),
        (&["eval"], &["--data", data]),
        (&["predict"], &[face]),
        (&["select"], &[]),
        (&["bench", "pipeline"], &["--input", face]),
        (&["bench", "train"], &["--steps", "1"]),
    ] {
        let cmd = [sub, rest].concat();
        let help = bin().args(sub).arg("--help").output().unwrap();
        assert!(
            String::from_utf8_lossy(&help.stdout).contains("--device"),
            "{cmd:?} --help lacks --device"
        );
        let out = bin().args(&cmd).args(["--device", "tpu"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd:?} --device tpu");
        assert!(String::from_utf8_lossy(&out.stderr).contains("[possible values: cpu, cuda, flex]"));
        for (device, built) in [("cuda", cfg!(feature = "cuda")), ("flex", cfg!(feature = "flex"))] {
            if built {
                continue;
            }
            let out = bin().args(&cmd).args(["--device", device]).output().unwrap();
            assert!(!out.status.success(), "{cmd:?} --device {device}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains(&format!("`{device}` feature")),
                "{cmd:?} --device {device}: {err}"
            );
        }
    }
}

/// `finetune --depthwise` is a closed set: a wrong value is a usage error listing the choices.
#[test]
fn finetune_depthwise_is_a_closed_set() {
    let help = bin().args(["finetune", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("--depthwise"));
    let out = bin()
        .args([
            "finetune", "--data", "nowhere", "--init", "nowhere", "--out", "nowhere",
        ])
        .args(["--depthwise", "diagonal"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[possible values: auto, grouped, shifted]"), "{err}");
}

/// `--device cpu` runs the same generic path as the default: identical predictions on FER+ faces.
#[test]
fn predict_on_the_cpu_device_matches_the_default() {
    let Some(root) = common::ferplus() else { return };
    let faces: Vec<_> = ["happy", "surprise", "anger"]
        .iter()
        .map(|c| common::first_png(&root.join("valid").join(c)))
        .collect();
    let predict = |extra: &[&str]| {
        let out = bin()
            .args(["predict", "--json"])
            .args(extra)
            .args(&faces)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let (default, cpu) = (predict(&[]), predict(&["--device", "cpu"]));
    assert_eq!(default, cpu);
    let preds = cpu["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 3);
    for p in preds {
        let sum: f64 = p["probs"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_f64().unwrap())
            .sum();
        assert!((sum - 1.0).abs() < 1e-4, "{p}");
    }
}
