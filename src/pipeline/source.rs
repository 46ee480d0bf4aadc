//! Where frames come from: a camera, an image, a folder of frames in name order, or an
//! animated GIF — all behind one [`FrameSource`] trait so the runtime (and tests with fake,
//! faulty sources) treat them alike.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use image::codecs::gif::GifDecoder;
use image::{AnimationDecoder, DynamicImage, Frames, ImageDecoder, RgbImage};

use crate::data::is_image_file;

/// Why a source gave no frame this time.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// A fault that may pass (a failed read, an undecodable frame): skip it or retry.
    #[error("{0}")]
    Transient(String),
    /// The source is gone for good (unplugged camera, unreadable input).
    #[error("{0}")]
    Gone(String),
}

/// A stream of RGB frames.
pub trait FrameSource {
    /// The next frame; `Ok(None)` at the end of the input.
    fn next_frame(&mut self) -> Result<Option<RgbImage>, SourceError>;
    /// Live sources (cameras) may drop frames to stay current; recorded ones never do.
    fn is_live(&self) -> bool;
    /// Human-readable name for logs and the overlay.
    fn describe(&self) -> String;
    /// The stream timestamp of the last frame returned, where the source has one (video files).
    fn timestamp(&self) -> Option<std::time::Duration> {
        None
    }
}

/// Opens a source on the capture thread (cameras and GIF decoders need not be `Send`).
pub type SourceOpener = Box<dyn FnOnce() -> Result<Box<dyn FrameSource>, SourceError> + Send>;

/// Image files played in order, `loops` times (`None`: forever); unreadable files are
/// reported as transient faults so the runtime skips and counts them.
pub struct FileFrames {
    paths: Vec<PathBuf>,
    pos: usize,
    loops: Option<u64>,
    done_loops: u64,
}

impl FileFrames {
    /// Plays `paths` in the given order.
    pub fn new(paths: Vec<PathBuf>, loops: Option<u64>) -> Self {
        Self {
            paths,
            pos: 0,
            loops,
            done_loops: 0,
        }
    }
}

impl FrameSource for FileFrames {
    fn next_frame(&mut self) -> Result<Option<RgbImage>, SourceError> {
        if self.paths.is_empty() {
            return Ok(None);
        }
        if self.pos == self.paths.len() {
            self.done_loops += 1;
            if self.loops.is_some_and(|n| self.done_loops >= n) {
                return Ok(None);
            }
            self.pos = 0;
        }
        let path = &self.paths[self.pos];
        self.pos += 1;
        let bytes = std::fs::read(path)
            .map_err(|e| SourceError::Transient(format!("{}: cannot read ({e})", path.display())))?;
        crate::data::decode_image(&bytes)
            .map(|img| Some(img.to_rgb8()))
            .map_err(|e| SourceError::Transient(format!("{}: not a decodable image ({e})", path.display())))
    }

    fn is_live(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        match self.paths.len() {
            1 => self.paths[0].display().to_string(),
            n => format!("{n} frames"),
        }
    }
}

/// Frames of an animated GIF, decoded one at a time, played `loops` times (`None`: forever).
pub struct GifFrames {
    path: PathBuf,
    frames: Option<Frames<'static>>,
    loops: Option<u64>,
    done_loops: u64,
    yielded: u64,
}

impl GifFrames {
    /// Opens `path` (checked now, decoded lazily).
    pub fn open(path: &Path, loops: Option<u64>) -> Result<Self, SourceError> {
        let mut s = Self {
            path: path.to_path_buf(),
            frames: None,
            loops,
            done_loops: 0,
            yielded: 0,
        };
        s.frames = Some(s.decoder()?);
        Ok(s)
    }

    fn decoder(&self) -> Result<Frames<'static>, SourceError> {
        let file =
            File::open(&self.path).map_err(|e| SourceError::Gone(format!("{}: {e}", self.path.display())))?;
        let mut dec = GifDecoder::new(BufReader::new(file))
            .map_err(|e| SourceError::Gone(format!("{}: not a GIF ({e})", self.path.display())))?;
        dec.set_limits(crate::data::decode_limits())
            .map_err(|e| SourceError::Gone(format!("{}: {e}", self.path.display())))?;
        Ok(dec.into_frames())
    }
}

