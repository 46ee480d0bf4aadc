//! Random augmentation of training faces: mirror, small rotation, zoom and shift (one affine warp,
//! bilinear, edges replicated), and brightness/contrast jitter. Same-size output, RGB in, RGB out.

use image::{Rgb, RgbImage};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// How strongly to perturb each training face; [`Augment::none`] leaves faces unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Augment {
    /// Mirror left-right with probability 1/2.
    pub flip: bool,
    /// Largest rotation either way, in degrees.
    pub max_rotate_deg: f32,
    /// Largest zoom either way (0.1 = scale in [0.9, 1.1]).
    pub max_zoom: f32,
    /// Largest shift on each axis, as a fraction of the side.
    pub max_shift: f32,
    /// Largest brightness change, in grey levels either way.
    pub brightness: f32,
    /// Largest contrast change either way (0.2 = contrast factor in [0.8, 1.2]).
    pub contrast: f32,
}

impl Default for Augment {
    /// The settings used for the shipped model: mirror, ±10°, ±10 % zoom, ±8 % shift, mild
    /// photometric jitter.
    fn default() -> Self {
        Augment {
            flip: true,
            max_rotate_deg: 10.0,
            max_zoom: 0.1,
            max_shift: 0.08,
            brightness: 20.0,
            contrast: 0.2,
        }
    }
}

/// One draw of the random parameters, applied by [`Transform::apply`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transform {
    /// Mirror left-right before the warp.
    pub flip: bool,
    /// Rotation, radians (π/2 gives image's `rotate270`).
    pub angle: f32,
    /// Zoom factor (> 1 enlarges the face).
    pub scale: f32,
    /// Shift in pixels (x right, y down).
    pub shift: (f32, f32),
    /// Added grey levels.
    pub brightness: f32,
    /// Contrast factor about mid-grey.
    pub contrast: f32,
}

impl Transform {
    /// The transform that changes nothing.
    pub const IDENTITY: Transform = Transform {
        flip: false,
        angle: 0.0,
        scale: 1.0,
        shift: (0.0, 0.0),
        brightness: 0.0,
        contrast: 1.0,
    };

    /// Warps `face` (any size): each output pixel samples the input at the inverse-mapped point,
    /// bilinearly, with coordinates clamped to the border.
    pub fn apply(&self, face: &RgbImage) -> RgbImage {
        let (w, h) = face.dimensions();
        let (cx, cy) = ((w as f32 - 1.0) / 2.0, (h as f32 - 1.0) / 2.0);
        let (sin, cos) = self.angle.sin_cos();
        let inv = 1.0 / self.scale;
        let photometric = |v: f32| ((v - 128.0) * self.contrast + 128.0 + self.brightness).clamp(0.0, 255.0);
        let geometric = !(self.angle == 0.0 && self.scale == 1.0 && self.shift == (0.0, 0.0));
        RgbImage::from_fn(w, h, |x, y| {
            let xo = if self.flip { (w - 1 - x) as f32 } else { x as f32 };
            let px = if geometric {
                // Output → input: undo the shift, the zoom and the rotation.
                let dx = (xo - cx - self.shift.0) * inv;
                let dy = (y as f32 - cy - self.shift.1) * inv;
                let sx = cos * dx - sin * dy + cx;
                let sy = sin * dx + cos * dy + cy;
                sample_bilinear(face, sx, sy)
            } else {
                let p = face.get_pixel(xo as u32, y).0;
                [p[0] as f32, p[1] as f32, p[2] as f32]
            };
            Rgb(px.map(|v| photometric(v).round() as u8))
        })
    }
}

/// Bilinear sample of `img` at `(x, y)`, coordinates clamped into the image.
fn sample_bilinear(img: &RgbImage, x: f32, y: f32) -> [f32; 3] {
    let (w, h) = img.dimensions();
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let p = |xx, yy| img.get_pixel(xx, yy).0;
    let (a, b, c, d) = (p(x0, y0), p(x1, y0), p(x0, y1), p(x1, y1));
    std::array::from_fn(|i| {
        let top = a[i] as f32 * (1.0 - fx) + b[i] as f32 * fx;
        let bottom = c[i] as f32 * (1.0 - fx) + d[i] as f32 * fx;
        top * (1.0 - fy) + bottom * fy
    })
}

