//! Frames through GStreamer: video files and network streams (`uridecodebin`) and any pipeline
//! ending in an `appsink` (a Jetson CSI camera, hardware decoding), as one [`FrameSource`].
//!
//! Recorded files are read in order, every frame, with their stream timestamps. Live streams and
//! pipelines reconnect after an error, the end of the stream or a stall: the source reports the
//! fault as transient, and the capture stage retries with back-off and gives up as it does for a
//! camera.

use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app::AppSink;
use image::RgbImage;

use super::source::{FrameSource, GstSpec, SourceError, SourceOpener};

/// The `gst-launch` description of an input, ending in an RGB `appsink`.
fn description(spec: &GstSpec) -> String {
    match spec {
        GstSpec::Uri(uri) => format!(
            "uridecodebin uri=\"{uri}\" ! videoconvert ! video/x-raw,format=RGB ! appsink name=paca_sink"
        ),
        GstSpec::Pipeline(p) => p.clone(),
    }
}

/// How a GStreamer source behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct GstOptions {
    /// Live (lossy lanes, reconnect on faults) or recorded (every frame, in order).
    pub live: bool,
    /// Times to play a recorded input (`None`: forever).
    pub loops: Option<u64>,
    /// No frame for this long is a stall.
    pub stall: Duration,
}

/// A running pipeline and its sink.
struct Running {
    pipeline: gst::Pipeline,
    sink: AppSink,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Frames pulled from a GStreamer `appsink` as RGB images.
pub struct GstFrames {
    spec: GstSpec,
    opts: GstOptions,
    running: Option<Running>,
    done_loops: u64,
    frames: u64,
    pts: Option<Duration>,
}

impl GstFrames {
    /// Builds and starts the pipeline; fails naming the input when GStreamer cannot.
    pub fn open(spec: GstSpec, opts: GstOptions) -> Result<Self, SourceError> {
        let mut s = Self {
            spec,
            opts,
            running: None,
            done_loops: 0,
            frames: 0,
            pts: None,
        };
        s.running = Some(s.start().map_err(SourceError::Gone)?);
        Ok(s)
    }

    fn start(&self) -> Result<Running, String> {
        let name = self.spec.name();
        gst::init().map_err(|e| format!("{name}: GStreamer cannot start ({e})"))?;
        let element = gst::parse::launch(&description(&self.spec))
            .map_err(|e| format!("{name}: not a GStreamer pipeline GStreamer can build ({e})"))?;
        let pipeline = match element.downcast::<gst::Pipeline>() {
            Ok(p) => p,
            Err(_) => return Err(format!("{name}: expected a pipeline ending in `appsink`")),
        };
        let sink = pipeline
            .iterate_sinks()
            .into_iter()
            .flatten()
            .find_map(|e| e.downcast::<AppSink>().ok())
            .ok_or_else(|| {
                format!("{name}: the pipeline has no appsink (end it with `videoconvert ! video/x-raw,format=RGB ! appsink`)")
            })?;
        sink.set_caps(Some(
            &gst::Caps::builder("video/x-raw").field("format", "RGB").build(),
        ));
        sink.set_sync(false);
        if self.opts.live {
            // Only the newest frame is worth having.
            sink.set_max_buffers(1);
            sink.set_drop(true);
        } else {
            sink.set_max_buffers(4);
            sink.set_drop(false);
        }
        let running = Running { pipeline, sink };
        if running.pipeline.set_state(gst::State::Playing).is_err() {
            let why = bus_error(&running.pipeline).unwrap_or_else(|| "cannot start playing".into());
            return Err(format!("{name}: {why}"));
        }
        Ok(running)
    }

    /// Pulls the next sample, watching the bus for errors; `Ok(None)` at the end of the stream.
    fn pull(&self, run: &Running) -> Result<Option<gst::Sample>, String> {
        let started = Instant::now();
        loop {
            if let Some(s) = run.sink.try_pull_sample(gst::ClockTime::from_mseconds(50)) {
                return Ok(Some(s));
            }
            if let Some(e) = bus_error(&run.pipeline) {
                return Err(e);
            }
            if run.sink.is_eos() {
                return Ok(None);
            }
            if started.elapsed() >= self.opts.stall {
                return Err(format!(
                    "stalled: no frame for {:.1} s",
                    started.elapsed().as_secs_f64()
                ));
            }
        }
    }

