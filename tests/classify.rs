//! The shipped default model through [`Classifier`] on real FER+ faces: mirror-image and zoomed-view
//! test-time augmentation average the views' probabilities.

mod common;

use paca_fer::backend::Cpu;
use paca_fer::classify::{Classifier, DEFAULT_MODEL};
use paca_fer::data::{Dataset, Layout, load_face};

/// Eight faces spread over the (class-sorted) FER+ validation split, and the shipped default model.
fn valid_faces_and_default_model() -> Option<(Vec<image::RgbImage>, Classifier<Cpu>)> {
    let root = common::ferplus()?;
    let ds = Dataset::open(&root, Layout::FerPlus).unwrap();
    let faces = ds
        .split("valid")
        .unwrap()
        .chunks(400)
        .map(|c| load_face(&c[0].path, 96).unwrap())
        .collect();
    let dir = common::repo_root().join(DEFAULT_MODEL);
    Some((faces, Classifier::<Cpu>::load(&dir, &Default::default()).unwrap()))
}

#[test]
fn flip_tta_averages_each_face_with_its_mirror_image() {
    let Some((faces, mut clf)) = valid_faces_and_default_model() else {
        return;
    };
    clf.set_zoom_tta(false);
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

#[test]
fn zoom_tta_averages_each_face_over_its_zoomed_and_mirrored_views() {
    use paca_fer::classify::zoom_view;
    let Some((faces, mut clf)) = valid_faces_and_default_model() else {
        return;
    };
    clf.set_flip_tta(false);
    clf.set_zoom_tta(false);
    let zoomed: Vec<_> = faces.iter().map(zoom_view).collect();
    let mirror = |v: &[image::RgbImage]| -> Vec<image::RgbImage> {
        v.iter().map(image::imageops::flip_horizontal).collect()
    };
    let views = [
        clf.classify(&faces).unwrap(),
        clf.classify(&zoomed).unwrap(),
        clf.classify(&mirror(&faces)).unwrap(),
        clf.classify(&mirror(&zoomed)).unwrap(),
    ];
    for (flip, n_views) in [(false, 2), (true, 4)] {
        clf.set_flip_tta(flip);
        clf.set_zoom_tta(true);
        let tta = clf.classify(&faces).unwrap();
        assert_eq!(tta.len(), faces.len());
        let mut differs = false;
        for (i, t) in tta.iter().enumerate() {
            for c in 0..8 {
                let want: f32 = views[..n_views].iter().map(|v| v[i].probs[c]).sum::<f32>() / n_views as f32;
                assert!((t.probs[c] - want).abs() < 1e-5, "{} vs {want}", t.probs[c]);
            }
            assert_eq!(t.label.index(), paca_fer::labels::argmax(&t.probs));
            differs |= (t.probs[0] - views[0][i].probs[0]).abs() > 1e-4;
        }
        assert!(differs, "the zoomed views changed no probability (flip {flip})");
    }
}

#[test]
fn zoom_view_keeps_the_central_88_of_96_pixels() {
    use paca_fer::classify::zoom_view;
    // A horizontal ramp (red = x) and a vertical one (green = y).
    let face = image::RgbImage::from_fn(96, 96, |x, y| image::Rgb([x as u8 * 2, y as u8 * 2, 0]));
    let z = zoom_view(&face);
    assert_eq!(z.dimensions(), (96, 96));
    // Output pixel x samples the crop (starting at 4, 88 wide) at (x + 0.5) * 88 / 96 - 0.5.
    for x in 8..88u32 {
        let want = 2.0 * (4.0 + (x as f32 + 0.5) * 88.0 / 96.0 - 0.5);
        let got = z.get_pixel(x, 40)[0] as f32;
        assert!((got - want).abs() <= 1.5, "x {x}: {got} vs {want}");
        let got = z.get_pixel(40, x)[1] as f32;
        assert!((got - want).abs() <= 1.5, "y {x}: {got} vs {want}");
    }
}

#[test]
fn faces_that_are_not_96_pixels_square_are_an_error_naming_the_face() {
    let Some((faces, clf)) = valid_faces_and_default_model() else {
        return;
    };
    let small = image::imageops::resize(&faces[0], 48, 48, image::imageops::FilterType::Triangle);
    let err = clf
        .classify(std::slice::from_ref(&small))
        .unwrap_err()
        .to_string();
    assert!(err.contains("face 0 is 48×48") && err.contains("96×96"), "{err}");
    let mixed = vec![
        faces[1].clone(),
        image::imageops::crop_imm(&faces[2], 0, 0, 96, 80).to_image(),
    ];
    let err = clf.classify(&mixed).unwrap_err().to_string();
    assert!(err.contains("face 1 is 96×80"), "{err}");
    // The same faces at the right size still classify.
    assert_eq!(clf.classify(&faces[..2]).unwrap().len(), 2);
}
