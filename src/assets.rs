//! Finding the files the project ships (`models/…`) whether the binary runs from the repository
//! root, from elsewhere, or was installed with `cargo install --path .`.

use std::path::{Path, PathBuf};

/// `rel` when it exists as given (relative to the working directory, or absolute); else the same
/// path inside the source tree the binary was built from, when that exists; else `rel` unchanged,
/// so an error names the path the user expects.
pub fn locate(rel: &Path) -> PathBuf {
    if rel.is_absolute() || rel.exists() {
        return rel.to_path_buf();
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    if built.exists() { built } else { rel.to_path_buf() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_files_are_found_from_any_working_directory() {
        let face = locate(Path::new("models/face/centerface.onnx"));
        assert!(face.is_file(), "{}", face.display());
        let missing = Path::new("models/no-such-file");
        assert_eq!(locate(missing), missing);
        let abs = Path::new("/definitely/not/here");
        assert_eq!(locate(abs), abs);
    }
}
