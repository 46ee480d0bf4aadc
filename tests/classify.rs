//! The shipped default model through [`Classifier`] on real FER+ faces: mirror-image test-time
//! augmentation averages the two views' probabilities.

mod common;

use paca_fer::backend::Cpu;
use paca_fer::classify::{Classifier, DEFAULT_MODEL};
use paca_fer::data::{Dataset, Layout, load_face};

#[test]
fn flip_tta_averages_each_face_with_its_mirror_image() {
    let Some(root) = common::ferplus() else { return };
    let ds = Dataset::open(&root, Layout::FerPlus).unwrap();
    // Eight faces spread over the (class-sorted) validation split.
    let faces: Vec<_> = ds
        .split("valid")
        .unwrap()
        .chunks(400)
        .map(|c| load_face(&c[0].path, 96).unwrap())
        .collect();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_MODEL);
    let mut clf = Classifier::<Cpu>::load(&dir, &Default::default()).unwrap();
    clf.set_flip_tta(false);
    let plain = clf.classify(&faces).unwrap();
    let mirrors: Vec<_> = faces.iter().map(image::imageops::flip_horizontal).collect();
    let mirrored = clf.classify(&mirrors).unwrap();
    clf.set_flip_tta(true);
    let tta = clf.classify(&faces).unwrap();
    assert_eq!(tta.len(), faces.len());
    let mut differs = false;
    for ((t, p), m) in tta.iter().zip(&plain).zip(&mirrored) {
        for c in 0..8 {
            let want = 0.5 * (p.probs[c] + m.probs[c]);
            assert!((t.probs[c] - want).abs() < 1e-5, "{} vs {want}", t.probs[c]);
        }
        assert_eq!(t.label.index(), paca_fer::labels::argmax(&t.probs));
        differs |= (t.probs[0] - p.probs[0]).abs() > 1e-4;
    }
    assert!(
        differs,
        "mirror images changed no probability: the TTA path was not taken"
    );
}
