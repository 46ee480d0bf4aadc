//! Drawing the runtime's results onto a frame: a box, label and probability per face, a bar
//! chart of the 8 class probabilities, optional per-patch cluster tints, and a status line
//! (FPS, method/k, dropped frames, source faults). Text uses the 8×8 bitmap font of the
//! `font8x8` crate, so no system font is needed.

use font8x8::legacy::BASIC_LEGACY;
use image::{Rgb, RgbImage};
use imageproc::drawing::draw_filled_rect_mut;
use imageproc::rect::Rect;

use crate::face::{CropSquare, DEFAULT_MARGIN, FACE_SIZE, FaceBox};
use crate::labels::{Emotion, NUM_CLASSES, argmax};
use crate::patch::NUM_PATCHES;

/// Colour of each emotion's box and bar (anger … surprise).
pub const EMOTION_COLORS: [[u8; 3]; NUM_CLASSES] = [
    [230, 60, 50],   // anger
    [150, 90, 200],  // contempt
    [110, 170, 60],  // disgust
    [240, 150, 40],  // fear
    [250, 215, 50],  // happy
    [200, 200, 200], // neutral
    [70, 120, 230],  // sad
    [60, 210, 210],  // surprise
];

/// Tints for up to 8 clusters (more wrap around).
const CLUSTER_COLORS: [[u8; 3]; 8] = [
    [255, 64, 64],
    [64, 160, 255],
    [64, 220, 64],
    [255, 200, 0],
    [220, 64, 255],
    [0, 230, 200],
    [255, 128, 0],
    [160, 160, 255],
];

/// One face as the overlay draws it.
#[derive(Debug, Clone)]
pub struct FaceView {
    /// Detected box in frame pixels.
    pub bbox: FaceBox,
    /// (Smoothed) class probabilities.
    pub probs: [f32; NUM_CLASSES],
    /// Cluster id per patch (empty: no tint).
    pub clusters: Vec<u32>,
}

/// What the status line shows.
#[derive(Debug, Clone, Default)]
pub struct Hud {
    /// Frames per second shown.
    pub fps: f64,
    /// Clustering method and k of the model.
    pub method: String,
    /// k.
    pub k: usize,
    /// Frames dropped so far to stay current.
    pub dropped: u64,
    /// A source fault or stall to show in red, if any.
    pub alert: Option<String>,
}

fn blend(px: &mut Rgb<u8>, c: [u8; 3], alpha: f32) {
    for (v, &t) in px.0.iter_mut().zip(&c) {
        *v = (*v as f32 * (1.0 - alpha) + t as f32 * alpha).round() as u8;
    }
}

/// Fills a rectangle (clipped to the image), blending with `alpha` (1 = opaque). Opaque fills
/// are imageproc's; blended ones (label plates, cluster tints) are done here, since imageproc
/// blends only RGBA canvases.
pub fn fill_rect(img: &mut RgbImage, x: i64, y: i64, w: i64, h: i64, c: [u8; 3], alpha: f32) {
    if w <= 0 || h <= 0 {
        return;
    }
    if alpha >= 1.0 {
        let to_i32 = |v: i64| v.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        let rect = Rect::at(to_i32(x), to_i32(y))
            .of_size(w.min(u32::MAX as i64) as u32, h.min(u32::MAX as i64) as u32);
        draw_filled_rect_mut(img, rect, Rgb(c));
        return;
    }
    let (iw, ih) = (img.width() as i64, img.height() as i64);
    for yy in y.max(0)..(y + h).min(ih) {
        for xx in x.max(0)..(x + w).min(iw) {
            blend(img.get_pixel_mut(xx as u32, yy as u32), c, alpha);
        }
    }
}

/// Draws a rectangle outline `t` pixels thick (clipped).
pub fn stroke_rect(img: &mut RgbImage, x: i64, y: i64, w: i64, h: i64, t: i64, c: [u8; 3]) {
    fill_rect(img, x, y, w, t, c, 1.0);
    fill_rect(img, x, y + h - t, w, t, c, 1.0);
    fill_rect(img, x, y, t, h, c, 1.0);
    fill_rect(img, x + w - t, y, t, h, c, 1.0);
}