    /// A fault: live inputs reconnect on the next call (transient); recorded ones are gone.
    fn fault(&mut self, why: String) -> SourceError {
        let msg = format!("{}: {why}", self.spec.name());
        self.running = None;
        if self.opts.live {
            SourceError::Transient(format!("{msg}; reconnecting"))
        } else {
            self.opts.loops = Some(0);
            SourceError::Gone(msg)
        }
    }
}

impl FrameSource for GstFrames {
    fn next_frame(&mut self) -> Result<Option<RgbImage>, SourceError> {
        loop {
            if self.running.is_none() {
                if !self.opts.live && self.opts.loops.is_some_and(|n| self.done_loops >= n) {
                    return Ok(None);
                }
                match self.start() {
                    Ok(r) => self.running = Some(r),
                    Err(e) if self.opts.live => {
                        return Err(SourceError::Transient(format!("{e}; reconnecting")));
                    }
                    Err(e) => return Err(SourceError::Gone(e)),
                }
            }
            let pulled = match &self.running {
                Some(run) => self.pull(run),
                None => continue,
            };
            match pulled {
                Ok(Some(sample)) => {
                    let (img, pts) = sample_to_rgb(&sample).map_err(|e| {
                        SourceError::Transient(format!("{}: frame {}: {e}", self.spec.name(), self.frames))
                    })?;
                    self.frames += 1;
                    self.pts = pts;
                    return Ok(Some(img));
                }
                Ok(None) if self.opts.live => return Err(self.fault("end of stream".into())),
                Ok(None) => {
                    self.running = None;
                    self.done_loops += 1;
                    if self.frames == 0 {
                        return Err(SourceError::Gone(format!(
                            "{}: the stream ended before its first frame",
                            self.spec.name()
                        )));
                    }
                }
                Err(e) => return Err(self.fault(e)),
            }
        }
    }

    fn is_live(&self) -> bool {
        self.opts.live
    }

    fn describe(&self) -> String {
        format!("GStreamer {}", self.spec.name())
    }

