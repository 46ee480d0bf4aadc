//! Arbitrary bytes as an image file → the training/inference decode (`data::decode_face`, 96×96
//! RGB) → 36 patches of 16×16 → the CHW float layout the embedder takes. Must return an error
//! for anything undecodable, never panic or allocate without bound.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use paca_fer::data::decode_face;
use paca_fer::patch::{face_to_chw, patchify, unpatchify};

fuzz_target!(|bytes: &[u8]| {
    let Ok(face) = decode_face(bytes, Path::new("fuzz.img"), 96) else {
        return;
    };
    assert_eq!(face.dimensions(), (96, 96));
    let patches = patchify(&face, 16).expect("96 is a multiple of 16");
    assert_eq!(patches.len(), 36);
    assert_eq!(unpatchify(&patches, 16).expect("36 patches"), face);
    let mut chw = Vec::new();
    face_to_chw(&face, &mut chw);
    assert_eq!(chw.len(), 3 * 96 * 96);
    assert!(chw.iter().all(|v| (0.0..=1.0).contains(v)));
});