/// Pixel width of `text` at `scale` (8 px per character per scale step).
pub fn text_width(text: &str, scale: u32) -> i64 {
    (text.chars().count() * 8 * scale as usize) as i64
}

/// Draws ASCII `text` with its top-left corner at (x, y), each font pixel `scale`×`scale`
/// (non-ASCII characters show as '?'). Clipped to the image.
pub fn draw_text(img: &mut RgbImage, x: i64, y: i64, scale: u32, c: [u8; 3], text: &str) {
    let s = scale.max(1) as i64;
    for (i, ch) in text.chars().enumerate() {
        let glyph = BASIC_LEGACY[if ch.is_ascii() { ch as usize } else { b'?' as usize }];
        let gx = x + i as i64 * 8 * s;
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) != 0 {
                    fill_rect(img, gx + col * s, y + row as i64 * s, s, s, c, 1.0);
                }
            }
        }
    }
}

/// Text on a dark, half-transparent plate, for legibility on any background.
fn label(img: &mut RgbImage, x: i64, y: i64, scale: u32, c: [u8; 3], text: &str) {
    let pad = scale as i64;
    fill_rect(
        img,
        x - pad,
        y - pad,
        text_width(text, scale) + 2 * pad,
        8 * scale as i64 + 2 * pad,
        [0, 0, 0],
        0.6,
    );
    draw_text(img, x, y, scale, c, text);
}

/// Tints each frame pixel inside the face's crop square by the cluster of the patch it falls in.
pub fn tint_clusters(img: &mut RgbImage, face: &FaceView, align: bool) {
    if face.clusters.len() != NUM_PATCHES {
        return;
    }
    let sq = CropSquare::of(&face.bbox, DEFAULT_MARGIN, align, img.width(), img.height());
    let (x0, y0, x1, y1) = sq.bounds();
    let grid = (NUM_PATCHES as f32).sqrt() as u32;
    let cell = FACE_SIZE as f32 / grid as f32;
    let (w, h) = (img.width() as f32, img.height() as f32);
    for y in y0.max(0.0) as u32..y1.min(h).max(0.0) as u32 {
        for x in x0.max(0.0) as u32..x1.min(w).max(0.0) as u32 {
            let (u, v) = sq.to_crop(x as f32 + 0.5, y as f32 + 0.5, FACE_SIZE);
            if u < 0.0 || v < 0.0 || u >= FACE_SIZE as f32 || v >= FACE_SIZE as f32 {
                continue;
            }
            let patch = (v / cell) as usize * grid as usize + (u / cell) as usize;
            let c = CLUSTER_COLORS[face.clusters[patch] as usize % CLUSTER_COLORS.len()];
            blend(img.get_pixel_mut(x, y), c, 0.35);
        }
    }
}

/// Draws every face (box, label, bar chart, optional cluster tint) and the status line.
pub fn draw(img: &mut RgbImage, faces: &[FaceView], hud: &Hud, show_clusters: bool, align: bool) {
    let scale = if img.width() >= 480 { 2 } else { 1 };
    for f in faces {
        if show_clusters {
            tint_clusters(img, f, align);
        }
        let best = argmax(&f.probs);
        let color = EMOTION_COLORS[best];
        let (x, y) = (f.bbox.x.round() as i64, f.bbox.y.round() as i64);
        let (w, h) = (f.bbox.w.round() as i64, f.bbox.h.round() as i64);
        stroke_rect(img, x, y, w, h, scale as i64, color);
        let text = format!("{} {:.0}%", Emotion::ALL[best].name(), f.probs[best] * 100.0);
        let ty = if y >= 8 * scale as i64 + 4 {
            y - 8 * scale as i64 - 3
        } else {
            y + h + 3
        };
        label(img, x, ty, scale, color, &text);
        draw_bars(img, f, x, y, w, scale);
    }
    // No rate until two frames have been shown (a single image shows none).
    let fps = if hud.fps > 0.0 {
        format!("{:.1} FPS  ", hud.fps)
    } else {
        String::new()
    };
    let mut status = format!("{fps}{} k={}", hud.method, hud.k);
    if hud.dropped > 0 {
        status.push_str(&format!("  dropped {}", hud.dropped));
    }
    label(img, 4, 4, scale, [255, 255, 255], &status);
    if let Some(alert) = &hud.alert {
        label(img, 4, 8 + 10 * scale as i64, scale, [255, 80, 80], alert);
    }
}