impl FrameSource for GifFrames {
    fn next_frame(&mut self) -> Result<Option<RgbImage>, SourceError> {
        loop {
            let frames = match &mut self.frames {
                Some(f) => f,
                None => return Ok(None),
            };
            match frames.next() {
                Some(Ok(f)) => {
                    self.yielded += 1;
                    return Ok(Some(DynamicImage::ImageRgba8(f.into_buffer()).to_rgb8()));
                }
                Some(Err(e)) => {
                    // A broken frame ends this pass; the decoder cannot resynchronise.
                    self.frames = None;
                    return Err(SourceError::Transient(format!(
                        "{}: frame {} undecodable ({e})",
                        self.path.display(),
                        self.yielded
                    )));
                }
                None => {
                    self.done_loops += 1;
                    if self.yielded == 0 || self.loops.is_some_and(|n| self.done_loops >= n) {
                        self.frames = None;
                        return Ok(None);
                    }
                    self.frames = Some(self.decoder()?);
                }
            }
        }
    }

    fn is_live(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// Delivers another source's frames no faster than `fps`, as a camera would (for latency
/// measurements: an unpaced file source would fill every queue).
pub struct Paced {
    inner: Box<dyn FrameSource>,
    period: std::time::Duration,
    next: Option<std::time::Instant>,
}

impl FrameSource for Paced {
    fn next_frame(&mut self) -> Result<Option<RgbImage>, SourceError> {
        let now = std::time::Instant::now();
        let due = self.next.unwrap_or(now);
        if due > now {
            std::thread::sleep(due - now);
        }
        self.next = Some(due.max(now) + self.period);
        self.inner.next_frame()
    }

    fn is_live(&self) -> bool {
        self.inner.is_live()
    }

    fn timestamp(&self) -> Option<std::time::Duration> {
        self.inner.timestamp()
    }

    fn describe(&self) -> String {
        format!(
            "{} at {:.0} FPS",
            self.inner.describe(),
            1.0 / self.period.as_secs_f64()
        )
    }
}

/// Wraps `opener` so its frames arrive at `fps` frames per second at most.
pub fn paced(opener: SourceOpener, fps: f64) -> SourceOpener {
    let period = std::time::Duration::from_secs_f64(1.0 / fps.max(0.001));
    Box::new(move || {
        Ok(Box::new(Paced {
            inner: opener()?,
            period,
            next: None,
        }) as Box<dyn FrameSource>)
    })
}

/// Extensions of video files played through GStreamer.
pub const VIDEO_EXTENSIONS: [&str; 10] = [
    "mp4", "mkv", "avi", "webm", "mov", "m4v", "mpg", "mpeg", "ts", "ogv",
];

/// What a `--input` argument names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputKind {
    /// An image, a folder of frames or a `.gif` (decoded by `image`).
    Frames,
    /// A video file (GStreamer): recorded, every frame in order.
    Video,
    /// A URI other than `file://` (`rtsp://`, `http://`, …): a live network stream.
    Stream,
}

impl InputKind {
    /// Classifies `--input` by its form: a URI scheme, else the file extension.
    pub fn of(input: &Path) -> Self {
        let s = input.to_string_lossy();
        if let Some((scheme, _)) = s.split_once("://") {
            return if scheme.eq_ignore_ascii_case("file") {
                Self::Video
            } else {
                Self::Stream
            };
        }
        let ext = input.extension().and_then(|e| e.to_str()).unwrap_or("");
        if VIDEO_EXTENSIONS.iter().any(|v| v.eq_ignore_ascii_case(ext)) {
            Self::Video
        } else {
            Self::Frames
        }
    }

