//! Synthetic webcam-like frames for benchmarks and tests: one real face (e.g. a FER+ image)
//! placed at a known box on a softly lit, slightly noisy background.

use image::{Rgb, RgbImage, imageops};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A frame and the box `[x, y, w, h]` of the face placed in it.
pub type PlacedFace = (RgbImage, [u32; 4]);

/// Frame `i` of a seeded sequence: `face` scaled to `face_px` and placed at a random spot of a
/// `width`×`height` background.
pub fn place_face(face: &RgbImage, width: u32, height: u32, face_px: u32, seed: u64) -> PlacedFace {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let side = face_px.min(width).min(height).max(1);
    let big = imageops::resize(face, side, side, imageops::FilterType::CatmullRom);
    let mut frame = background(width, height, &mut rng);
    let x = rng.random_range(0..=width - side);
    let y = rng.random_range(0..=height - side);
    imageops::replace(&mut frame, &big, x as i64, y as i64);
    (frame, [x, y, side, side])
}

/// A softly lit wall of a random colour with fixed fine noise.
fn background(width: u32, height: u32, rng: &mut ChaCha8Rng) -> RgbImage {
    let (r0, g0, b0) = (
        rng.random_range(60..180) as f32,
        rng.random_range(60..180) as f32,
        rng.random_range(60..180) as f32,
    );
    RgbImage::from_fn(width, height, |x, y| {
        let light = 0.75 + 0.5 * (x as f32 / width as f32) * (1.0 - 0.5 * y as f32 / height as f32);
        let n = ((x.wrapping_mul(73856093) ^ y.wrapping_mul(19349663)) % 9) as f32 - 4.0;
        Rgb([
            (r0 * light + n).clamp(0.0, 255.0) as u8,
            (g0 * light + n).clamp(0.0, 255.0) as u8,
            (b0 * light + n).clamp(0.0, 255.0) as u8,
        ])
    })
}

/// `n` frames of one face that drifts by up to 3 px per frame (direction from `seed`),
/// bouncing off the borders, as a slowly moving head in front of a webcam.
pub fn shot(face: &RgbImage, face_px: u32, seed: u64, n: usize) -> Vec<PlacedFace> {
    let (first, [x0, y0, side, _]) = place_face(face, 640, 480, face_px, seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let (dx, dy) = (rng.random_range(-3i64..=3), rng.random_range(-2i64..=2));
    let big = imageops::resize(face, side, side, imageops::FilterType::CatmullRom);
    // The same wall as the first frame (same seed, same first draws).
    let clean = background(640, 480, &mut ChaCha8Rng::seed_from_u64(seed));
    let (mut x, mut y) = (x0 as i64, y0 as i64);
    let (mut vx, mut vy) = (dx, dy);
    let mut out = Vec::with_capacity(n);
    out.push((first, [x0, y0, side, side]));
    for _ in 1..n {
        let max_x = (640 - side) as i64;
        let max_y = (480 - side) as i64;
        if !(0..=max_x).contains(&(x + vx)) {
            vx = -vx;
        }
        if !(0..=max_y).contains(&(y + vy)) {
            vy = -vy;
        }
        x = (x + vx).clamp(0, max_x);
        y = (y + vy).clamp(0, max_y);
        let mut f = clean.clone();
        imageops::replace(&mut f, &big, x, y);
        out.push((f, [x as u32, y as u32, side, side]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn face_lands_inside_the_frame_at_the_reported_box() {
        let face = RgbImage::from_pixel(48, 48, Rgb([255, 0, 255]));
        for seed in 0..20 {
            let (f, [x, y, w, h]) = place_face(&face, 640, 480, 192, seed);
            assert_eq!((f.width(), f.height(), w, h), (640, 480, 192, 192));
            assert!(x + w <= 640 && y + h <= 480);
            assert_eq!(f.get_pixel(x + w / 2, y + h / 2).0, [255, 0, 255]);
            assert_ne!(f.get_pixel((x + w + 5) % 640, (y + h + 5) % 480).0, [255, 0, 255]);
        }
        assert_eq!(
            place_face(&face, 640, 480, 192, 3).1,
            place_face(&face, 640, 480, 192, 3).1
        );
    }

    #[test]
    fn a_shot_drifts_slowly_and_stays_in_frame() {
        let face = RgbImage::from_pixel(48, 48, Rgb([255, 0, 255]));
        let frames = shot(&face, 192, 7, 60);
        assert_eq!(frames.len(), 60);
        for w in frames.windows(2) {
            let ([x0, y0, ..], [x1, y1, ..]) = (w[0].1, w[1].1);
            assert!((x0 as i64 - x1 as i64).abs() <= 3 && (y0 as i64 - y1 as i64).abs() <= 2);
        }
        for (f, [x, y, w, h]) in &frames {
            assert!(x + w <= 640 && y + h <= 480);
            assert_eq!(f.get_pixel(x + w / 2, y + h / 2).0, [255, 0, 255]);
        }
    }
}