/// The 8 probabilities as labelled horizontal bars beside the box (right side, or left when
/// the right side has no room).
fn draw_bars(img: &mut RgbImage, f: &FaceView, x: i64, y: i64, w: i64, scale: u32) {
    let s = scale as i64;
    let row = 9 * s;
    let bar_max = 50 * s;
    let text_w = text_width("sur", scale);
    let panel_w = text_w + bar_max + 4 * s;
    let px = if x + w + 4 + panel_w <= img.width() as i64 {
        x + w + 4
    } else {
        (x - 4 - panel_w).max(0)
    };
    fill_rect(
        img,
        px,
        y,
        panel_w,
        row * NUM_CLASSES as i64 + 2 * s,
        [0, 0, 0],
        0.5,
    );
    for (i, e) in Emotion::ALL.iter().enumerate() {
        let ry = y + s + i as i64 * row;
        draw_text(img, px + s, ry, scale, [230, 230, 230], &e.name()[..3]);
        let len = (f.probs[i].clamp(0.0, 1.0) * bar_max as f32).round() as i64;
        fill_rect(
            img,
            px + 2 * s + text_w,
            ry + s,
            len,
            6 * s,
            EMOTION_COLORS[i],
            1.0,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, y: f32, best: usize) -> FaceView {
        let mut probs = [0.02; NUM_CLASSES];
        probs[best] = 0.86;
        FaceView {
            bbox: FaceBox {
                x,
                y,
                w: 120.0,
                h: 140.0,
                score: 0.9,
                landmarks: [
                    [x + 40.0, y + 50.0],
                    [x + 80.0, y + 50.0],
                    [0.0; 2],
                    [0.0; 2],
                    [0.0; 2],
                ],
            },
            probs,
            clusters: (0..NUM_PATCHES as u32).map(|i| i % 2).collect(),
        }
    }

    #[test]
    fn text_renders_the_font_glyphs() {
        let mut img = RgbImage::new(40, 10);
        draw_text(&mut img, 0, 0, 1, [255, 255, 255], "I");
        // The legacy 'I' glyph: rows 0..7 hold a centred vertical stroke.
        let lit: usize = img.pixels().filter(|p| p.0[0] == 255).count();
        let expected: u32 = BASIC_LEGACY[b'I' as usize].iter().map(|b| b.count_ones()).sum();
        assert_eq!(lit, expected as usize);
        assert!(lit > 0);
    }

    #[test]
    fn boxes_and_labels_are_drawn_in_the_emotion_colour_and_clipped() {
        let mut img = RgbImage::new(640, 480);
        let faces = [face(200.0, 150.0, 4), face(560.0, 400.0, 6)]; // second runs off the frame
        let hud = Hud {
            fps: 30.0,
            method: "spectral".into(),
            k: 2,
            dropped: 3,
            alert: Some("camera 0: read failed".into()),
        };
        draw(&mut img, &faces, &hud, true, true);
        // Box edge pixel in happy's colour.
        assert_eq!(img.get_pixel(200, 220).0, EMOTION_COLORS[4]);
        // Some pixels in sad's colour (clipped second box).
        assert!(img.pixels().any(|p| p.0 == EMOTION_COLORS[6]));
        // Cluster tint changed pixels inside the face.
        assert_ne!(img.get_pixel(260, 220).0, [0, 0, 0]);
        // Alert text in red.
        assert!(img.pixels().any(|p| p.0 == [255, 80, 80]));
    }
}
