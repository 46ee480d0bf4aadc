//! Synthetic webcam-like frames for benchmarks and tests: real faces (e.g. FER+ images) placed
//! at known boxes on a background. [`shot`] makes easy frames (one large face, a plain wall);
//! [`hard_frame`] makes the hard ones the detector is judged on (0–4 faces of 40–250 px with
//! soft edges, cluttered backgrounds, blur, noise and lighting changes).

use image::{Rgb, RgbImage, imageops};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

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

/// One face's truth in a benchmark folder's `boxes.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthFace {
    /// The pasted face's square `[x, y, w, h]` in frame pixels.
    #[serde(rename = "box")]
    pub bbox: [u32; 4],
    /// The face image it shows.
    pub source: String,
    /// Its emotion label.
    pub label: crate::labels::Emotion,
}

/// One frame's entry in `boxes.json`: the faces it holds (hard frames, 0–4) or, as `bench frames`
/// writes for easy frames, a single face.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FrameTruth {
    /// Several faces, with what was done to the frame.
    Many {
        /// Every face in the frame.
        faces: Vec<TruthFace>,
        /// Background and degradations, when the frame is a hard frame.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        degradation: Option<Degradation>,
    },
    /// Exactly one face.
    One(TruthFace),
}

impl FrameTruth {
    /// The faces of the frame, whichever form it was written in.
    pub fn faces(&self) -> &[TruthFace] {
        match self {
            FrameTruth::Many { faces, .. } => faces,
            FrameTruth::One(f) => std::slice::from_ref(f),
        }
    }
}

/// Settings of [`hard_frame`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HardSpec {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Smallest face side in pixels.
    pub min_face: u32,
    /// Largest face side in pixels.
    pub max_face: u32,
}

impl Default for HardSpec {
    /// 640×480 frames with faces of 40–250 px, as a webcam sees people 0.5–4 m away.
    fn default() -> Self {
        Self {
            width: 640,
            height: 480,
            min_face: 40,
            max_face: 250,
        }
    }
}

/// The background a hard frame is drawn on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backdrop {
    /// A softly lit plain wall.
    Wall,
    /// Horizontal shelves and vertical posts, like a room or office.
    Shelves,
    /// Overlapping rectangles and discs of random colours (skin tones included), like clutter.
    Clutter,
    /// Smooth random light and dark blobs, like an out-of-focus photo.
    Blobs,
}

/// What was done to a hard frame, recorded beside its truth.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Degradation {
    /// The background.
    pub backdrop: Backdrop,
    /// Gaussian blur sigma applied to the whole frame (0: none).
    pub blur_sigma: f32,
    /// Standard deviation of the additive Gaussian noise (0: none).
    pub noise_std: f32,
    /// Brightness gain of the whole frame.
    pub gain: f32,
    /// Gamma of the whole frame (above 1 darkens mid-tones).
    pub gamma: f32,
}

/// A hard frame: the image, each placed face's box `[x, y, w, h]` (the pasted square) with the
/// index of the face image it shows, and what was done to it.
#[derive(Debug, Clone)]
pub struct HardFrame {
    /// The frame.
    pub image: RgbImage,
    /// `(box, index into the faces given)` for every face that was placed.
    pub faces: Vec<([u32; 4], usize)>,
    /// Background and degradations.
    pub degradation: Degradation,
}

