//! Per-face temporal smoothing: faces are matched across frames by box overlap and each
//! track keeps an exponential moving average of its class probabilities, so labels do not
//! flicker from frame to frame.

use crate::face::FaceBox;
use crate::labels::NUM_CLASSES;

/// Smoothing settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackConfig {
    /// Weight of the previous average in `[0, 1)`: 0 shows raw per-frame output; 0.6 halves a
    /// change in about 1.4 frames.
    pub ema: f32,
    /// Minimum IoU for a detection to continue a track.
    pub min_iou: f32,
    /// Frames a track survives without a matching detection.
    pub max_missed: u32,
}

impl Default for TrackConfig {
    /// EMA 0.6, IoU 0.3, 5 missed frames.
    fn default() -> Self {
        Self {
            ema: 0.6,
            min_iou: 0.3,
            max_missed: 5,
        }
    }
}

#[derive(Debug, Clone)]
struct Track {
    id: u64,
    bbox: FaceBox,
    probs: [f32; NUM_CLASSES],
    missed: u32,
}

/// Matches faces to tracks and smooths their probabilities.
#[derive(Debug, Clone)]
pub struct Tracker {
    cfg: TrackConfig,
    tracks: Vec<Track>,
    next_id: u64,
}

/// One face after smoothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Smoothed {
    /// Stable id of the track the face belongs to.
    pub track: u64,
    /// Smoothed class probabilities (sum to 1 when the inputs do).
    pub probs: [f32; NUM_CLASSES],
}

impl Tracker {
    /// An empty tracker.
    pub fn new(cfg: TrackConfig) -> Self {
        Self {
            cfg,
            tracks: vec![],
            next_id: 0,
        }
    }

    /// Live tracks.
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    /// True when no track is live.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// Feeds one frame's faces (box, raw probabilities) and returns the smoothed result for each,
    /// in input order. Matching is greedy by descending IoU; unmatched faces start new tracks;
    /// tracks unmatched for more than `max_missed` frames are dropped.
    pub fn update(&mut self, faces: &[(FaceBox, [f32; NUM_CLASSES])]) -> Vec<Smoothed> {
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (fi, (b, _)) in faces.iter().enumerate() {
            for (ti, t) in self.tracks.iter().enumerate() {
                let iou = b.iou(&t.bbox);
                if iou >= self.cfg.min_iou {
                    pairs.push((iou, fi, ti));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut face_track: Vec<Option<usize>> = vec![None; faces.len()];
        let mut taken = vec![false; self.tracks.len()];
        for (_, fi, ti) in pairs {
            if face_track[fi].is_none() && !taken[ti] {
                face_track[fi] = Some(ti);
                taken[ti] = true;
            }
        }
        let a = self.cfg.ema.clamp(0.0, 0.999);
        let mut out = Vec::with_capacity(faces.len());
        for (fi, (b, p)) in faces.iter().enumerate() {
            match face_track[fi] {
                Some(ti) => {
                    let t = &mut self.tracks[ti];
                    for (s, &x) in t.probs.iter_mut().zip(p) {
                        *s = a * *s + (1.0 - a) * x;
                    }
                    t.bbox = *b;
                    t.missed = 0;
                    out.push(Smoothed {
                        track: t.id,
                        probs: t.probs,
                    });
                }
                None => {
                    let id = self.next_id;
                    self.next_id += 1;
                    self.tracks.push(Track {
                        id,
                        bbox: *b,
                        probs: *p,
                        missed: 0,
                    });
                    taken.push(true);
                    out.push(Smoothed { track: id, probs: *p });
                }
            }
        }
        let max_missed = self.cfg.max_missed;
        let mut keep = taken.into_iter();
        self.tracks.retain_mut(|t| {
            if !keep.next().unwrap_or(true) {
                t.missed += 1;
            }
            t.missed <= max_missed
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(x: f32, y: f32) -> FaceBox {
        FaceBox {
            x,
            y,
            w: 100.0,
            h: 100.0,
            score: 0.9,
            landmarks: [[0.0; 2]; 5],
        }
    }

    fn onehot(c: usize) -> [f32; NUM_CLASSES] {
        let mut p = [0.0; NUM_CLASSES];
        p[c] = 1.0;
        p
    }

    fn argmax(p: &[f32; NUM_CLASSES]) -> usize {
        crate::labels::argmax(p)
    }

    #[test]
    fn a_one_frame_glitch_does_not_flip_the_label() {
        let mut t = Tracker::new(TrackConfig::default());
        let mut labels = vec![];
        for i in 0..10 {
            let raw = if i == 5 { onehot(2) } else { onehot(4) };
            let s = t.update(&[(bx(10.0 + i as f32, 10.0), raw)]);
            labels.push(argmax(&s[0].probs));
            assert!((s[0].probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
        assert!(labels.iter().all(|&l| l == 4), "{labels:?}");
        // Without smoothing the glitch shows.
        let mut raw = Tracker::new(TrackConfig {
            ema: 0.0,
            ..TrackConfig::default()
        });
        let s: Vec<usize> = (0..10)
            .map(|i| {
                argmax(&raw.update(&[(bx(10.0, 10.0), if i == 5 { onehot(2) } else { onehot(4) })])[0].probs)
            })
            .collect();
        assert_eq!(s[5], 2);
    }

    #[test]
    fn two_faces_keep_their_own_tracks_and_a_new_face_starts_fresh() {
        let mut t = Tracker::new(TrackConfig::default());
        let a = t.update(&[(bx(0.0, 0.0), onehot(0)), (bx(300.0, 0.0), onehot(1))]);
        // Same faces, listed in the other order and moved a little.
        let b = t.update(&[(bx(305.0, 2.0), onehot(1)), (bx(4.0, 1.0), onehot(0))]);
        assert_eq!(b[0].track, a[1].track);
        assert_eq!(b[1].track, a[0].track);
        assert_eq!(argmax(&b[0].probs), 1);
        assert_eq!(argmax(&b[1].probs), 0);
        let c = t.update(&[(bx(600.0, 300.0), onehot(6))]);
        assert!(c[0].track > a[1].track);
        assert_eq!(c[0].probs, onehot(6));
    }

    #[test]
    fn tracks_expire_after_max_missed_frames() {
        let mut t = Tracker::new(TrackConfig {
            max_missed: 2,
            ..TrackConfig::default()
        });
        let first = t.update(&[(bx(0.0, 0.0), onehot(3))]);
        t.update(&[]);
        t.update(&[]);
        assert_eq!(t.len(), 1);
        let back = t.update(&[(bx(0.0, 0.0), onehot(3))]);
        assert_eq!(back[0].track, first[0].track, "still within max_missed");
        for _ in 0..3 {
            t.update(&[]);
        }
        assert!(t.is_empty());
        let again = t.update(&[(bx(0.0, 0.0), onehot(3))]);
        assert_ne!(again[0].track, first[0].track);
    }
}
