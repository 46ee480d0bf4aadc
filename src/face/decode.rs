//! Turns CenterFace's four output maps into face boxes in frame pixels.
//!
//! CenterFace predicts, on a grid 4× coarser than its input, a face-centre heat-map, the
//! log of the box size, a sub-cell offset of the centre and five landmarks relative to the
//! box. Following the published post-processing (CenterFace paper, arXiv 1911.03599, and its
//! reference demo), for a grid cell (row r, column c):
//! - box height = exp(scale[0]) · 4, box width = exp(scale[1]) · 4 (input pixels);
//! - centre x = (c + offset[1] + 0.5) · 4, centre y = (r + offset[0] + 0.5) · 4;
//! - landmark k: x = left + lm[2k+1] · width, y = top + lm[2k] · height.
//!
//! Here candidates are heat-map local maxima (3×3) above the threshold; the box's unclipped
//! corner anchors the landmarks, and boxes are clipped to the frame only at the end.

use crate::face::{FaceBox, InputGeometry};

/// Down-sampling factor between the network input and its output grid.
pub const STRIDE: f32 = 4.0;

/// Borrowed views of the network's four outputs for one image (batch index 0), row-major.
#[derive(Debug, Clone, Copy)]
pub struct RawMaps<'a> {
    /// Output grid width (input width / 4).
    pub grid_w: usize,
    /// Output grid height (input height / 4).
    pub grid_h: usize,
    /// Heat-map, `grid_h * grid_w` sigmoid scores.
    pub heat: &'a [f32],
    /// Log box size, 2 planes: height, width.
    pub scale: &'a [f32],
    /// Centre offset in cells, 2 planes: y, x.
    pub offset: &'a [f32],
    /// Landmarks relative to the box, 10 planes: y0, x0, y1, x1, … y4, x4.
    pub landmarks: &'a [f32],
}

impl RawMaps<'_> {
    /// Checks that every slice has the length its grid implies.
    pub fn check(&self) -> Result<(), String> {
        let n = self.grid_w * self.grid_h;
        let want = [
            ("heat-map", self.heat.len(), n),
            ("scale", self.scale.len(), 2 * n),
            ("offset", self.offset.len(), 2 * n),
            ("landmarks", self.landmarks.len(), 10 * n),
        ];
        for (name, got, expect) in want {
            if got != expect {
                return Err(format!(
                    "{name} output has {got} values, expected {expect} for a {}x{} grid",
                    self.grid_w, self.grid_h
                ));
            }
        }
        Ok(())
    }
}

/// True when cell (r, c) is not smaller than any of its 8 neighbours.
fn is_local_max(heat: &[f32], gw: usize, gh: usize, r: usize, c: usize) -> bool {
    let v = heat[r * gw + c];
    let (r0, r1) = (r.saturating_sub(1), (r + 1).min(gh - 1));
    let (c0, c1) = (c.saturating_sub(1), (c + 1).min(gw - 1));
    (r0..=r1).all(|rr| (c0..=c1).all(|cc| heat[rr * gw + cc] <= v))
}

