//! Detection scoring against known face boxes: one-to-one matching by IoU (highest first), and the
//! recall, precision and mean IoU that `bench detect` and the detector tests report.

use crate::face::{CropSquare, FaceBox};

/// IoU at which a detection counts as finding a face (the PASCAL/WIDER FACE convention).
pub const MATCH_IOU: f32 = 0.5;

/// A detection paired with the face it found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match {
    /// Index into the true boxes.
    pub truth: usize,
    /// Index into the detections.
    pub detection: usize,
    /// Their intersection over union.
    pub iou: f32,
}

/// A box `[x, y, w, h]` in pixels as a [`FaceBox`] (score 1, no landmarks), for scoring.
pub fn truth_box([x, y, w, h]: [u32; 4]) -> FaceBox {
    FaceBox {
        x: x as f32,
        y: y as f32,
        w: w as f32,
        h: h as f32,
        score: 1.0,
        landmarks: [[0.0; 2]; 5],
    }
}

/// The square the face stage crops for `b` (side `max(w, h)·(1 + 2·margin)`, centred on the box, not
/// rotated) as a box: what is scored against the true squares, since that square, not the
/// detector's taller-than-wide box, is what the classifier sees.
pub fn crop_box(b: &FaceBox, margin: f32) -> FaceBox {
    let sq = CropSquare::of(b, margin, false, 1, 1);
    FaceBox {
        x: sq.cx - 0.5 * sq.side,
        y: sq.cy - 0.5 * sq.side,
        w: sq.side,
        h: sq.side,
        ..*b
    }
}

/// Pairs detections with true boxes one to one, greedily by descending IoU, keeping pairs with
/// IoU ≥ `min_iou`; each box is in at most one pair.
pub fn match_boxes(truth: &[FaceBox], found: &[FaceBox], min_iou: f32) -> Vec<Match> {
    let mut pairs: Vec<Match> = truth
        .iter()
        .enumerate()
        .flat_map(|(t, tb)| {
            found.iter().enumerate().map(move |(d, db)| Match {
                truth: t,
                detection: d,
                iou: tb.iou(db),
            })
        })
        .filter(|m| m.iou >= min_iou)
        .collect();
    pairs.sort_by(|a, b| b.iou.total_cmp(&a.iou));
    let (mut t_used, mut d_used) = (vec![false; truth.len()], vec![false; found.len()]);
    let mut out = Vec::new();
    for m in pairs {
        if !t_used[m.truth] && !d_used[m.detection] {
            t_used[m.truth] = true;
            d_used[m.detection] = true;
            out.push(m);
        }
    }
    out
}

/// Running counts over frames.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    /// Frames scored.
    pub frames: usize,
    /// True faces.
    pub faces: usize,
    /// Detections.
    pub detections: usize,
    /// Detections that found a face.
    pub matched: usize,
    /// Sum of the matched pairs' IoU.
    pub iou_sum: f64,
}

impl Tally {
    /// Scores one frame and returns its matches.
    pub fn add(&mut self, truth: &[FaceBox], found: &[FaceBox], min_iou: f32) -> Vec<Match> {
        let m = match_boxes(truth, found, min_iou);
        self.frames += 1;
        self.faces += truth.len();
        self.detections += found.len();
        self.matched += m.len();
        self.iou_sum += m.iter().map(|p| p.iou as f64).sum::<f64>();
        m
    }

    /// Found faces / true faces (1 when there are none).
    pub fn recall(&self) -> f64 {
        ratio(self.matched, self.faces)
    }

    /// Detections that found a face / all detections (1 when there are none).
    pub fn precision(&self) -> f64 {
        ratio(self.matched, self.detections)
    }

    /// Mean IoU of the matched pairs (0 when there are none).
    pub fn mean_iou(&self) -> f64 {
        if self.matched == 0 {
            0.0
        } else {
            self.iou_sum / self.matched as f64
        }
    }

    /// Detections that found no face, per frame.
    pub fn false_per_frame(&self) -> f64 {
        (self.detections - self.matched) as f64 / self.frames.max(1) as f64
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x: f32, y: f32, w: f32) -> FaceBox {
        FaceBox {
            x,
            y,
            w,
            h: w,
            score: 0.9,
            landmarks: [[0.0; 2]; 5],
        }
    }

    #[test]
    fn matching_is_one_to_one_and_prefers_the_best_overlap() {
        let truth = [b(0.0, 0.0, 100.0), b(300.0, 300.0, 50.0)];
        // Two detections on the first face (the closer one must win), one off by half, one stray.
        let found = [
            b(10.0, 0.0, 100.0),
            b(2.0, 0.0, 100.0),
            b(325.0, 300.0, 50.0),
            b(500.0, 0.0, 40.0),
        ];
        let m = match_boxes(&truth, &found, MATCH_IOU);
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!((m[0].truth, m[0].detection), (0, 1));
        assert!((m[0].iou - 98.0 / 102.0).abs() < 1e-6);
        // IoU of the half-shifted box: 25·50 / (2·2500 − 1250) = 1/3 < 0.5, unmatched.
        assert!((truth[1].iou(&found[2]) - 1.0 / 3.0).abs() < 1e-6);
        let mut t = Tally::default();
        t.add(&truth, &found, MATCH_IOU);
        t.add(&[], &[], MATCH_IOU);
        assert_eq!((t.frames, t.faces, t.detections, t.matched), (2, 2, 4, 1));
        assert!((t.recall() - 0.5).abs() < 1e-12 && (t.precision() - 0.25).abs() < 1e-12);
        assert!((t.false_per_frame() - 1.5).abs() < 1e-12);
        assert_eq!(truth_box([1, 2, 3, 4]).area(), 12.0);
        let sq = crop_box(
            &FaceBox {
                h: 120.0,
                ..b(10.0, 20.0, 100.0)
            },
            0.05,
        );
        assert_eq!((sq.x, sq.y, sq.w, sq.h), (-6.0, 14.0, 132.0, 132.0));
    }
}
