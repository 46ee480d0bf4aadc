//! Test-only access to the shared data folder beside the repository (`../shared`: FER+ in
//! `data/ferplus`, third-party weights in `weights/`). One implementation for both test targets:
//! the library's unit tests compile it as `crate::shared_data`, and the integration tests include
//! this same file from `tests/common/mod.rs`.
//!
//! CI always has the folder, so a test that needs it **fails** when it is missing or has moved,
//! with a message naming the path it expected. Set `PACA_FER_SHARED=/path` to point the tests
//! at the folder elsewhere, or `PACA_FER_SKIP_SHARED=1` to skip those tests explicitly (each one
//! then prints that it skipped and why).
#![allow(dead_code)]

use std::path::PathBuf;

/// Environment variable naming the shared folder (default: `../shared` beside the repository).
pub const SHARED_VAR: &str = "PACA_FER_SHARED";
/// Environment variable that, set to `1`, skips the tests whose shared data is missing.
pub const SKIP_VAR: &str = "PACA_FER_SKIP_SHARED";

/// The shared folder: `$PACA_FER_SHARED`, else `../shared` beside the repository.
pub fn shared_root() -> PathBuf {
    match std::env::var_os(SHARED_VAR) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"),
    }
}

/// `rel` inside the shared folder, which must exist. When it does not, panics naming the path
/// expected — or, with `PACA_FER_SKIP_SHARED=1`, prints that the test is skipped and returns
/// `None` (the caller then returns).
pub fn shared(rel: &str) -> Option<PathBuf> {
    let p = shared_root().join(rel);
    if p.exists() {
        return Some(p);
    }
    if std::env::var_os(SKIP_VAR).is_some_and(|v| v == "1") {
        let test = std::thread::current().name().unwrap_or("test").to_string();
        eprintln!(
            "SKIPPED {test}: {} not found, and {SKIP_VAR}=1 skips what needs it",
            p.display()
        );
        return None;
    }
    panic!(
        "shared test data not found: expected {} (the shared folder is `../shared` beside the \
         repository, or ${SHARED_VAR}); set {SKIP_VAR}=1 to skip the tests that need it",
        p.display()
    );
}

/// The FER+ dataset (`<shared>/data/ferplus`, with `train`, `valid` and `votes`), as
/// [`shared`] finds it.
pub fn ferplus() -> Option<PathBuf> {
    let root = shared("data/ferplus")?;
    for sub in ["train", "valid", "votes"] {
        let p = root.join(sub);
        assert!(p.is_dir(), "FER+ is incomplete: {} is not a folder", p.display());
    }
    Some(root)
}
