//! Arbitrary bytes as a `.npy` embeddings file (`bench cluster --embeddings`, the feature cache):
//! a C-order `<f4` array or an error, never a panic or an allocation the file cannot back.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use paca_fer::npy::parse_f32;

fuzz_target!(|bytes: &[u8]| {
    if let Ok((shape, data)) = parse_f32(bytes, Path::new("fuzz.npy")) {
        let count: usize = shape.iter().product();
        assert_eq!(count, data.len());
        assert!(data.len() * 4 <= bytes.len());
    }
});
