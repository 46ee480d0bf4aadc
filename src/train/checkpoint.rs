//! Crash-safe checkpoints: each epoch's model and optimiser go into a fresh folder, then a small
//! `latest.json` is atomically replaced (write-then-rename) to point at it. A kill at any moment leaves
//! either the previous checkpoint or the new one, never a half-written file that is later loaded.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
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

/// Writes `bytes` to `path` via a temporary file in the same folder and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
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
    fn corrupt_state_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("latest.json"), "{\"epochs").unwrap();
        let e = read_latest(dir.path()).unwrap_err().to_string();
        assert!(e.contains("latest.json"), "{e}");
    }
}
