//! Decoding image files into faces; corrupt files are skipped and counted, never fatal.

use std::path::{Path, PathBuf};

use std::io::Cursor;

use image::{DynamicImage, ImageReader, Limits, RgbImage};
use rayon::prelude::*;
use serde::Serialize;

use super::{DataError, Sample};
use crate::labels::Emotion;
use crate::patch::to_face;

/// Decodes one image file into a `size`×`size` RGB face.
pub fn load_face(path: &Path, size: u32) -> Result<RgbImage, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_face(&bytes, path, size)
}

/// Largest image side any decoder here accepts (a 4K frame fits).
pub const MAX_IMAGE_SIDE: u32 = 4096;

/// Decoding limits for every image the program reads: at most [`MAX_IMAGE_SIDE`] per side and
/// 256 MiB of decoder memory, so a few hundred bytes declaring a 16688×10800 JPEG are refused
/// from the header instead of decoded for seconds (found by the `image_preprocess` fuzzer).
pub fn decode_limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(256 << 20);
    limits
}

/// Decodes image bytes (format from the content) within [`decode_limits`].
pub fn decode_image(bytes: &[u8]) -> image::ImageResult<DynamicImage> {
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format()?;
    reader.limits(decode_limits());
    reader.decode()
}

/// Decodes an image file's bytes into a `size`×`size` RGB face; `path` is named in errors.
pub fn decode_face(bytes: &[u8], path: &Path, size: u32) -> Result<RgbImage, DataError> {
    let img = decode_image(bytes).map_err(|e| DataError::Decode {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if img.width() == 0 || img.height() == 0 {
        return Err(DataError::Decode {
            path: path.to_path_buf(),
            message: format!("empty image ({}×{})", img.width(), img.height()),
        });
    }
    Ok(to_face(&img, size))
}

/// What a bulk load skipped.
#[derive(Debug, Default, Clone, Serialize)]
pub struct LoadReport {
    /// Files that could not be read or decoded, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Decodes `samples` in parallel; unreadable images are logged, skipped and listed in the report.
pub fn load_faces(samples: &[Sample], size: u32) -> (Vec<(RgbImage, Emotion)>, LoadReport) {
    let results: Vec<_> = samples
        .par_iter()
        .map(|s| (s, load_face(&s.path, size)))
        .collect();
    let mut faces = Vec::with_capacity(results.len());
    let mut report = LoadReport::default();
    for (s, r) in results {
        match r {
            Ok(img) => faces.push((img, s.label)),
            Err(e) => {
                log::warn!("skipping {}: {e}", s.path.display());
                report.skipped.push((s.path.clone(), e.to_string()));
            }
        }
    }
    (faces, report)
}
