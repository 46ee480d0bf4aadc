//! Video sources through GStreamer on real faces: FER+ frames encoded into an H.264 clip play
//! like the folder of the same frames (same count, same boxes, mostly the same labels), with the
//! stream's timestamps; corrupt and truncated clips end with a clear error or cleanly.
#![cfg(feature = "gstreamer")]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use gstreamer as gst;
use gstreamer::prelude::*;
use paca_fer::data::{Dataset, Layout, load_face};
use paca_fer::pipeline::frames::shot;
use serde_json::Value;

const FRAMES: usize = 20;

/// `FRAMES` frames of a FER+ face drifting in 640×480, as PNGs in `dir`.
fn write_frames(dir: &Path) {
    let root = common::ferplus().expect("../shared/data/ferplus is needed");
    let ds = Dataset::open(&root, Layout::FerPlus).unwrap();
    let face = load_face(&ds.split("valid").unwrap()[7].path, 48).unwrap();
    for (i, (f, _)) in shot(&face, 192, 1, FRAMES).iter().enumerate() {
        f.save(dir.join(format!("f{i:03}.png"))).unwrap();
    }
}

/// Encodes the PNGs of `frames` at 10 FPS with GStreamer's `x264enc` into `out` (muxer `mux`), a
/// keyframe every 5 frames so that a cut clip still holds whole frames.
fn encode(frames: &Path, out: &Path, mux: &str) {
    gst::init().unwrap();
    let desc = format!(
        "multifilesrc location={}/f%03d.png index=0 stop-index={} caps=image/png,framerate=10/1 ! pngdec ! videoconvert ! video/x-raw,format=I420 ! x264enc pass=quant quantizer=12 speed-preset=ultrafast key-int-max=5 ! {mux} ! filesink location={}",
        frames.display(),
        FRAMES - 1,
        out.display()
    );
    let pipeline = gst::parse::launch(&desc).unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("the encoder finished within 60 s");
    if let gst::MessageView::Error(e) = msg.view() {
        panic!("encoding failed: {}", e.error());
    }
    pipeline.set_state(gst::State::Null).unwrap();
}

fn run(input: &Path, jsonl: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_paca-fer"))
        .current_dir(common::repo_root())
        .args([
            "run",
            "--headless",
            "--detect-width",
            "320",
            "--model",
            "models/default",
            "--input",
        ])
        .arg(input)
        .arg("--jsonl")
        .arg(jsonl)
        .output()
        .unwrap()
}

fn lines(jsonl: &Path) -> Vec<Value> {
    std::fs::read_to_string(jsonl)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn iou(a: &Value, b: &Value) -> f64 {
    let f = |v: &Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let (a, b) = (f(a), f(b));
    let ix = (a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0]);
    let iy = (a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1]);
    if ix <= 0.0 || iy <= 0.0 {
        return 0.0;
    }
    ix * iy / (a[2] * a[3] + b[2] * b[3] - ix * iy)
}

#[test]
fn an_h264_clip_plays_like_the_folder_of_its_frames() {
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    write_frames(&frames);
    let clip = dir.path().join("clip.mp4");
    encode(&frames, &clip, "mp4mux");

    let (a, b) = (dir.path().join("folder.jsonl"), dir.path().join("clip.jsonl"));
    for (input, out) in [(&frames, &a), (&clip, &b)] {
        let o = run(input, out);
        assert!(
            o.status.success(),
            "{}: {}",
            input.display(),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let (folder, video) = (lines(&a), lines(&b));
    assert_eq!(folder.len(), FRAMES);
    assert_eq!(video.len(), FRAMES, "every frame of the clip, none dropped");
    let mut same_label = 0;
    for (i, (f, v)) in folder.iter().zip(&video).enumerate() {
        assert_eq!(v["frame"], i as u64);
        // 10 FPS: the stream timestamps step by 100 ms; image folders have none.
        let pts = v["pts_ms"]
            .as_f64()
            .expect("a clip's frames carry their timestamps");
        assert!((pts - 100.0 * i as f64).abs() < 1.0, "frame {i}: pts {pts} ms");
        assert!(f["pts_ms"].is_null());
        let (ff, vf) = (f["faces"].as_array().unwrap(), v["faces"].as_array().unwrap());
        assert_eq!(ff.len(), 1, "frame {i}: the folder's face is found");
        assert_eq!(vf.len(), 1, "frame {i}: the clip's face is found");
        let overlap = iou(&ff[0]["box"], &vf[0]["box"]);
        assert!(overlap >= 0.9, "frame {i}: box IoU {overlap:.3}");
        same_label += usize::from(ff[0]["label"] == vf[0]["label"]);
    }
    assert!(
        same_label * 10 >= FRAMES * 8,
        "{same_label}/{FRAMES} labels agree"
    );
}

#[test]
fn corrupt_and_truncated_clips_end_cleanly_or_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.mp4");
    std::fs::write(&corrupt, b"\x00\x00\x00\x18ftypmp42 this is not a video at all").unwrap();
    let o = run(&corrupt, &dir.path().join("c.jsonl"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a clip with no video is an error");
    assert!(err.contains("corrupt.mp4") && !err.contains("panicked"), "{err}");

    let frames = dir.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    write_frames(&frames);
    let full = dir.path().join("full.mkv");
    encode(&frames, &full, "matroskamux");
    let bytes = std::fs::read(&full).unwrap();
    let cut = dir.path().join("cut.mkv");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = dir.path().join("t.jsonl");
    let o = run(&cut, &out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    let n = lines(&out).len();
    assert!(
        n > 0 && n < FRAMES,
        "the first half of the clip plays: {n} frames ({err})"
    );
    if !o.status.success() {
        assert!(err.contains("cut.mkv"), "{err}");
    }
}
