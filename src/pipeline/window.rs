//! The on-screen window (minifb): shows annotated frames; Esc or q closes it.

use anyhow::{Context, Result};
use image::RgbImage;
use minifb::{Key, Window, WindowOptions};

/// A window sized to the first frame shown.
pub struct Display {
    title: String,
    window: Option<Window>,
    size: (usize, usize),
    buffer: Vec<u32>,
    closed: bool,
}

impl Display {
    /// Prepares a window titled `title` (opened on the first frame, at its size).
    pub fn new(title: &str) -> Result<Self> {
        Ok(Self {
            title: title.to_string(),
            window: None,
            size: (0, 0),
            buffer: vec![],
            closed: false,
        })
    }

    /// Shows `img` (frames of another size are scaled to the window).
    pub fn show(&mut self, img: &RgbImage) -> Result<()> {
        if self.window.is_none() {
            let (w, h) = (img.width().max(1) as usize, img.height().max(1) as usize);
            let win = Window::new(&self.title, w, h, WindowOptions::default()).with_context(|| {
                "cannot open a window (no display? set DISPLAY, or run with --headless)".to_string()
            })?;
            self.window = Some(win);
            self.size = (w, h);
        }
        let (w, h) = self.size;
        self.buffer.resize(w * h, 0);
        let (iw, ih) = (img.width().max(1) as usize, img.height().max(1) as usize);
        for y in 0..h {
            let sy = (y * ih / h).min(ih - 1);
            for x in 0..w {
                let sx = (x * iw / w).min(iw - 1);
                let p = img.get_pixel(sx as u32, sy as u32).0;
                self.buffer[y * w + x] = (p[0] as u32) << 16 | (p[1] as u32) << 8 | p[2] as u32;
            }
        }
        if let Some(win) = &mut self.window {
            win.update_with_buffer(&self.buffer, w, h)
                .context("updating the window")?;
            if !win.is_open() || win.is_key_down(Key::Escape) || win.is_key_down(Key::Q) {
                self.closed = true;
            }
        }
        Ok(())
    }

    /// True once the user closed the window.
    pub fn closed(&self) -> bool {
        self.closed || self.window.as_ref().is_some_and(|w| !w.is_open())
    }
}