/// A frame of `spec`'s size showing every face of `faces` (a caller passes 0–4) at a seeded
/// random size (log-uniform in `min_face..=max_face`) and place, not overlapping, pasted with a
/// soft edge, on a seeded [`Backdrop`], then with seeded lighting, blur and noise. A face that
/// finds no free place after many tries is left out (and not in [`HardFrame::faces`]).
pub fn hard_frame(faces: &[RgbImage], spec: &HardSpec, seed: u64) -> HardFrame {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (w, h) = (spec.width.max(1), spec.height.max(1));
    let backdrop = match rng.random_range(0..4) {
        0 => Backdrop::Wall,
        1 => Backdrop::Shelves,
        2 => Backdrop::Clutter,
        _ => Backdrop::Blobs,
    };
    let mut frame = match backdrop {
        Backdrop::Wall => background(w, h, &mut rng),
        Backdrop::Shelves => shelves(w, h, &mut rng),
        Backdrop::Clutter => clutter(w, h, &mut rng),
        Backdrop::Blobs => blobs(w, h, &mut rng),
    };
    let (lo, hi) = (
        (spec.min_face.max(8) as f32).ln(),
        (spec.max_face.max(spec.min_face.max(8)) as f32).ln(),
    );
    let mut placed: Vec<([u32; 4], usize)> = Vec::new();
    for (i, face) in faces.iter().enumerate() {
        let side = (rng.random_range(lo..=hi).exp().round() as u32).min(w).min(h);
        let free = |x: u32, y: u32, placed: &[([u32; 4], usize)]| {
            // A gap of a tenth of the larger face keeps soft edges from touching.
            placed.iter().all(|([px, py, ps, _], _)| {
                let gap = side.max(*ps) / 10;
                x + side + gap <= *px || *px + ps + gap <= x || y + side + gap <= *py || *py + ps + gap <= y
            })
        };
        let spot = (0..200).find_map(|_| {
            let x = rng.random_range(0..=w - side);
            let y = rng.random_range(0..=h - side);
            free(x, y, &placed).then_some((x, y))
        });
        let Some((x, y)) = spot else { continue };
        let shade = rng.random_range(0.75f32..1.25);
        paste_soft(&mut frame, face, x, y, side, shade);
        placed.push(([x, y, side, side], i));
    }
    let blur_sigma = if rng.random_bool(0.35) {
        rng.random_range(0.6f32..2.0)
    } else {
        0.0
    };
    let noise_std = if rng.random_bool(0.5) {
        rng.random_range(2.0f32..10.0)
    } else {
        0.0
    };
    let gain = rng.random_range(0.55f32..1.35);
    let gamma = rng.random_range(0.75f32..1.35);
    if blur_sigma > 0.0 {
        frame = imageproc::filter::gaussian_blur_f32(&frame, blur_sigma);
    }
    let lut: Vec<u8> = (0..256)
        .map(|v| {
            let x = (v as f32 / 255.0).powf(gamma) * gain;
            (x * 255.0).round().clamp(0.0, 255.0) as u8
        })
        .collect();
    for p in frame.pixels_mut() {
        p.0 = p.0.map(|c| lut[c as usize]);
    }
    if noise_std > 0.0 {
        imageproc::noise::gaussian_noise_mut(&mut frame, 0.0, noise_std as f64, rng.random());
    }
    HardFrame {
        image: frame,
        faces: placed,
        degradation: Degradation {
            backdrop,
            blur_sigma,
            noise_std,
            gain,
            gamma,
        },
    }
}

/// Pastes `face` scaled to `side`×`side` at (x, y), its brightness times `shade`, blending into the
/// frame over a border of 8 % of the side (a cut-out face, not a hard-edged square).
fn paste_soft(frame: &mut RgbImage, face: &RgbImage, x: u32, y: u32, side: u32, shade: f32) {
    let big = imageops::resize(face, side, side, imageops::FilterType::CatmullRom);
    let feather = (side as f32 * 0.08).max(2.0);
    for v in 0..side {
        for u in 0..side {
            let d = (u.min(side - 1 - u).min(v).min(side - 1 - v) as f32 + 0.5) / feather;
            let t = d.clamp(0.0, 1.0);
            let a = t * t * (3.0 - 2.0 * t);
            let (fx, fy) = (x + u, y + v);
            let src = big.get_pixel(u, v).0;
            let dst = frame.get_pixel_mut(fx, fy);
            for (d, s) in dst.0.iter_mut().zip(src) {
                let s = (s as f32 * shade).min(255.0);
                *d = (a * s + (1.0 - a) * *d as f32).round() as u8;
            }
        }
    }
}

/// A random colour with each channel in `lo..hi`.
fn colour(rng: &mut ChaCha8Rng, lo: u8, hi: u8) -> [u8; 3] {
    [
        rng.random_range(lo..hi),
        rng.random_range(lo..hi),
        rng.random_range(lo..hi),
    ]
}

/// Fills the rectangle `[x0, x1) × [y0, y1)` (clipped to the frame) with `c`.
fn fill(frame: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, c: [u8; 3]) {
    let (w, h) = (frame.width() as i64, frame.height() as i64);
    for y in y0.max(0)..y1.min(h) {
        for x in x0.max(0)..x1.min(w) {
            frame.put_pixel(x as u32, y as u32, Rgb(c));
        }
    }
}

/// A wall with horizontal shelves holding boxes, and vertical posts.
fn shelves(width: u32, height: u32, rng: &mut ChaCha8Rng) -> RgbImage {
    let mut f = background(width, height, rng);
    let (w, h) = (width as i64, height as i64);
    let mut y = rng.random_range(20..80i64);
    while y < h {
        let board = colour(rng, 40, 200);
        fill(&mut f, 0, y, w, y + rng.random_range(6..14), board);
        let mut x = rng.random_range(0..40i64);
        while x < w {
            let (bw, bh) = (rng.random_range(15..70i64), rng.random_range(20..70i64));
            fill(&mut f, x, y - bh, x + bw, y, colour(rng, 20, 235));
            x += bw + rng.random_range(2..30);
        }
        y += rng.random_range(90..160);
    }
    for _ in 0..rng.random_range(1..4) {
        let x = rng.random_range(0..w);
        fill(&mut f, x, 0, x + rng.random_range(8..30), h, colour(rng, 30, 200));
    }
    f
}

