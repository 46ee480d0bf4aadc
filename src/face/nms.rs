//! Greedy non-maximum suppression over scored face boxes.

use crate::face::FaceBox;

/// Sorts `boxes` by descending score and drops every box whose IoU with a kept,
/// higher-scored box exceeds `iou_threshold`; CenterFace fires on several neighbouring
/// heat-map cells per face, and this keeps one box per face.
pub fn nms(mut boxes: Vec<FaceBox>, iou_threshold: f32) -> Vec<FaceBox> {
    boxes.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<FaceBox> = Vec::with_capacity(boxes.len().min(16));
    for b in boxes {
        if kept.iter().all(|k| k.iou(&b) <= iou_threshold) {
            kept.push(b);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x: f32, score: f32) -> FaceBox {
        FaceBox {
            x,
            y: 0.0,
            w: 10.0,
            h: 10.0,
            score,
            landmarks: [[0.0; 2]; 5],
        }
    }

    #[test]
    fn keeps_best_of_overlapping_and_all_disjoint() {
        let kept = nms(vec![b(0.0, 0.6), b(1.0, 0.9), b(50.0, 0.7)], 0.3);
        let xs: Vec<f32> = kept.iter().map(|k| k.x).collect();
        assert_eq!(xs, vec![1.0, 50.0]);
    }
}
