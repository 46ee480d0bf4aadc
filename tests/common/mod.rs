//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The repository root at run time: cargo sets `CARGO_MANIFEST_DIR` when it runs a test, and a
/// compile-time `env!` would point at whichever clone first built a shared target dir.
pub fn repo_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

#[path = "../../src/shared_data.rs"]
mod shared_data;
#[allow(unused_imports)] // each test file uses one or both
pub use shared_data::{ferplus, shared};

/// Copies the first `per_class` faces (by name) of each class of split `split` of the FER+ folder
/// `fer` into `<dst>/<class>/`.
pub fn copy_ferplus_split(fer: &Path, split: &str, dst: &Path, per_class: usize) {
    for class in std::fs::read_dir(fer.join(split)).unwrap().flatten() {
        let to = dst.join(class.file_name());
        std::fs::create_dir_all(&to).unwrap();
        let mut files: Vec<_> = std::fs::read_dir(class.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        for f in files.iter().take(per_class) {
            std::fs::copy(f, to.join(f.file_name().unwrap())).unwrap();
        }
    }
}

/// Writes a small PNG with a pattern derived from `seed`.
pub fn write_png(path: &Path, seed: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let img = image::GrayImage::from_fn(48, 48, |x, y| {
        image::Luma([((x * 5 + y * 3 + seed * 11) % 256) as u8])
    });
    img.save(path).unwrap();
}

/// Creates `<root>/<class>/img_<i>.png` for each (class, count).
pub fn make_image_folder(root: &Path, classes: &[(&str, usize)]) {
    for (class, n) in classes {
        for i in 0..*n {
            write_png(&root.join(class).join(format!("img_{i:04}.png")), i as u32);
        }
    }
}

/// The first `.png` (by name) in folder `dir`.
pub fn first_png(dir: &Path) -> PathBuf {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .collect();
    files.sort();
    files
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no .png in {}", dir.display()))
}
