//! Interrupted training, for real: `paca-fer train` is killed with SIGKILL in the middle of an
//! epoch, `--resume` finishes the run, and the final metrics equal an uninterrupted run's.

#![cfg(unix)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A balanced ImageFolder of real FER+ faces: `per_class` training faces of each of the 8 classes
/// (false: skipped, see [`common::ferplus`]).
fn make_folder(root: &Path, per_class: usize) -> bool {
    let Some(fer) = common::ferplus() else {
        return false;
    };
    common::copy_ferplus_split(&fer, "train", root, per_class);
    true
}

fn train(dir: &Path, data: &Path, resume: bool) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_paca-fer"));
    c.current_dir(dir)
        .args([
            "--json",
            "--config",
            "cfg.toml",
            "train",
            "--embedder",
            "pixels",
            "--method",
            "kmeans",
        ])
        .args(["--k", "2", "--out", "results", "--models-dir", "models", "--data"])
        .arg(data);
    if resume {
        c.arg("--resume");
    }
    c
}

fn cell_metrics(stdout: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(stdout).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {}", String::from_utf8_lossy(stdout));
    });
    let cell = &v["cells"][0];
    assert!(cell.is_object(), "{v}");
    cell.clone()
}

#[test]
fn sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run() {
    let data_dir = tempfile::tempdir().unwrap();
    if !make_folder(data_dir.path(), 40) {
        return;
    }
    let cfg = "[data]\nper_class = 40\n[model]\nd_model = 32\nheads = 2\ndepth = 2\n[train]\nepochs = 6\nbatch_size = 16\n";
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for d in [a.path(), b.path()] {
        std::fs::write(d.join("cfg.toml"), cfg).unwrap();
    }

    let full = train(a.path(), data_dir.path(), false).output().unwrap();
    assert!(full.status.success(), "{}", String::from_utf8_lossy(&full.stderr));
    let full = cell_metrics(&full.stdout);

    // Kill as soon as the second epoch's checkpoint is committed: the third epoch is then running.
    let mut child = train(b.path(), data_dir.path(), false)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let runs = b.path().join("train/runs");
    let t = Instant::now();
    let killed_mid_run = loop {
        let committed = walk(&runs)
            .iter()
            .filter(|p| p.ends_with("latest.json"))
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter_map(|s| serde_json::from_str::<Value>(&s).ok())
            .any(|v| v["epochs_done"].as_u64() >= Some(2));
        if committed {
            child.kill().unwrap(); // SIGKILL
            break true;
        }
        if let Some(status) = child.try_wait().unwrap() {
            eprintln!("training finished ({status}) before it could be killed");
            break false;
        }
        assert!(t.elapsed() < Duration::from_secs(120), "no checkpoint appeared");
        std::thread::sleep(Duration::from_millis(5));
    };
    child.wait().unwrap();
    assert!(killed_mid_run);
    let latest = walk(&runs)
        .into_iter()
        .find(|p| p.ends_with("latest.json"))
        .expect("latest.json");
    let state: Value = serde_json::from_str(&std::fs::read_to_string(&latest).unwrap()).unwrap();
    let done = state["epochs_done"].as_u64().unwrap();
    assert!((2..6).contains(&done), "killed after {done} epochs");

    let resumed = train(b.path(), data_dir.path(), true).output().unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let resumed = cell_metrics(&resumed.stdout);
    assert_eq!(
        resumed["accuracy"], full["accuracy"],
        "resumed {resumed}\nfull {full}"
    );
    assert_eq!(resumed["confusion"], full["confusion"]);
    assert_eq!(resumed["epochs"], 6);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}
