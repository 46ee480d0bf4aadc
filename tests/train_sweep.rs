//! A whole sweep through the binary on real FER+ faces: two `--shard`s merged with `train merge`
//! give the unsharded run's table, and a sweep killed in the middle of a cell, run again with the
//! same command, ends with the uninterrupted table.

#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Three cells (one clustered at two k, and the patch-to-patch control), small enough for seconds.
const SWEEP: &str =
    "embedder = \"pixels\"\nmethods = [\"kmeans\"]\nks = [2, 4]\n\n[[extra]]\nmethod = \"none\"\nk = 36\n";
/// A small ViT and a few epochs, so the sweep is quick but each cell really trains.
const CONFIG: &str = "[data]\nper_class = 30\n[model]\nd_model = 32\nheads = 2\ndepth = 2\n[train]\nepochs = 4\nbatch_size = 16\n";
/// The run name `train` derives: `<data folder>-<embedder>`.
const RUN: &str = "faces-pixels";

/// A working folder with the sweep, the config and an ImageFolder of 30 real FER+ faces per class
/// (`None`: FER+ skipped on request, see [`common::ferplus`]).
fn workdir() -> Option<tempfile::TempDir> {
    let fer = common::ferplus()?;
    let dir = tempfile::tempdir().unwrap();
    common::copy_ferplus_split(&fer, "train", &dir.path().join("faces"), 30);
    std::fs::write(dir.path().join("sweep.toml"), SWEEP).unwrap();
    std::fs::write(dir.path().join("cfg.toml"), CONFIG).unwrap();
    Some(dir)
}

fn paca_fer(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_paca-fer"));
    c.current_dir(dir)
        .args(["--json", "--config", "cfg.toml"])
        .args(args);
    c
}

fn sweep(dir: &Path, extra: &[&str]) -> Command {
    let mut args = vec!["train", "--data", "faces", "--sweep", "sweep.toml", "--resume"];
    args.extend_from_slice(extra);
    paca_fer(dir, &args)
}

fn succeed(mut c: Command) {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The cells of a results file without what depends on timing or on where the run wrote.
fn table(results: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(results).unwrap_or_else(|e| panic!("{}: {e}", results.display()));
    let v: Value = serde_json::from_str(&text).unwrap();
    v["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let mut c = c.clone();
            let o = c.as_object_mut().unwrap();
            for timing in [
                "cluster_seconds",
                "cluster_us_per_image",
                "model_ms_per_image",
                "train_images_per_s",
                "train_seconds",
                "model_dir",
            ] {
                assert!(
                    o.remove(timing).is_some(),
                    "{timing} missing from {}",
                    results.display()
                );
            }
            c
        })
        .collect()
}

fn names(cells: &[Value]) -> Vec<String> {
    cells
        .iter()
        .map(|c| format!("{}-k{}", c["method"].as_str().unwrap(), c["k"]))
        .collect()
}

#[test]
fn two_shards_merged_equal_the_unsharded_sweep() {
    let Some(dir) = workdir() else { return };
    let d = dir.path();
    succeed(sweep(d, &["--out", "whole"]));
    succeed(sweep(d, &["--out", "split", "--shard", "0/2"]));
    succeed(sweep(d, &["--out", "split", "--shard", "1/2"]));
    let shard0: PathBuf = ["split", RUN, "shard-0-of-2", "results.json"].iter().collect();
    assert_eq!(names(&table(&d.join(&shard0))), ["kmeans-k2", "none-k36"]);
    succeed(paca_fer(
        d,
        &[
            "train",
            "merge",
            "split/faces-pixels/shard-1-of-2",
            "split/faces-pixels/shard-0-of-2",
            "--out",
            "merged",
        ],
    ));
    let whole = table(&d.join("whole").join(RUN).join("results.json"));
    assert_eq!(names(&whole), ["kmeans-k2", "kmeans-k4", "none-k36"]);
    assert_eq!(table(&d.join("merged/results.json")), whole);
    for f in [
        "results.md",
        "results.csv",
        "accuracy_heatmap.png",
        "accuracy_vs_runtime.png",
    ] {
        assert!(d.join("merged").join(f).is_file(), "merge wrote no {f}");
    }

    // A shard that is missing, or one from another sweep, is refused by name.
    let out = paca_fer(
        d,
        &["train", "merge", "split/faces-pixels/shard-0-of-2", "--out", "m2"],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("kmeans-k4"), "{err}");
}