impl Augment {
    /// No augmentation at all.
    pub fn none() -> Self {
        Augment {
            flip: false,
            max_rotate_deg: 0.0,
            max_zoom: 0.0,
            max_shift: 0.0,
            brightness: 0.0,
            contrast: 0.0,
        }
    }

    /// Draws one transform for a face of side `side` pixels.
    pub fn draw(&self, side: u32, rng: &mut impl Rng) -> Transform {
        let mut sym = |r: f32| if r > 0.0 { rng.random_range(-r..=r) } else { 0.0 };
        let angle = sym(self.max_rotate_deg).to_radians();
        let scale = 1.0 + sym(self.max_zoom);
        let shift = (
            sym(self.max_shift) * side as f32,
            sym(self.max_shift) * side as f32,
        );
        let brightness = sym(self.brightness);
        let contrast = 1.0 + sym(self.contrast);
        Transform {
            flip: self.flip && rng.random_bool(0.5),
            angle,
            scale,
            shift,
            brightness,
            contrast,
        }
    }

    /// A randomly augmented copy of `face`.
    pub fn apply(&self, face: &RgbImage, rng: &mut impl Rng) -> RgbImage {
        self.draw(face.width(), rng).apply(face)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// The first FER+ validation "happy" face (`None` only when skipped, see
    /// [`crate::shared_data::ferplus`]).
    fn ferplus_face() -> Option<RgbImage> {
        let dir = crate::shared_data::ferplus()?.join("valid/happy");
        let file = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
            .map(|e| e.path())
            .min()
            .unwrap_or_else(|| panic!("{} holds no faces", dir.display()));
        let img = image::open(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        Some(crate::patch::to_face(&img, 96))
    }

    fn asymmetric() -> RgbImage {
        RgbImage::from_fn(96, 96, |x, y| {
            Rgb([(x * 2) as u8, (y * 3 % 256) as u8, ((x * y) % 251) as u8])
        })
    }

    #[test]
    fn identity_and_no_augmentation_change_nothing() {
        for img in [Some(asymmetric()), ferplus_face()].into_iter().flatten() {
            assert_eq!(Transform::IDENTITY.apply(&img), img);
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            assert_eq!(Augment::none().apply(&img, &mut rng), img);
        }
    }

    #[test]
    fn flip_matches_image_crate_mirror() {
        let img = asymmetric();
        let t = Transform {
            flip: true,
            ..Transform::IDENTITY
        };
        assert_eq!(t.apply(&img), image::imageops::flip_horizontal(&img));
    }

    #[test]
    fn quarter_turn_matches_image_crate_rotation() {
        // A quarter turn maps pixel centres onto pixel centres, so bilinear sampling must
        // reproduce the image crate's exact (independent) rotation.
        let img = asymmetric();
        let t = Transform {
            angle: std::f32::consts::FRAC_PI_2,
            ..Transform::IDENTITY
        };
        assert_eq!(t.apply(&img), image::imageops::rotate270(&img));
    }

    #[test]
    fn integer_shift_moves_pixels_and_replicates_the_border() {
        let img = asymmetric();
        let t = Transform {
            shift: (5.0, -3.0),
            ..Transform::IDENTITY
        };
        let out = t.apply(&img);
        assert_eq!(out.get_pixel(50, 40), img.get_pixel(45, 43));
        // Left columns come from the clamped first column.
        assert_eq!(out.get_pixel(2, 40), img.get_pixel(0, 43));
    }

    #[test]
    fn draws_stay_within_bounds_and_depend_on_the_seed() {
        let aug = Augment::default();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let draws: Vec<Transform> = (0..500).map(|_| aug.draw(96, &mut rng)).collect();
        for t in &draws {
            assert!(t.angle.abs() <= 10f32.to_radians() + 1e-6);
            assert!((0.9..=1.1).contains(&t.scale));
            assert!(t.shift.0.abs() <= 0.08 * 96.0 + 1e-4 && t.shift.1.abs() <= 0.08 * 96.0 + 1e-4);
        }
        let flips = draws.iter().filter(|t| t.flip).count();
        assert!((180..320).contains(&flips), "{flips} flips in 500");
        let mut again = ChaCha8Rng::seed_from_u64(7);
        assert_eq!(aug.draw(96, &mut again), draws[0]);
    }
}
