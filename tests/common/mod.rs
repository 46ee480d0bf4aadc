//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The FER+ dataset beside the repository (`../shared/data/ferplus`), if present.
pub fn ferplus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/ferplus");
    if p.join("train").is_dir() {
        Some(p)
    } else {
        eprintln!("note: {} not found; FER+ test skipped", p.display());
        None
    }
}

/// Copies the first `per_class` faces (by name) of each class of FER+ split `split` into
/// `<dst>/<class>/`; false (with a note) when FER+ is absent.
pub fn copy_ferplus_split(split: &str, dst: &Path, per_class: usize) -> bool {
    let Some(fer) = ferplus() else {
        return false;
    };
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
    true
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