#[test]
fn a_sweep_killed_mid_cell_and_run_again_ends_with_the_uninterrupted_table() {
    let Some(dir) = workdir() else { return };
    let d = dir.path();
    succeed(sweep(d, &["--out", "whole", "--models-dir", "m-whole"]));

    // Kill once the first cell is in the table and the second has committed an epoch checkpoint.
    let mut child = sweep(d, &["--out", "cut", "--models-dir", "m-cut"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let results = d.join("cut").join(RUN).join("results.json");
    // Checkpoints are kept per results folder: train/runs/train/<out>/<run>/<cell>.
    let second = d
        .join("train/runs/train/cut")
        .join(RUN)
        .join("kmeans-k4/latest.json");
    let t = Instant::now();
    loop {
        if results.is_file() && second.is_file() {
            child.kill().unwrap(); // SIGKILL
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sweep ended before it could be killed"
        );
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "no second-cell checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait().unwrap();
    assert_eq!(
        names(&table(&results)),
        ["kmeans-k2"],
        "killed after the first cell"
    );

    succeed(sweep(d, &["--out", "cut", "--models-dir", "m-cut"]));
    assert_eq!(
        table(&results),
        table(&d.join("whole").join(RUN).join("results.json"))
    );
}

#[test]
fn a_zoo_built_from_a_sweep_is_chosen_from_and_its_model_classifies() {
    let Some(dir) = workdir() else { return };
    let d = dir.path();
    succeed(sweep(d, &["--out", "sw", "--models-dir", "sw-models"]));
    let results = format!("sw/{RUN}/results.json");
    succeed(paca_fer(
        d,
        &["zoo", "build", &results, "--out", "zoo", "--runs", "3"],
    ));
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("zoo/index.json")).unwrap()).unwrap();
    let entries = index["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{index}");
    for e in entries {
        assert!(e["stage_ms"]["model"].as_f64().unwrap() > 0.0, "{e}");
        assert!(
            d.join("zoo")
                .join(e["name"].as_str().unwrap())
                .join("model.mpk")
                .is_file()
        );
    }

    // The same cells with a fine-tuned folder added (checked at the end).
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default");
    let shipped = shipped.to_str().unwrap();
    succeed(paca_fer(
        d,
        &[
            "zoo", "build", &results, "--add", shipped, "--out", "zoo2", "--runs", "3",
        ],
    ));

    // A sweep cell's folder (no trunk of its own) is refused, naming the flag.
    let cell = d.join("zoo/kmeans-k2");
    let out = paca_fer(
        d,
        &[
            "zoo",
            "build",
            &results,
            "--add",
            cell.to_str().unwrap(),
            "--out",
            "zoo3",
        ],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--add") && err.contains("embedder.mpk"), "{err}");

    // The sweep's own model folders may go: the zoo stands on its own.
    std::fs::remove_dir_all(d.join("sw-models")).unwrap();
    let out = paca_fer(d, &["select", "--zoo", "zoo"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    let chosen = s["chosen"]["model_dir"].as_str().unwrap().to_string();
    assert!(chosen.starts_with("zoo/"), "{s}");
    assert!(
        s["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["measured"] == true),
        "{s}"
    );
    // The choice is the most accurate model within the budget, or a cheaper one within a standard error.
    let best = entries
        .iter()
        .map(|e| e["accuracy"].as_f64().unwrap())
        .fold(0.0, f64::max);
    let margin = s["tie_margin"].as_f64().unwrap();
    assert!(
        s["chosen"]["accuracy"].as_f64().unwrap() >= best - margin - 1e-12,
        "{s}"
    );

    let face = std::fs::read_dir(d.join("faces/happy"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let out = paca_fer(d, &["predict", "--model", &chosen])
        .arg(&face)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let p: Value = serde_json::from_slice(&out.stdout).unwrap();
    let probs = p["predictions"][0]["probs"].as_object().unwrap();
    let total: f64 = probs.values().map(|v| v.as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-4 && probs.len() == 8, "{p}");

    // A fine-tuned folder with its own trunk joins the sweep's cells with `--add`: copied with
    // that trunk, scored from its meta.json, timed, chosen when it is the most accurate, and it
    // classifies exactly as the folder it came from.
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("zoo2/index.json")).unwrap()).unwrap();
    let added = &index["entries"].as_array().unwrap()[3];
    assert_eq!(added["name"], "default", "{index}");
    assert!(added["epochs"].is_null(), "{added}");
    assert!(added["stage_ms"]["embed"].as_f64().unwrap() > 0.0, "{added}");
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(shipped).join("meta.json")).unwrap())
            .unwrap();
    assert_eq!(added["accuracy"], meta["metrics"]["accuracy"]);
    assert_eq!(
        std::fs::read(d.join("zoo2/default/embedder.mpk")).unwrap(),
        std::fs::read(Path::new(shipped).join("embedder.mpk")).unwrap()
    );
    let out = paca_fer(d, &["select", "--zoo", "zoo2", "--budget-ms", "1000"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["chosen"]["model_dir"], "zoo2/default", "{s}");
    let probs_of = |model: &str| -> Value {
        let out = paca_fer(d, &["predict", "--model", model])
            .arg(&face)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["predictions"][0]["probs"].clone()
    };
    assert_eq!(probs_of("zoo2/default"), probs_of(shipped));
}
