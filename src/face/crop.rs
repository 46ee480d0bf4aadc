//! Face box → square, optionally eye-levelled, fixed-size face image for the classifier.
//!
//! FER+ (the training data) holds tightly cropped faces: the 48×48 image spans roughly from
//! the top of the forehead to the chin and from cheek to cheek, with little background.
//! CenterFace's boxes are a little taller than wide and cover brow-to-chin, so the crop is a
//! square of side `max(w, h) · (1 + 2·margin)` centred on the box; see [`DEFAULT_MARGIN`].

use image::{Rgb, RgbImage};

use crate::face::FaceBox;

/// Margin added on each side of the face box, as a fraction of its larger side.
/// Measured (tests/face_detect.rs): on FER+ faces composited into frames, the FER+ image side is
/// 1.04× the detected box's larger side (median of 242 detections), i.e. a margin of 0.02; a
/// contact sheet of crops at 0 / 0.05 / 0.2 / 0.4 confirms that 0–0.1 looks like FER+ and 0.2
/// already shows neck and background. 0.05 keeps the chin and forehead in when the box jitters.
pub const DEFAULT_MARGIN: f32 = 0.05;

/// Side of the face image handed to the patch/cluster/ViT stages.
pub const FACE_SIZE: u32 = 96;

/// Largest supersampling factor per axis when shrinking (bounds the cost for huge faces).
const MAX_SUPERSAMPLE: usize = 8;

/// Samples `frame` at (x, y) with bilinear interpolation, clamping to the nearest edge pixel
/// outside the frame (so borders are padded by replication instead of black bars).
fn sample(frame: &RgbImage, x: f32, y: f32) -> [f32; 3] {
    let (w, h) = frame.dimensions();
    let xm = (w - 1) as f32;
    let ym = (h - 1) as f32;
    let x = (x - 0.5).clamp(0.0, xm);
    let y = (y - 0.5).clamp(0.0, ym);
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (x0, y0) = (x0 as u32, y0 as u32);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let p = |xx: u32, yy: u32| frame.get_pixel(xx, yy).0;
    let (a, b, c, d) = (p(x0, y0), p(x1, y0), p(x0, y1), p(x1, y1));
    let mut out = [0.0f32; 3];
    for ch in 0..3 {
        let top = a[ch] as f32 * (1.0 - fx) + b[ch] as f32 * fx;
        let bot = c[ch] as f32 * (1.0 - fx) + d[ch] as f32 * fx;
        out[ch] = top * (1.0 - fy) + bot * fy;
    }
    out
}

/// Angle (radians) of the line from the left eye to the right eye; 0 when the landmarks
/// are not finite or coincide.
pub fn eye_angle(b: &FaceBox) -> f32 {
    let [lx, ly] = b.landmarks[0];
    let [rx, ry] = b.landmarks[1];
    let (dx, dy) = (rx - lx, ry - ly);
    let a = dy.atan2(dx);
    if a.is_finite() && (dx != 0.0 || dy != 0.0) {
        a
    } else {
        0.0
    }
}

/// Where a face crop sits in the frame: centre, side (frame pixels) and rotation (radians).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CropSquare {
    /// Centre x in frame pixels.
    pub cx: f32,
    /// Centre y in frame pixels.
    pub cy: f32,
    /// Side length in frame pixels.
    pub side: f32,
    /// Rotation that levels the eyes (0 without alignment).
    pub theta: f32,
}

impl CropSquare {
    /// The square [`crop_face`] samples for box `b` in a `fw`×`fh` frame.
    pub fn of(b: &FaceBox, margin: f32, align: bool, fw: u32, fh: u32) -> Self {
        let (mut cx, mut cy) = b.center();
        if !cx.is_finite() || !cy.is_finite() {
            (cx, cy) = (fw as f32 * 0.5, fh as f32 * 0.5);
        }
        let margin = if margin.is_finite() {
            margin.max(-0.45)
        } else {
            0.0
        };
        let mut side = b.w.max(b.h) * (1.0 + 2.0 * margin);
        if !side.is_finite() || side < 1.0 {
            side = 1.0;
        }
        let theta = if align { eye_angle(b) } else { 0.0 };
        Self { cx, cy, side, theta }
    }

    /// Frame point → crop coordinates in `[0, size)` (outside that range: not in the crop).
    pub fn to_crop(&self, x: f32, y: f32, size: u32) -> (f32, f32) {
        let (sin, cos) = self.theta.sin_cos();
        let (dx, dy) = (x - self.cx, y - self.cy);
        let step = self.side / size as f32;
        let half = 0.5 * size as f32;
        (
            (dx * cos + dy * sin) / step + half,
            (-dx * sin + dy * cos) / step + half,
        )
    }

    /// Axis-aligned frame bounds `(x0, y0, x1, y1)` of the (possibly rotated) square.
    pub fn bounds(&self) -> (f32, f32, f32, f32) {
        let (sin, cos) = self.theta.sin_cos();
        let r = 0.5 * self.side * (cos.abs() + sin.abs());
        (self.cx - r, self.cy - r, self.cx + r, self.cy + r)
    }
}

/// Cuts a square face image of `size`×`size` pixels around `b`: side `max(w, h)·(1+2·margin)`
/// centred on the box, rotated so the eyes are level when `align` is set, sampled bilinearly
/// with supersampling when shrinking, and padded by edge replication where the square leaves
/// the frame. Never panics: an empty frame or `size` 0 gives a black (or empty) image.
pub fn crop_face(frame: &RgbImage, b: &FaceBox, margin: f32, align: bool, size: u32) -> RgbImage {
    let mut out = RgbImage::new(size, size);
    let (fw, fh) = frame.dimensions();
    if size == 0 || fw == 0 || fh == 0 {
        return out;
    }
    let CropSquare { cx, cy, side, theta } = CropSquare::of(b, margin, align, fw, fh);
    let (sin, cos) = theta.sin_cos();
    let step = side / size as f32; // source pixels per output pixel
    let k = (step.ceil() as usize).clamp(1, MAX_SUPERSAMPLE);
    let inv = 1.0 / (k * k) as f32;
    let half = 0.5 * size as f32;
    for v in 0..size {
        for u in 0..size {
            let mut acc = [0.0f32; 3];
            for sj in 0..k {
                let q = (v as f32 + (sj as f32 + 0.5) / k as f32 - half) * step;
                for si in 0..k {
                    let p = (u as f32 + (si as f32 + 0.5) / k as f32 - half) * step;
                    let sx = cx + p * cos - q * sin;
                    let sy = cy + p * sin + q * cos;
                    let s = sample(frame, sx, sy);
                    for ch in 0..3 {
                        acc[ch] += s[ch];
                    }
                }
            }
            let px = acc.map(|a| (a * inv).round().clamp(0.0, 255.0) as u8);
            out.put_pixel(u, v, Rgb(px));
        }
    }
    out
}
