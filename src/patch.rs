//! Face normalisation and patching: every image becomes a `size`×`size` RGB face split into square
//! patches in row-major order. Training and the live runtime both go through these functions.

use image::{DynamicImage, RgbImage, imageops::FilterType};

/// Side of the face image the model sees (the study's 96×96).
pub const FACE_SIZE: u32 = 96;
/// Side of one patch (the study's 16×16).
pub const PATCH_SIZE: u32 = 16;
/// Patches per face: (96 / 16)² = 36.
pub const NUM_PATCHES: usize = ((FACE_SIZE / PATCH_SIZE) * (FACE_SIZE / PATCH_SIZE)) as usize;
/// Values per patch: 16 × 16 × 3 channels.
pub const PATCH_DIM: usize = (PATCH_SIZE * PATCH_SIZE * 3) as usize;

/// Geometry error: the image cannot be cut into whole patches.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatchError {
    /// The image side is not a whole multiple of the patch side.
    #[error(
        "image of {width}×{height} cannot be split into {patch}×{patch} patches (expected a square image whose side is a multiple of {patch})"
    )]
    Geometry {
        /// Image width in pixels.
        width: u32,
        /// Image height in pixels.
        height: u32,
        /// Patch side in pixels.
        patch: u32,
    },
    /// A patch buffer does not hold the number of values the geometry needs.
    #[error("patch buffer holds {found} values, expected {expected}")]
    Length {
        /// Values found.
        found: usize,
        /// Values expected.
        expected: usize,
    },
}

/// Converts any decoded image to an RGB face of `size`×`size` (gray is replicated to 3 channels);
/// resamples with a triangle filter only when the size differs.
pub fn to_face(img: &DynamicImage, size: u32) -> RgbImage {
    let rgb = img.to_rgb8();
    if rgb.width() == size && rgb.height() == size {
        rgb
    } else {
        image::imageops::resize(&rgb, size, size, FilterType::Triangle)
    }
}

/// Splits a square RGB image into `patch`×`patch` patches, row-major over the patch grid; each patch is
/// `patch*patch*3` bytes in row-major pixel order with interleaved RGB (HWC).
pub fn patchify(img: &RgbImage, patch: u32) -> Result<Vec<Vec<u8>>, PatchError> {
    let (w, h) = img.dimensions();
    if patch == 0 || w != h || w % patch != 0 || w == 0 {
        return Err(PatchError::Geometry {
            width: w,
            height: h,
            patch,
        });
    }
    let grid = w / patch;
    let raw = img.as_raw();
    let row_bytes = (w * 3) as usize;
    let prow = (patch * 3) as usize;
    let mut out = Vec::with_capacity((grid * grid) as usize);
    for gy in 0..grid {
        for gx in 0..grid {
            let mut p = Vec::with_capacity(prow * patch as usize);
            for y in 0..patch {
                let start = ((gy * patch + y) as usize) * row_bytes + (gx * patch) as usize * 3;
                p.extend_from_slice(&raw[start..start + prow]);
            }
            out.push(p);
        }
    }
    Ok(out)
}

/// Re-assembles patches made by [`patchify`] into the square image they came from.
pub fn unpatchify(patches: &[Vec<u8>], patch: u32) -> Result<RgbImage, PatchError> {
    let n = patches.len();
    let grid = (n as f64).sqrt().round() as u32;
    if patch == 0 || (grid * grid) as usize != n || n == 0 {
        return Err(PatchError::Length {
            found: n,
            expected: (grid * grid) as usize,
        });
    }
    let plen = (patch * patch * 3) as usize;
    if let Some(bad) = patches.iter().find(|p| p.len() != plen) {
        return Err(PatchError::Length {
            found: bad.len(),
            expected: plen,
        });
    }
    let side = grid * patch;
    let mut img = RgbImage::new(side, side);
    let row_bytes = (side * 3) as usize;
    let prow = (patch * 3) as usize;
    let buf: &mut [u8] = &mut img;
    for (i, p) in patches.iter().enumerate() {
        let (gy, gx) = (i as u32 / grid, i as u32 % grid);
        for y in 0..patch {
            let dst = ((gy * patch + y) as usize) * row_bytes + (gx * patch) as usize * 3;
            buf[dst..dst + prow].copy_from_slice(&p[y as usize * prow..(y as usize + 1) * prow]);
        }
    }
    Ok(img)
}

/// Writes a face as a planar CHW f32 tensor scaled to [0, 1], the layout every embedder consumes.
pub fn face_to_chw(img: &RgbImage, out: &mut Vec<f32>) {
    let (w, h) = img.dimensions();
    let plane = (w * h) as usize;
    let base = out.len();
    out.resize(base + 3 * plane, 0.0);
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            out[base + c * plane + i] = px[c] as f32 / 255.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(side: u32) -> RgbImage {
        RgbImage::from_fn(side, side, |x, y| {
            image::Rgb([x as u8, y as u8, (x * 7 + y * 3) as u8])
        })
    }

    #[test]
    fn patch_order_is_row_major() {
        let img = gradient(96);
        let p = patchify(&img, 16).unwrap();
        assert_eq!(p.len(), NUM_PATCHES);
        assert!(p.iter().all(|q| q.len() == PATCH_DIM));
        // Patch 7 is grid row 1, column 1: its first pixel is (16, 16).
        assert_eq!(&p[7][..3], &[16, 16, (16 * 7 + 16 * 3) as u8]);
        // Patch 5 is row 0, column 5: first pixel (80, 0).
        assert_eq!(&p[5][..2], &[80, 0]);
    }

    #[test]
    fn bad_geometry_is_an_error() {
        let img = RgbImage::new(90, 96);
        assert!(matches!(patchify(&img, 16), Err(PatchError::Geometry { .. })));
        assert!(patchify(&RgbImage::new(96, 96), 0).is_err());
        assert!(unpatchify(&[vec![0u8; 10]], 16).is_err());
    }

    #[test]
    fn chw_layout_is_planar() {
        let img = gradient(96);
        let mut v = Vec::new();
        face_to_chw(&img, &mut v);
        assert_eq!(v.len(), 3 * 96 * 96);
        // pixel (x=5, y=2): R=5, G=2
        let i = 2 * 96 + 5;
        assert!((v[i] - 5.0 / 255.0).abs() < 1e-7);
        assert!((v[96 * 96 + i] - 2.0 / 255.0).abs() < 1e-7);
    }
}