/// Decodes every heat-map peak above `threshold` into a [`FaceBox`] in frame pixels
/// (unsorted, before NMS). Boxes are clipped to the frame; degenerate ones are dropped.
pub fn decode(maps: &RawMaps<'_>, geom: &InputGeometry, threshold: f32) -> Vec<FaceBox> {
    let (gw, gh) = (maps.grid_w, maps.grid_h);
    let n = gw * gh;
    if n == 0 || maps.check().is_err() {
        return Vec::new();
    }
    let (sx, sy) = (geom.sx(), geom.sy());
    let (fw, fh) = (geom.frame_w as f32, geom.frame_h as f32);
    let mut out = Vec::new();
    for r in 0..gh {
        for c in 0..gw {
            let i = r * gw + c;
            let score = maps.heat[i];
            let above = score > threshold; // false for NaN scores too
            if !above || !is_local_max(maps.heat, gw, gh, r, c) {
                continue;
            }
            let bh = maps.scale[i].exp() * STRIDE;
            let bw = maps.scale[n + i].exp() * STRIDE;
            let cy = (r as f32 + maps.offset[i] + 0.5) * STRIDE;
            let cx = (c as f32 + maps.offset[n + i] + 0.5) * STRIDE;
            let (left, top) = (cx - 0.5 * bw, cy - 0.5 * bh);
            let mut landmarks = [[0.0f32; 2]; 5];
            for (k, lm) in landmarks.iter_mut().enumerate() {
                let ly = top + maps.landmarks[2 * k * n + i] * bh;
                let lx = left + maps.landmarks[(2 * k + 1) * n + i] * bw;
                *lm = [lx * sx, ly * sy];
            }
            let x0 = (left * sx).clamp(0.0, fw);
            let y0 = (top * sy).clamp(0.0, fh);
            let x1 = ((left + bw) * sx).clamp(0.0, fw);
            let y1 = ((top + bh) * sy).clamp(0.0, fh);
            if !(x1 - x0 >= 1.0 && y1 - y0 >= 1.0) {
                continue;
            }
            out.push(FaceBox {
                x: x0,
                y: y0,
                w: x1 - x0,
                h: y1 - y0,
                score,
                landmarks,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One peak at cell (r, c) of an 8×8 grid with the given raw head values.
    fn maps_with_peak(r: usize, c: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
        let n = 64;
        let mut heat = vec![0.01; n];
        heat[r * 8 + c] = 0.9;
        heat[r * 8 + c + 1] = 0.7; // a weaker neighbour: not a local maximum
        let mut scale = vec![0.0; 2 * n];
        scale[r * 8 + c] = (12.0f32 / 4.0).ln(); // height 12 px
        scale[n + r * 8 + c] = (8.0f32 / 4.0).ln(); // width 8 px
        let mut offset = vec![0.0; 2 * n];
        offset[r * 8 + c] = 0.25; // y
        offset[n + r * 8 + c] = -0.25; // x
        let mut lm = vec![0.5; 10 * n];
        lm[r * 8 + c] = 0.25; // landmark 0 y
        lm[n + r * 8 + c] = 0.0; // landmark 0 x
        (heat, scale, offset, lm)
    }

    #[test]
    fn decodes_box_offset_and_landmarks_in_frame_pixels() {
        let (heat, scale, offset, landmarks) = maps_with_peak(3, 2);
        let maps = RawMaps {
            grid_w: 8,
            grid_h: 8,
            heat: &heat,
            scale: &scale,
            offset: &offset,
            landmarks: &landmarks,
        };
        // 32×32 network input from a 64×32 frame: x scaled by 2, y by 1.
        let geom = InputGeometry {
            net_w: 32,
            net_h: 32,
            frame_w: 64,
            frame_h: 32,
        };
        let boxes = decode(&maps, &geom, 0.5);
        assert_eq!(boxes.len(), 1, "{boxes:?}");
        let b = boxes[0];
        // centre x = (2 - 0.25 + 0.5)·4 = 9, y = (3 + 0.25 + 0.5)·4 = 15; 8×12 box.
        let close = |a: f32, e: f32| (a - e).abs() < 1e-4;
        assert!(close(b.x, (9.0 - 4.0) * 2.0) && close(b.w, 16.0), "{b:?}");
        assert!(close(b.y, 15.0 - 6.0) && close(b.h, 12.0), "{b:?}");
        assert!(close(b.score, 0.9));
        // landmark 0: x = left + 0·w, y = top + 0.25·h.
        assert!(
            close(b.landmarks[0][0], 10.0) && close(b.landmarks[0][1], 12.0),
            "{b:?}"
        );
        // others at the box centre (0.5, 0.5).
        assert!(close(b.landmarks[2][0], 18.0) && close(b.landmarks[2][1], 15.0));
    }

    #[test]
    fn below_threshold_nan_or_malformed_maps_give_nothing() {
        let (mut heat, scale, offset, landmarks) = maps_with_peak(3, 2);
        let geom = InputGeometry::new(32, 32, 32);
        let mk = |heat: &[f32]| {
            decode(
                &RawMaps {
                    grid_w: 8,
                    grid_h: 8,
                    heat,
                    scale: &scale,
                    offset: &offset,
                    landmarks: &landmarks,
                },
                &geom,
                0.95,
            )
        };
        assert!(mk(&heat).is_empty());
        heat[0] = f32::NAN;
        assert!(mk(&heat).is_empty());
        assert!(mk(&heat[..10]).is_empty());
    }
}