/// Overlapping rectangles and discs of random colours, some of them skin tones.
fn clutter(width: u32, height: u32, rng: &mut ChaCha8Rng) -> RgbImage {
    let mut f = background(width, height, rng);
    let (w, h) = (width as i64, height as i64);
    for _ in 0..rng.random_range(15..40) {
        let c = if rng.random_bool(0.3) {
            let base = rng.random_range(120..235u8) as f32;
            [base as u8, (base * 0.8) as u8, (base * 0.65) as u8]
        } else {
            colour(rng, 0, 255)
        };
        let (x, y) = (rng.random_range(-40..w), rng.random_range(-40..h));
        let (sw, sh) = (rng.random_range(10..200i64), rng.random_range(10..200i64));
        if rng.random_bool(0.5) {
            fill(&mut f, x, y, x + sw, y + sh, c);
        } else {
            let r = sw.min(sh) / 2 + 4;
            let (cx, cy) = (x + r, y + r);
            for yy in (cy - r).max(0)..(cy + r).min(h) {
                for xx in (cx - r).max(0)..(cx + r).min(w) {
                    if (xx - cx).pow(2) + (yy - cy).pow(2) <= r * r {
                        f.put_pixel(xx as u32, yy as u32, Rgb(c));
                    }
                }
            }
        }
    }
    f
}

/// Smooth random light and dark colour blobs (a sum of wide Gaussians).
fn blobs(width: u32, height: u32, rng: &mut ChaCha8Rng) -> RgbImage {
    let n = rng.random_range(6..14);
    let spots: Vec<(f32, f32, f32, [f32; 3])> = (0..n)
        .map(|_| {
            (
                rng.random_range(0.0..width as f32),
                rng.random_range(0.0..height as f32),
                rng.random_range(40.0f32..200.0),
                [
                    rng.random_range(-90.0f32..90.0),
                    rng.random_range(-90.0f32..90.0),
                    rng.random_range(-90.0f32..90.0),
                ],
            )
        })
        .collect();
    let base = colour(rng, 70, 170).map(f32::from);
    RgbImage::from_fn(width, height, |x, y| {
        let mut c = base;
        for (sx, sy, r, d) in &spots {
            let e = (-((x as f32 - sx).powi(2) + (y as f32 - sy).powi(2)) / (2.0 * r * r)).exp();
            for ch in 0..3 {
                c[ch] += d[ch] * e;
            }
        }
        Rgb(c.map(|v| v.clamp(0.0, 255.0) as u8))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_frames_place_faces_apart_inside_the_frame_with_soft_edges() {
        let face = RgbImage::from_pixel(48, 48, Rgb([255, 0, 255]));
        let faces = vec![face; 4];
        let spec = HardSpec::default();
        let mut backdrops = std::collections::HashSet::new();
        let mut sides = vec![];
        for seed in 0..40 {
            let f = hard_frame(&faces, &spec, seed);
            assert_eq!(f.image.dimensions(), (640, 480));
            backdrops.insert(format!("{:?}", f.degradation.backdrop));
            for (k, ([x, y, w, h], i)) in f.faces.iter().enumerate() {
                assert_eq!(w, h);
                assert!((40..=250).contains(w), "side {w}");
                assert!(x + w <= 640 && y + h <= 480 && *i < 4);
                sides.push(*w);
                for ([x2, y2, w2, _], _) in &f.faces[k + 1..] {
                    let apart = x + w <= *x2 || x2 + w2 <= *x || y + h <= *y2 || y2 + w2 <= *y;
                    assert!(apart, "faces overlap in frame {seed}");
                }
                if f.degradation.blur_sigma == 0.0 && f.degradation.noise_std == 0.0 {
                    // The centre is the face (magenta through the frame's lighting), the very
                    // corner mostly background.
                    let c = f.image.get_pixel(x + w / 2, y + h / 2).0;
                    assert!(c[1] < 40 && c[0] > 60 && c[2] > 60, "centre {c:?}");
                }
            }
        }
        assert_eq!(backdrops.len(), 4, "every backdrop is drawn");
        assert!(sides.iter().any(|s| *s < 70) && sides.iter().any(|s| *s > 180));
        assert_eq!(
            hard_frame(&faces, &spec, 5).image,
            hard_frame(&faces, &spec, 5).image,
            "seeded"
        );
    }

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
