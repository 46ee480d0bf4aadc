//! Network input size for a frame, and the mapping of network pixels back to frame pixels.

/// How a frame is resized into the network: size of the input tensor and the per-axis scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputGeometry {
    /// Network input width (multiple of 32).
    pub net_w: u32,
    /// Network input height (multiple of 32).
    pub net_h: u32,
    /// Original frame width.
    pub frame_w: u32,
    /// Original frame height.
    pub frame_h: u32,
}

/// Rounds `v` to the nearest multiple of 32, at least 32 (CenterFace's stride constraint).
pub fn round32(v: f32) -> u32 {
    let k = (v / 32.0).round().max(1.0);
    (k as u32).saturating_mul(32)
}

impl InputGeometry {
    /// Picks the network size for a `frame_w`×`frame_h` frame at the configured `width`:
    /// width rounded to a multiple of 32, height scaled by the same factor and rounded too.
    pub fn new(frame_w: u32, frame_h: u32, width: u32) -> Self {
        let net_w = round32(width as f32);
        let fw = frame_w.max(1) as f32;
        let fh = frame_h.max(1) as f32;
        // Cap the height so that a very tall, thin frame cannot make a huge tensor.
        let net_h = round32(fh * net_w as f32 / fw).min(net_w.saturating_mul(4));
        Self {
            net_w,
            net_h,
            frame_w,
            frame_h,
        }
    }

    /// Frame pixels per network pixel along x.
    pub fn sx(&self) -> f32 {
        self.frame_w as f32 / self.net_w as f32
    }

    /// Frame pixels per network pixel along y.
    pub fn sy(&self) -> f32 {
        self.frame_h as f32 / self.net_h as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webcam_frame_maps_to_320x256() {
        let g = InputGeometry::new(640, 480, 320);
        assert_eq!((g.net_w, g.net_h), (320, 256));
        assert!((g.sx() - 2.0).abs() < 1e-6 && (g.sy() - 1.875).abs() < 1e-6);
    }

    #[test]
    fn sizes_are_multiples_of_32_and_bounded() {
        for (w, h, cfg) in [(33, 17, 320), (1, 1, 320), (5, 3000, 320), (3000, 5, 333)] {
            let g = InputGeometry::new(w, h, cfg);
            assert!(
                g.net_w.is_multiple_of(32) && g.net_h.is_multiple_of(32) && g.net_h >= 32,
                "{g:?}"
            );
            assert!(g.net_h <= 4 * g.net_w, "{g:?}");
        }
        assert_eq!(round32(333.0), 320);
        assert_eq!(round32(0.0), 32);
    }
}
