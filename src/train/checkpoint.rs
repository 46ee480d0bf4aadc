//! Crash-safe checkpoints: each epoch's model and optimiser go into a fresh folder, then a small
//! `latest.json` is atomically replaced (write-then-rename) to point at it. A kill at any moment leaves
//! either the previous checkpoint or the new one, never a half-written file that is later loaded.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Record, Recorder};
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

/// What `latest.json` records about the newest complete checkpoint (default: nothing trained yet).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CheckpointState {
    /// Epochs completed (the next epoch to run is this value).
    pub epochs_done: usize,
    /// Folder (relative to the checkpoint root) holding `model.mpk` and `optim.mpk`.
    pub folder: String,
    /// Loss curve so far: mean training loss per epoch.
    pub train_loss: Vec<f64>,
    /// Seconds of training so far (summed over runs when resumed).
    pub train_seconds: f64,
}

/// Loads record `<folder>/<name>.mpk` (a model or optimiser state), naming the file on error.
pub fn load_record<B: Backend, R: Record<B>>(folder: &Path, name: &str, device: &B::Device) -> Result<R> {
    NamedMpkFileRecorder::<FullPrecisionSettings>::new()
        .load(folder.join(name), device)
        .with_context(|| {
            format!(
                "loading checkpoint {}",
                folder.join(format!("{name}.mpk")).display()
            )
        })
}

/// Writes `bytes` to `path` with [`crate::files::write_atomic`] (synced, renamed into place),
/// naming the file on error.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::files::write_atomic(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Reads `latest.json` under `root`, if a complete checkpoint exists.
pub fn read_latest(root: &Path) -> Result<Option<CheckpointState>> {
    let p = root.join("latest.json");
    if !p.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    let state: CheckpointState = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a checkpoint state (expected epochs_done, folder, …)",
            p.display()
        )
    })?;
    Ok(Some(state))
}

/// Name of the checkpoint folder after `epochs_done` epochs.
fn epoch_name(epochs_done: usize) -> String {
    format!("epoch-{epochs_done:03}")
}

/// Folder for the checkpoint after `epochs_done` epochs.
pub fn epoch_folder(root: &Path, epochs_done: usize) -> PathBuf {
    root.join(epoch_name(epochs_done))
}

/// Records the folder of epoch `state.epochs_done` (already written) as the newest checkpoint.
pub fn commit_epoch(root: &Path, state: &mut CheckpointState) -> Result<()> {
    state.folder = epoch_name(state.epochs_done);
    commit(root, state)
}

