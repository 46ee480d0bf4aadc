//! Where results go: one JSON line per frame, annotated PNGs, and the window.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use image::RgbImage;
use serde_json::{Map, Value, json};

use super::overlay::{FaceView, Hud, draw};
use super::results::{FrameResult, FrameSink, RunStatus};
use crate::labels::Emotion;
use crate::model::Grouping;

/// Settings of [`Outputs`].
#[derive(Debug, Clone, Default)]
pub struct OutputOptions {
    /// JSONL destination: a file path, or `-` for stdout.
    pub jsonl: Option<String>,
    /// Folder for annotated PNG frames.
    pub save_annotated: Option<PathBuf>,
    /// Show a window.
    pub window: bool,
    /// Tint patches by cluster in the overlay.
    pub show_clusters: bool,
    /// Crops are eye-levelled (so cluster tints follow the rotation).
    pub align: bool,
    /// Patch grouping shown and written per frame.
    pub method: Grouping,
    /// k shown and written per frame.
    pub k: usize,
}

/// The sinks of a run.
pub struct Outputs {
    opts: OutputOptions,
    jsonl: Option<Box<dyn Write>>,
    #[cfg(feature = "window")]
    window: Option<super::window::Display>,
    last: Option<RgbImage>,
}

/// One frame as a JSON object (the `--jsonl` line format).
pub fn frame_json(r: &FrameResult, method: &Grouping, k: usize) -> Value {
    let faces: Vec<Value> = r
        .faces
        .iter()
        .map(|f| {
            let probs: Map<String, Value> = Emotion::ALL
                .iter()
                .zip(f.probs)
                .map(|(e, p)| (e.name().to_string(), json!(p)))
                .collect();
            json!({
                "box": [f.bbox.x, f.bbox.y, f.bbox.w, f.bbox.h],
                "score": f.bbox.score,
                "label": f.label.name(),
                "probs": probs,
                "track": f.track,
            })
        })
        .collect();
    json!({
        "frame": r.index,
        "t_ms": r.t_ms,
        "pts_ms": r.pts_ms,
        "latency_ms": r.latency_ms,
        "faces": faces,
        "method": method.to_string(),
        "k": k,
    })
}

impl Outputs {
    /// Opens every requested sink; fails naming the file, folder or display that cannot be used.
    pub fn new(opts: OutputOptions) -> Result<Self> {
        let jsonl: Option<Box<dyn Write>> = match opts.jsonl.as_deref() {
            None => None,
            Some("-") => Some(Box::new(std::io::stdout())),
            Some(p) => {
                Some(Box::new(BufWriter::new(File::create(p).with_context(|| {
                    format!("--jsonl {p}: cannot create the file")
                })?)))
            }
        };
        if let Some(d) = &opts.save_annotated {
            std::fs::create_dir_all(d)
                .with_context(|| format!("--save-annotated {}: cannot create the folder", d.display()))?;
        }
        #[cfg(not(feature = "window"))]
        if opts.window {
            anyhow::bail!("this build has no window support (the `window` feature is off); use --headless");
        }
        Ok(Self {
            #[cfg(feature = "window")]
            window: if opts.window {
                Some(super::window::Display::new("paca-fer")?)
            } else {
                None
            },
            opts,
            jsonl,
            last: None,
        })
    }
}

impl FrameSink for Outputs {
    /// Hands one processed frame to every sink.
    fn emit(&mut self, r: &FrameResult, status: &RunStatus) -> Result<()> {
        if let Some(w) = &mut self.jsonl {
            writeln!(w, "{}", frame_json(r, &self.opts.method, self.opts.k)).context("writing --jsonl")?;
        }
        let needs_image = self.opts.save_annotated.is_some() || self.opts.window;
        if !needs_image {
            return Ok(());
        }
        let mut img = (*r.image).clone();
        let views: Vec<FaceView> = r
            .faces
            .iter()
            .map(|f| FaceView {
                bbox: f.bbox,
                probs: f.probs,
                clusters: f.clusters.clone(),
            })
            .collect();
        let hud = Hud {
            fps: status.fps,
            method: self.opts.method.to_string(),
            k: self.opts.k,
            dropped: status.dropped,
            alert: status.alert.clone(),
        };
        draw(&mut img, &views, &hud, self.opts.show_clusters, self.opts.align);
        if let Some(d) = &self.opts.save_annotated {
            let p = d.join(format!("frame_{:06}.png", r.index));
            img.save(&p).with_context(|| format!("writing {}", p.display()))?;
        }
        #[cfg(feature = "window")]
        if let Some(w) = &mut self.window {
            w.show(&img)?;
        }
        self.last = Some(img);
        Ok(())
    }

    /// No new frame for a while: keep the window responsive and show why.
    fn idle(&mut self, alert: &str) {
        #[cfg(feature = "window")]
        if let Some(w) = &mut self.window {
            let mut img = self.last.clone().unwrap_or_else(|| RgbImage::new(640, 480));
            super::overlay::draw(
                &mut img,
                &[],
                &Hud {
                    alert: Some(alert.to_string()),
                    ..Hud::default()
                },
                false,
                false,
            );
            let _ = w.show(&img);
        }
        let _ = alert;
    }

    /// True once the user closed the window (or pressed Esc/q).
    fn closed(&self) -> bool {
        #[cfg(feature = "window")]
        if let Some(w) = &self.window {
            return w.closed();
        }
        false
    }

    /// Flushes the JSONL stream.
    fn finish(&mut self) -> Result<()> {
        if let Some(w) = &mut self.jsonl {
            w.flush().context("flushing --jsonl")?;
        }
        Ok(())
    }
}
