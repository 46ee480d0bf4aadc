//! Patching on real FER+ faces: the 36 patches re-assemble to the 96×96 face, pixel for pixel.

mod common;

use paca_fer::data::{Dataset, Layout, load_face};
use paca_fer::patch::{NUM_PATCHES, PATCH_DIM, patchify, unpatchify};

#[test]
fn real_faces_round_trip_through_patches() {
    let Some(root) = common::ferplus() else { return };
    let ds = Dataset::open(&root, Layout::FerPlus).unwrap();
    let valid = ds.split("valid").unwrap();
    // Every 100th validation face: all classes are represented.
    for s in valid.iter().step_by(100) {
        let face = load_face(&s.path, 96).unwrap();
        assert_eq!(face.dimensions(), (96, 96));
        // Gray replicated into three equal channels.
        assert!(
            face.pixels().all(|p| p[0] == p[1] && p[1] == p[2]),
            "{}",
            s.path.display()
        );
        let patches = patchify(&face, 16).unwrap();
        assert_eq!(patches.len(), NUM_PATCHES);
        assert!(patches.iter().all(|p| p.len() == PATCH_DIM));
        // Patch (row 2, col 3) = index 15 starts at pixel (48, 32).
        assert_eq!(patches[15][..3], face.get_pixel(48, 32).0);
        let back = unpatchify(&patches, 16).unwrap();
        assert_eq!(back, face, "{}", s.path.display());
    }
}
