//! Re-detection around known faces: the detector runs on a small square window around each
//! face of the previous frame, at a small network width, so a frame whose faces are already
//! known costs a fraction of a full-frame pass (and the face gets more network pixels).

use crate::face::FaceBox;

/// A window's side, in multiples of the face box's larger side: room for the face to move and
/// for the context the detector needs at its edges.
pub const WINDOW_SCALE: f32 = 2.0;

/// Smallest IoU with the previous box for a detection in its window to continue that face.
pub const MIN_CONTINUE_IOU: f32 = 0.2;

/// A rectangle of frame pixels: left, top, width, height.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width (> 0).
    pub w: u32,
    /// Height (> 0).
    pub h: u32,
}

impl Window {
    /// The square window around `face`, [`WINDOW_SCALE`] times its larger side, shifted to lie
    /// inside a `frame_w`×`frame_h` frame (and clipped where the frame is smaller). `None` for
    /// an empty frame or a box outside it.
    pub fn around(face: &FaceBox, frame_w: u32, frame_h: u32) -> Option<Self> {
        let side = (face.w.max(face.h) * WINDOW_SCALE).round();
        if frame_w == 0 || frame_h == 0 || side.is_nan() || side < 1.0 {
            return None;
        }
        let (cx, cy) = face.center();
        if !(cx.is_finite() && cy.is_finite())
            || cx < 0.0
            || cy < 0.0
            || cx > frame_w as f32
            || cy > frame_h as f32
        {
            return None;
        }
        let axis = |centre: f32, len: u32| {
            let s = (side as u32).min(len);
            let start = (centre - s as f32 / 2.0).round().clamp(0.0, (len - s) as f32);
            (start as u32, s)
        };
        let (x, w) = axis(cx, frame_w);
        let (y, h) = axis(cy, frame_h);
        Some(Self { x, y, w, h })
    }

    /// `b` (found in this window's pixels) moved into frame pixels.
    pub fn to_frame(&self, mut b: FaceBox) -> FaceBox {
        let (dx, dy) = (self.x as f32, self.y as f32);
        b.x += dx;
        b.y += dy;
        for p in &mut b.landmarks {
            p[0] += dx;
            p[1] += dy;
        }
        b
    }
}

/// The detection that continues `prior`: the one overlapping it most, if by at least
/// [`MIN_CONTINUE_IOU`] (a window can hold the edge of a neighbouring face).
pub fn continuation(prior: &FaceBox, found: impl IntoIterator<Item = FaceBox>) -> Option<FaceBox> {
    found
        .into_iter()
        .map(|b| (prior.iou(&b), b))
        .filter(|(iou, _)| *iou >= MIN_CONTINUE_IOU)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, b)| b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(x: f32, y: f32, w: f32, h: f32) -> FaceBox {
        FaceBox {
            x,
            y,
            w,
            h,
            score: 0.9,
            landmarks: [[x + w / 2.0, y + h / 2.0]; 5],
        }
    }

    #[test]
    fn a_window_is_twice_the_face_centred_on_it() {
        let w = Window::around(&bx(300.0, 200.0, 50.0, 60.0), 640, 480).unwrap();
        assert_eq!((w.w, w.h), (120, 120));
        assert_eq!((w.x, w.y), (265, 170));
    }

    #[test]
    fn a_window_at_the_border_is_shifted_inside_and_clipped_to_the_frame() {
        let w = Window::around(&bx(600.0, -10.0, 60.0, 60.0), 640, 480).unwrap();
        assert_eq!((w.x, w.y, w.w, w.h), (520, 0, 120, 120));
        let big = Window::around(&bx(100.0, 50.0, 300.0, 300.0), 640, 480).unwrap();
        assert_eq!((big.w, big.h), (600, 480));
        assert!(big.x + big.w <= 640 && big.y == 0);
        assert_eq!(Window::around(&bx(700.0, 10.0, 20.0, 20.0), 640, 480), None);
        assert_eq!(Window::around(&bx(10.0, 10.0, 20.0, 20.0), 0, 480), None);
        assert_eq!(Window::around(&bx(10.0, 10.0, f32::NAN, 20.0), 640, 480), None);
    }

    #[test]
    fn boxes_found_in_a_window_move_back_to_frame_pixels() {
        let w = Window {
            x: 100,
            y: 40,
            w: 80,
            h: 80,
        };
        let b = w.to_frame(bx(10.0, 20.0, 30.0, 30.0));
        assert_eq!((b.x, b.y, b.w, b.h), (110.0, 60.0, 30.0, 30.0));
        assert_eq!(b.landmarks[0], [125.0, 75.0]);
    }

    #[test]
    fn the_continuation_is_the_best_overlap_and_a_neighbour_is_not_one() {
        let prior = bx(100.0, 100.0, 50.0, 50.0);
        let near = bx(104.0, 102.0, 50.0, 50.0);
        let nearer = bx(101.0, 100.0, 50.0, 50.0);
        let neighbour = bx(160.0, 100.0, 50.0, 50.0);
        assert_eq!(continuation(&prior, [near, nearer, neighbour]), Some(nearer));
        assert_eq!(continuation(&prior, [neighbour]), None);
        assert_eq!(continuation(&prior, []), None);
    }
}