    fn timestamp(&self) -> Option<Duration> {
        self.pts
    }
}

/// The first error message on the pipeline's bus, with the element that raised it.
fn bus_error(pipeline: &gst::Pipeline) -> Option<String> {
    let bus = pipeline.bus()?;
    let msg = bus.pop_filtered(&[gst::MessageType::Error])?;
    match msg.view() {
        gst::MessageView::Error(e) => {
            let src = e.src().map(|s| s.path_string().to_string()).unwrap_or_default();
            // GStreamer puts the flow's reason ("not-negotiated") in the debug text, not the error.
            let debug = e.debug().map(|d| d.to_string()).unwrap_or_default();
            let hint = if debug.contains("not-negotiated") {
                " (end the pipeline with `videoconvert ! video/x-raw,format=RGB ! appsink`)"
            } else {
                ""
            };
            Some(format!("{} [{src}]{hint}", e.error()))
        }
        _ => None,
    }
}

/// Copies an RGB sample's rows (which may be padded) into an image, with its timestamp.
fn sample_to_rgb(sample: &gst::Sample) -> Result<(RgbImage, Option<Duration>), String> {
    let caps = sample.caps().ok_or("sample without caps")?;
    let info = gstreamer_video::VideoInfo::from_caps(caps).map_err(|e| format!("unreadable caps ({e})"))?;
    if info.format() != gstreamer_video::VideoFormat::Rgb {
        return Err(format!("expected RGB frames, got {:?}", info.format()));
    }
    let buffer = sample.buffer().ok_or("sample without a buffer")?;
    let pts = buffer.pts().map(|t| Duration::from_nanos(t.nseconds()));
    let map = buffer
        .map_readable()
        .map_err(|e| format!("unreadable buffer ({e})"))?;
    let (w, h) = (info.width() as usize, info.height() as usize);
    let stride = info.stride()[0] as usize;
    let data = map.as_slice();
    let offset = info.offset()[0];
    if stride < w * 3 || data.len() < offset + stride * h.saturating_sub(1) + w * 3 {
        return Err(format!("a {w}×{h} frame in a buffer of {} bytes", data.len()));
    }
    let mut out = Vec::with_capacity(w * h * 3);
    for row in 0..h {
        let start = offset + row * stride;
        out.extend_from_slice(&data[start..start + w * 3]);
    }
    let img = RgbImage::from_raw(w as u32, h as u32, out).ok_or("frame size mismatch")?;
    Ok((img, pts))
}

/// Opener for a GStreamer input, run on the capture thread.
pub fn gst_opener(spec: GstSpec, opts: GstOptions) -> SourceOpener {
    Box::new(move || Ok(Box::new(GstFrames::open(spec, opts)?) as Box<dyn FrameSource>))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(stall_ms: u64) -> GstOptions {
        GstOptions {
            live: true,
            loops: None,
            stall: Duration::from_millis(stall_ms),
        }
    }

    #[test]
    fn test_pattern_frames_arrive_as_rgb_with_timestamps() {
        let spec = GstSpec::Pipeline(
            "videotestsrc num-buffers=3 pattern=red ! video/x-raw,width=34,height=20 ! videoconvert ! appsink"
                .into(),
        );
        let opts = GstOptions {
            live: false,
            loops: Some(1),
            stall: Duration::from_secs(10),
        };
        let mut src = GstFrames::open(spec, opts).unwrap();
        let mut n = 0;
        let mut last_pts = None;
        while let Some(f) = src.next_frame().unwrap() {
            // Odd width: rows are padded to 4 bytes in the buffer and must not leak into the image.
            assert_eq!(f.dimensions(), (34, 20));
            let p = f.get_pixel(33, 19);
            assert!(p[0] > 200 && p[1] < 40 && p[2] < 40, "{p:?}");
            let pts = src.timestamp().unwrap();
            assert!(last_pts.is_none_or(|l| pts > l));
            last_pts = Some(pts);
            n += 1;
        }
        assert_eq!(n, 3);
    }

    #[test]
    fn a_live_stream_that_ends_reconnects() {
        let spec = GstSpec::Pipeline(
            "videotestsrc num-buffers=2 ! video/x-raw,width=16,height=8 ! videoconvert ! appsink".into(),
        );
        let mut src = GstFrames::open(spec, live(5_000)).unwrap();
        let (mut frames, mut reconnects) = (0, 0);
        while frames < 6 {
            match src.next_frame() {
                Ok(Some(_)) => frames += 1,
                Ok(None) => panic!("a live source never ends by itself"),
                Err(SourceError::Transient(m)) => {
                    assert!(m.contains("end of stream"), "{m}");
                    reconnects += 1;
                }
                Err(SourceError::Gone(m)) => panic!("{m}"),
            }
        }
        assert!(reconnects >= 2, "{reconnects}");
    }

    #[test]
    fn a_stalled_stream_is_reported() {
        // An appsrc nobody feeds: the pipeline runs, no frame ever comes.
        let spec = GstSpec::Pipeline(
            "appsrc is-live=true caps=video/x-raw,format=RGB,width=8,height=8,framerate=10/1 ! appsink"
                .into(),
        );
        let mut src = GstFrames::open(spec, live(300)).unwrap();
        let t = Instant::now();
        match src.next_frame() {
            Err(SourceError::Transient(m)) => assert!(m.contains("stalled"), "{m}"),
            other => panic!(
                "expected a stall, got {:?}",
                other.map(|f| f.map(|i| i.dimensions()))
            ),
        }
        assert!(t.elapsed() >= Duration::from_millis(300));
    }

    #[test]
    fn bad_pipelines_name_what_is_wrong() {
        let opts = live(1_000);
        let e = GstFrames::open(
            GstSpec::Pipeline("no_such_element_xyz ! appsink".into()),
            opts.clone(),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("no_such_element_xyz"), "{e}");
        let e = GstFrames::open(GstSpec::Pipeline("videotestsrc ! fakesink".into()), opts)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("no appsink"), "{e}");
    }

    #[test]
    fn a_sink_that_cannot_get_rgb_says_how_to_end_the_pipeline() {
        // A fixed non-RGB format straight into the appsink cannot negotiate with its RGB caps.
        let spec = GstSpec::Pipeline("videotestsrc ! video/x-raw,format=GRAY8 ! appsink".into());
        let msg = match GstFrames::open(spec.clone(), live(2_000)).and_then(|mut s| s.next_frame()) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("a GRAY8 stream cannot reach an RGB appsink"),
        };
        assert!(msg.contains("videoconvert"), "{msg}");
    }
}