/// Points `latest.json` at `state` and removes older epoch folders.
pub fn commit(root: &Path, state: &CheckpointState) -> Result<()> {
    write_atomic(
        &root.join("latest.json"),
        serde_json::to_string_pretty(state)?.as_bytes(),
    )?;
    for entry in std::fs::read_dir(root)?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("epoch-") && name != state.folder {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

/// File in a checkpoint root recording the options of the run it belongs to.
pub const OPTIONS_FILE: &str = "options.json";

/// Checkpoint root of the run writing `out`: `<base>/<out>` with `out` normalised lexically
/// (`.` dropped, `..` spelled `up`, an absolute path under `abs/`), so two runs whose outputs
/// differ anywhere in their paths (`a/ft`, `b/ft`) never share checkpoints.
pub fn run_root(base: &Path, out: &Path) -> PathBuf {
    let mut root = base.to_path_buf();
    for c in out.components() {
        match c {
            Component::Prefix(_) | Component::RootDir => root.push("abs"),
            Component::CurDir => {}
            Component::ParentDir => root.push("up"),
            Component::Normal(name) => root.push(name),
        }
    }
    root
}

/// Binds a checkpoint root to the options of its run. A fresh run (`resume` false, or nothing
/// checkpointed yet) records `options` (flag name → value) in [`OPTIONS_FILE`]; a resumed run
/// must pass the same options, and each flag that differs is named in the error.
pub fn bind_options(root: &Path, options: &BTreeMap<String, serde_json::Value>, resume: bool) -> Result<()> {
    let path = root.join(OPTIONS_FILE);
    let checkpointed = resume && read_latest(root)?.is_some();
    if checkpointed && path.is_file() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let saved: BTreeMap<String, serde_json::Value> = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a run's options", path.display()))?;
        let changed: Vec<String> = options
            .keys()
            .chain(saved.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .filter(|k| options.get(*k) != saved.get(*k))
            .map(|k| {
                let show = |v: Option<&serde_json::Value>| v.map_or("(unset)".to_string(), |v| v.to_string());
                format!(
                    "{k} was {} and is now {}",
                    show(saved.get(k)),
                    show(options.get(k))
                )
            })
            .collect();
        if !changed.is_empty() {
            bail!(
                "--resume: the checkpointed run in {} used other options: {}; rerun with the                  same options, or without --resume to start over",
                root.display(),
                changed.join("; ")
            );
        }
        return Ok(());
    }
    if checkpointed {
        log::warn!(
            "{}: no {OPTIONS_FILE} (an older checkpoint); resuming without checking options",
            root.display()
        );
    }
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    if !resume {
        // Starting over: an older run's checkpoint must not be resumed later under these options.
        let latest = root.join("latest.json");
        if latest.is_file() {
            std::fs::remove_file(&latest).with_context(|| format!("removing {}", latest.display()))?;
        }
    }
    write_atomic(&path, serde_json::to_string_pretty(options)?.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_points_at_the_newest_folder_and_prunes_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        for e in 1..=2 {
            let f = epoch_folder(dir.path(), e);
            std::fs::create_dir_all(&f).unwrap();
            let s = CheckpointState {
                epochs_done: e,
                folder: f.file_name().unwrap().to_string_lossy().into(),
                train_loss: vec![1.0; e],
                train_seconds: e as f64,
            };
            commit(dir.path(), &s).unwrap();
        }
        let s = read_latest(dir.path()).unwrap().unwrap();
        assert_eq!(s.epochs_done, 2);
        assert!(!epoch_folder(dir.path(), 1).exists());
        assert!(epoch_folder(dir.path(), 2).exists());
        assert!(!dir.path().join("latest.partial").exists());
    }

    #[test]
    fn run_roots_of_outputs_with_the_same_name_differ() {
        let base = Path::new("train/runs/finetune");
        let a = run_root(base, Path::new("a/ft"));
        let b = run_root(base, Path::new("b/ft"));
        assert_ne!(a, b);
        assert_eq!(a, base.join("a/ft"));
        assert_eq!(run_root(base, Path::new("./a/ft")), a);
        assert_eq!(run_root(base, Path::new("../ft")), base.join("up/ft"));
        assert_eq!(run_root(base, Path::new("/x/ft")), base.join("abs/x/ft"));
    }

    #[test]
    fn a_resume_with_changed_options_is_refused_by_flag_name() {
        let dir = tempfile::tempdir().unwrap();
        let opts = |lr: f64, epochs: usize| -> BTreeMap<String, serde_json::Value> {
            [
                ("--lr", serde_json::json!(lr)),
                ("--epochs", serde_json::json!(epochs)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
        };
        bind_options(dir.path(), &opts(1e-4, 3), false).unwrap();
        // Nothing checkpointed yet: a resume is a fresh start and rebinds.
        bind_options(dir.path(), &opts(2e-4, 3), true).unwrap();
        let f = epoch_folder(dir.path(), 1);
        std::fs::create_dir_all(&f).unwrap();
        commit_epoch(
            dir.path(),
            &mut CheckpointState {
                epochs_done: 1,
                ..Default::default()
            },
        )
        .unwrap();
        bind_options(dir.path(), &opts(2e-4, 3), true).unwrap();
        let e = bind_options(dir.path(), &opts(1e-4, 5), true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--lr was 0.0002 and is now 0.0001"), "{e}");
        assert!(e.contains("--epochs was 3 and is now 5"), "{e}");
        // Without --resume the run starts over, records its own options and forgets the old
        // checkpoint, so a later --resume cannot continue the old run under the new options.
        bind_options(dir.path(), &opts(1e-4, 5), false).unwrap();
        assert!(read_latest(dir.path()).unwrap().is_none());
        bind_options(dir.path(), &opts(1e-4, 5), true).unwrap();
    }

    #[test]
    fn corrupt_state_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("latest.json"), "{\"epochs").unwrap();
        let e = read_latest(dir.path()).unwrap_err().to_string();
        assert!(e.contains("latest.json"), "{e}");
    }
}