    /// Live inputs use lossy lanes and reconnect; recorded ones deliver every frame.
    pub fn is_live(&self) -> bool {
        matches!(self, Self::Stream)
    }
}

/// The source `--input` names and whether it is live: frames, a video file or a network stream.
pub fn open_input(input: &Path, loops: Option<u64>) -> Result<(SourceOpener, bool)> {
    let kind = InputKind::of(input);
    match kind {
        InputKind::Frames => Ok((input_opener(input, loops)?, false)),
        InputKind::Video | InputKind::Stream => {
            let s = input.to_string_lossy().into_owned();
            if kind == InputKind::Video && !s.contains("://") && !input.is_file() {
                bail!("--input {}: no such video file", input.display());
            }
            Ok((video_opener(&s, kind.is_live(), loops)?, kind.is_live()))
        }
    }
}

/// The source a `--gst PIPELINE` describes (live: a camera or stream pipeline ending in `appsink`).
pub fn pipeline_opener(pipeline: &str) -> Result<SourceOpener> {
    if !pipeline.contains("appsink") {
        bail!(
            "--gst \"{pipeline}\": the pipeline must end in `appsink` (e.g. `... ! videoconvert ! video/x-raw,format=RGB ! appsink`)"
        );
    }
    gst_source(GstSpec::Pipeline(pipeline.to_string()), true, None)
}

fn video_opener(input: &str, live: bool, loops: Option<u64>) -> Result<SourceOpener> {
    let uri = if input.contains("://") {
        input.to_string()
    } else {
        let abs = std::path::absolute(input)
            .with_context(|| format!("--input {input}: cannot resolve the path"))?;
        file_uri(&abs)
    };
    gst_source(GstSpec::Uri(uri), live, loops)
}

/// `file://` URI of an absolute path, with the characters URIs reserve percent-encoded.
fn file_uri(path: &Path) -> String {
    let mut out = String::from("file://");
    for b in path.to_string_lossy().bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// What GStreamer is asked to play (plain data, so builds without the `gstreamer` feature can
/// name it in their error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GstSpec {
    /// A URI decoded by `uridecodebin` (`file://…` for a local clip, `rtsp://…`, `http://…`).
    Uri(String),
    /// A user's pipeline description, ending in an `appsink`.
    Pipeline(String),
}

impl GstSpec {
    /// The URI or pipeline text, for messages.
    pub fn name(&self) -> &str {
        match self {
            GstSpec::Uri(u) => u,
            GstSpec::Pipeline(p) => p,
        }
    }
}

#[cfg(feature = "gstreamer")]
fn gst_source(spec: GstSpec, live: bool, loops: Option<u64>) -> Result<SourceOpener> {
    use super::gst::{GstOptions, gst_opener};
    let stall = std::time::Duration::from_secs(if live { 5 } else { 30 });
    Ok(gst_opener(spec, GstOptions { live, loops, stall }))
}

#[cfg(not(feature = "gstreamer"))]
fn gst_source(spec: GstSpec, _live: bool, _loops: Option<u64>) -> Result<SourceOpener> {
    bail!(
        "{}: this build has no video support (the `gstreamer` feature is off; run scripts/setup.sh and build with default features)",
        spec.name()
    )
}

/// The frames a `--input` path names: one image, the images of a folder in name order, or the
/// frames of a `.gif`. Checked before any thread starts, so a bad path fails with a clear error.
pub fn input_opener(path: &Path, loops: Option<u64>) -> Result<SourceOpener> {
    if !path.exists() {
        bail!(
            "--input {}: no such file or folder (expected an image, a folder of frames or a .gif)",
            path.display()
        );
    }
    let is_gif = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("gif"));
    if is_gif {
        let p = path.to_path_buf();
        GifFrames::open(&p, Some(1)).map_err(|e| anyhow::anyhow!("--input {e}"))?;
        return Ok(Box::new(move || {
            Ok(Box::new(GifFrames::open(&p, loops)?) as Box<dyn FrameSource>)
        }));
    }
    let paths = if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("--input {}: cannot list the folder", path.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && is_image_file(p))
            .collect();
        v.sort();
        if v.is_empty() {
            bail!(
                "--input {}: the folder holds no .png/.jpg/.bmp frames",
                path.display()
            );
        }
        v
    } else if is_image_file(path) {
        vec![path.to_path_buf()]
    } else {
        bail!(
            "--input {}: unsupported file type (expected .png, .jpg, .bmp, .gif or a folder of frames)",
            path.display()
        );
    };
    Ok(Box::new(move || {
        Ok(Box::new(FileFrames::new(paths, loops)) as Box<dyn FrameSource>)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Delay, Frame, Rgba, RgbaImage};

    fn write_frames(dir: &Path, n: usize) {
        for i in 0..n {
            RgbImage::from_pixel(8, 6, image::Rgb([i as u8 * 10, 0, 0]))
                .save(dir.join(format!("f{i:03}.png")))
                .unwrap();
        }
    }

    fn drain(src: &mut dyn FrameSource) -> (Vec<u8>, usize) {
        let (mut reds, mut faults) = (vec![], 0);
        loop {
            match src.next_frame() {
                Ok(Some(f)) => reds.push(f.get_pixel(0, 0)[0]),
                Ok(None) => return (reds, faults),
                Err(SourceError::Transient(_)) => faults += 1,
                Err(SourceError::Gone(e)) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn folder_plays_in_name_order_and_loops() {
        let dir = tempfile::tempdir().unwrap();
        write_frames(dir.path(), 3);
        let mut src = input_opener(dir.path(), Some(2)).unwrap()().unwrap();
        assert_eq!(drain(src.as_mut()), (vec![0, 10, 20, 0, 10, 20], 0));
    }

    #[test]
    fn corrupt_frame_is_a_transient_fault_and_play_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        write_frames(dir.path(), 2);
        std::fs::write(dir.path().join("f000b.png"), b"\x89PNG\r\n\x1a\n broken").unwrap();
        let mut src = input_opener(dir.path(), Some(1)).unwrap()().unwrap();
        assert_eq!(drain(src.as_mut()), (vec![0, 10], 1));
    }

    #[test]
    fn gif_frames_decode_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.gif");
        {
            let mut enc = image::codecs::gif::GifEncoder::new(File::create(&path).unwrap());
            for v in [0u8, 100, 200] {
                let img = RgbaImage::from_pixel(8, 6, Rgba([v, v, v, 255]));
                enc.encode_frame(Frame::from_parts(img, 0, 0, Delay::from_numer_denom_ms(40, 1)))
                    .unwrap();
            }
        }
        let mut src = input_opener(&path, Some(1)).unwrap()().unwrap();
        let (vals, faults) = drain(src.as_mut());
        assert_eq!(faults, 0);
        assert_eq!(vals.len(), 3);
        // GIF quantises colours: compare within a palette step.
        for (got, want) in vals.iter().zip([0u8, 100, 200]) {
            assert!((*got as i32 - want as i32).abs() <= 8, "{vals:?}");
        }
    }

    #[test]
    fn inputs_are_classified_by_scheme_and_extension() {
        assert_eq!(InputKind::of(Path::new("clip.MP4")), InputKind::Video);
        assert_eq!(InputKind::of(Path::new("a/b.webm")), InputKind::Video);
        assert_eq!(InputKind::of(Path::new("file:///x/y.bin")), InputKind::Video);
        assert_eq!(
            InputKind::of(Path::new("rtsp://cam.local/stream")),
            InputKind::Stream
        );
        assert_eq!(InputKind::of(Path::new("frames")), InputKind::Frames);
        assert_eq!(InputKind::of(Path::new("face.png")), InputKind::Frames);
        assert!(InputKind::Stream.is_live() && !InputKind::Video.is_live());
        assert_eq!(file_uri(Path::new("/a b/c#1.mp4")), "file:///a%20b/c%231.mp4");
        let e = open_input(Path::new("/no/such/clip.mp4"), None)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("clip.mp4") && e.contains("no such"), "{e}");
        let e = pipeline_opener("videotestsrc ! fakesink")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("appsink"), "{e}");
    }

    #[test]
    fn bad_inputs_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let e = input_opener(&missing, None).err().unwrap().to_string();
        assert!(e.contains("nope") && e.contains("no such"), "{e}");
        let e = input_opener(dir.path(), None).err().unwrap().to_string();
        assert!(e.contains("no .png"), "{e}");
        let txt = dir.path().join("notes.txt");
        std::fs::write(&txt, "x").unwrap();
        let e = input_opener(&txt, None).err().unwrap().to_string();
        assert!(e.contains("unsupported"), "{e}");
        let gif = dir.path().join("bad.gif");
        std::fs::write(&gif, "GIF89a garbage").unwrap();
        let e = input_opener(&gif, None).err().unwrap().to_string();
        assert!(e.contains("bad.gif"), "{e}");
    }
}
