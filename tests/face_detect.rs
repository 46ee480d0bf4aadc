//! Face detection and cropping on real photos: the public-domain `astronaut` image, FER+ faces
//! (from `../shared`, see `tests/common`) composited into webcam-sized frames, face-free frames,
//! odd frame sizes, bad model files and crop geometry.
//!
//! Run in release: `cargo test --release --test face_detect -- --nocapture` prints recall and
//! IoU. Detection and crop timings are measured by `paca-fer bench pipeline` (per-stage ms), not
//! here.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use image::{Rgb, RgbImage, imageops};
use paca_fer::face::{
    DEFAULT_MARGIN, DEFAULT_MODEL_PATH, DetectorConfig, FACE_SIZE, FaceBox, FaceDetector, FaceError,
    crop_face, eye_angle,
};

/// Hand-annotated face box of the astronaut fixture (see tests/fixtures/face/README.md).
const ASTRONAUT_FACE: (f32, f32, f32, f32) = (181.0, 64.0, 87.0, 113.0);

fn manifest() -> PathBuf {
    common::repo_root()
}

fn model_path() -> PathBuf {
    manifest().join(DEFAULT_MODEL_PATH)
}

/// One detector shared by all tests (loading optimises the graph, which takes a moment).
fn detector() -> &'static FaceDetector {
    static DET: OnceLock<FaceDetector> = OnceLock::new();
    DET.get_or_init(|| {
        FaceDetector::load(&model_path(), DetectorConfig::default())
            .unwrap_or_else(|e| panic!("{e} (the project ships it at {DEFAULT_MODEL_PATH})"))
    })
}

fn astronaut() -> RgbImage {
    let p = manifest().join("tests/fixtures/face/astronaut.png");
    image::open(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .to_rgb8()
}

fn boxed(x: f32, y: f32, w: f32, h: f32) -> FaceBox {
    FaceBox {
        x,
        y,
        w,
        h,
        score: 1.0,
        landmarks: [[0.0; 2]; 5],
    }
}

/// The FER+ validation folder (see [`common::ferplus`]).
fn ferplus_valid() -> Option<PathBuf> {
    common::ferplus().map(|root| root.join("valid"))
}

/// The first `per_class` files (sorted) of every class folder, so the sample is fixed.
fn ferplus_sample(dir: &Path, per_class: usize) -> Vec<PathBuf> {
    let mut classes: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    classes.sort();
    let mut out = Vec::new();
    for c in classes {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&c)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "png"))
            .collect();
        files.sort();
        out.extend(files.into_iter().take(per_class));
    }
    out
}

/// Small deterministic generator (xorshift) for positions and noise.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u32) -> u32 {
        (self.next() % n.max(1) as u64) as u32
    }
}

fn noise_frame(w: u32, h: u32, rng: &mut Rng) -> RgbImage {
    RgbImage::from_fn(w, h, |_, _| {
        let v = rng.next();
        Rgb([v as u8, (v >> 8) as u8, (v >> 16) as u8])
    })
}

#[test]
fn astronaut_has_one_face_matching_annotation() {
    let img = astronaut();
    let dets = detector().detect(&img).unwrap();
    println!("astronaut detections: {dets:?}");
    assert_eq!(dets.len(), 1, "expected exactly one face, got {dets:?}");
    let d = &dets[0];
    let (x, y, w, h) = ASTRONAUT_FACE;
    let iou = d.iou(&boxed(x, y, w, h));
    println!("astronaut IoU with annotation: {iou:.3}, score {:.3}", d.score);
    assert!(iou >= 0.5, "IoU {iou} < 0.5 for {d:?}");
    assert!(d.score > 0.5);
    for (k, [lx, ly]) in d.landmarks.iter().enumerate() {
        assert!(d.contains(*lx, *ly), "landmark {k} ({lx}, {ly}) outside {d:?}");
    }
    // Left eye (image left) is left of the right eye, eyes above nose above mouth.
    let [le, re, nose, ml, mr] = d.landmarks;
    assert!(le[0] < re[0] && ml[0] < mr[0]);
    assert!(le[1] < nose[1] && re[1] < nose[1] && nose[1] < ml[1] && nose[1] < mr[1]);
    // Same numbers as ONNX Runtime 1.32 on this file (PIL bilinear resize to 320×320, same
    // decoding): box (184.37, 62.94, 84.09, 111.47), score 0.9117 — burn import is faithful.
    let reference = boxed(184.37, 62.94, 84.09, 111.47);
    assert!(d.iou(&reference) > 0.97, "{d:?}");
    assert!((d.score - 0.9117).abs() < 0.01, "{d:?}");
    // Eyes near the annotated positions (205, 102) and (247, 103).
    assert!(
        (le[0] - 205.0).abs() < 8.0 && (le[1] - 102.0).abs() < 8.0,
        "{le:?}"
    );
    assert!(
        (re[0] - 247.0).abs() < 8.0 && (re[1] - 103.0).abs() < 8.0,
        "{re:?}"
    );
}

#[test]
fn astronaut_in_webcam_frame_at_other_widths() {
    // The 512×512 photo shrunk into a 640×480 frame (face ≈ 65 px tall), at several widths.
    let small = imageops::resize(&astronaut(), 300, 300, imageops::FilterType::Triangle);
    let mut frame = RgbImage::from_pixel(640, 480, Rgb([90, 110, 130]));
    imageops::overlay(&mut frame, &small, 250, 120);
    let s = 300.0 / 512.0;
    let (x, y, w, h) = ASTRONAUT_FACE;
    let gt = boxed(250.0 + x * s, 120.0 + y * s, w * s, h * s);
    for width in [320, 480, 640] {
        let cfg = DetectorConfig {
            width,
            ..DetectorConfig::default()
        };
        let det = FaceDetector::load(&model_path(), cfg).unwrap();
        let dets = det.detect(&frame).unwrap();
        assert_eq!(dets.len(), 1, "width {width}: {dets:?}");
        let iou = dets[0].iou(&gt);
        println!("width {width}: IoU {iou:.3}");
        assert!(iou >= 0.5, "width {width}: IoU {iou}");
    }
}

#[test]
fn rotated_face_landmarks_give_eye_angle_and_align_levels_eyes() {
    // Rotate the astronaut by +15° (clockwise on screen) about the face centre.
    let img = astronaut();
    let (x, y, w, h) = ASTRONAUT_FACE;
    let (cx, cy) = (x + w / 2.0, y + h / 2.0);
    let angle = 15f32.to_radians();
    let (sin, cos) = angle.sin_cos();
    let rotated = RgbImage::from_fn(512, 512, |u, v| {
        // Inverse map: output pixel -> source pixel (rotate by -angle), nearest neighbour.
        let (dx, dy) = (u as f32 + 0.5 - cx, v as f32 + 0.5 - cy);
        let sx = cx + dx * cos + dy * sin;
        let sy = cy - dx * sin + dy * cos;
        if sx >= 0.0 && sy >= 0.0 && sx < 512.0 && sy < 512.0 {
            *img.get_pixel(sx as u32, sy as u32)
        } else {
            Rgb([0, 0, 0])
        }
    });
    let natural = eye_angle(&detector().detect(&img).unwrap()[0]).to_degrees();
    let dets = detector().detect(&rotated).unwrap();
    assert_eq!(dets.len(), 1, "{dets:?}");
    let measured = eye_angle(&dets[0]).to_degrees();
    println!("eye angle: upright {natural:.1}°, after a 15° turn {measured:.1}°");
    assert!((measured - natural - 15.0).abs() < 4.0, "eye angle {measured}");

    // After alignment, re-detecting on the crop's context finds the eyes level.
    let aligned = crop_face(&rotated, &dets[0], 0.6, true, 256);
    let again = detector().detect(&aligned).unwrap();
    assert!(!again.is_empty(), "no face in the aligned crop");
    let residual = eye_angle(&again[0]).to_degrees();
    println!("eye angle after alignment: {residual:.1}°");
    assert!(residual.abs() < 5.0, "residual eye angle {residual}");
}

#[derive(Default)]
struct Tally {
    faces: usize,
    hits: usize,
    /// Detections inside the pasted FER+ image but with IoU < 0.5 (face smaller than the crop).
    inner: usize,
    /// Detections centred outside the pasted image.
    false_pos: usize,
    iou_sum: f32,
    /// Per hit: FER+ side / max(w, h) of the detected box, to calibrate the crop margin.
    side_ratio: Vec<f32>,
}

/// FER+ faces (48×48 gray) upscaled `scale`× and pasted at a random place of a 640×480 frame,
/// one face per frame; ground truth is the pasted square.
fn run_ferplus(files: &[PathBuf], scale: u32, noise: bool, seed: u64) -> Tally {
    let det = detector();
    let mut rng = Rng(seed);
    let mut t = Tally::default();
    let side = 48 * scale;
    for f in files {
        let face = image::open(f).unwrap().to_luma8();
        let face = imageops::resize(&face, side, side, imageops::FilterType::CatmullRom);
        let face = image::DynamicImage::ImageLuma8(face).to_rgb8();
        let mut frame = if noise {
            noise_frame(640, 480, &mut rng)
        } else {
            RgbImage::from_pixel(640, 480, Rgb([128, 128, 128]))
        };
        let (x0, y0) = (rng.below(640 - side), rng.below(480 - side));
        imageops::replace(&mut frame, &face, x0 as i64, y0 as i64);
        let gt = boxed(x0 as f32, y0 as f32, side as f32, side as f32);
        let dets = det.detect(&frame).unwrap();
        t.faces += 1;
        let best = dets.iter().find(|d| d.iou(&gt) >= 0.5);
        if let Some(d) = best {
            t.hits += 1;
            t.iou_sum += d.iou(&gt);
            t.side_ratio.push(side as f32 / d.w.max(d.h));
        }
        for d in dets.iter().filter(|d| d.iou(&gt) < 0.5) {
            let (cx, cy) = d.center();
            if gt.contains(cx, cy) {
                // A face inside the FER+ image that does not fill it (some FER2013 crops hold
                // a smaller or off-centre face): a correct detection, not a false positive.
                t.inner += 1;
            } else {
                println!("  false positive on {}: {d:?}", f.display());
                t.false_pos += 1;
            }
        }
    }
    t
}

#[test]
fn ferplus_faces_composited_into_frames() {
    let Some(dir) = ferplus_valid() else { return };
    let files = ferplus_sample(&dir, 6); // 8 classes × 6 = 48 faces
    assert_eq!(files.len(), 48, "FER+ valid folder incomplete: {}", dir.display());
    let mut ratios = Vec::new();
    let (mut all_faces, mut all_hits) = (0, 0);
    for (noise, min_recall) in [(false, 0.85), (true, 0.65)] {
        for scale in [2, 3, 4] {
            let t = run_ferplus(&files, scale, noise, 17 + scale as u64);
            let recall = t.hits as f32 / t.faces as f32;
            let mean_iou = t.iou_sum / t.hits.max(1) as f32;
            println!(
                "FER+ x{scale} ({} px) on {} background: recall {}/{} = {recall:.2}, \
                 mean IoU {mean_iou:.3}, smaller faces inside {}, false positives {}",
                48 * scale,
                if noise { "noise" } else { "plain" },
                t.hits,
                t.faces,
                t.inner,
                t.false_pos
            );
            assert!(recall >= min_recall, "recall {recall} < {min_recall}");
            assert!(mean_iou >= 0.6, "mean IoU {mean_iou}");
            assert_eq!(t.false_pos, 0, "false positives on the background");
            all_faces += t.faces;
            all_hits += t.hits;
            ratios.extend(t.side_ratio);
        }
    }
    println!(
        "FER+ overall recall {all_hits}/{all_faces} = {:.3}",
        all_hits as f32 / all_faces as f32
    );
    // Margin calibration: a FER+ image is this many times the detected box's larger side.
    ratios.sort_by(f32::total_cmp);
    let median = ratios[ratios.len() / 2];
    let margin = (median - 1.0) / 2.0;
    println!("FER+ side / box side: median {median:.3} -> equivalent margin {margin:.3}");
    assert!(
        (margin - DEFAULT_MARGIN).abs() <= 0.06,
        "DEFAULT_MARGIN {DEFAULT_MARGIN} no longer matches FER+ framing ({margin:.3})"
    );
}

#[test]
fn no_face_in_gradient_noise_or_flat_frames() {
    let det = detector();
    let gradient = RgbImage::from_fn(640, 480, |x, y| {
        Rgb([(x * 255 / 639) as u8, (y * 255 / 479) as u8, 128])
    });
    let noise = noise_frame(640, 480, &mut Rng(0x9E37_79B9_7F4A_7C15));
    let black = RgbImage::new(640, 480);
    let white = RgbImage::from_pixel(640, 480, Rgb([255, 255, 255]));
    for (name, img) in [
        ("gradient", gradient),
        ("noise", noise),
        ("black", black),
        ("white", white),
    ] {
        let d = det.detect(&img).unwrap();
        assert!(d.is_empty(), "{name}: {d:?}");
    }
}

#[test]
fn odd_frame_sizes_do_not_panic() {
    let det = detector();
    for (w, h) in [(33, 17), (1, 1), (0, 0), (0, 10), (5, 3000), (3000, 5), (31, 31)] {
        let img = RgbImage::from_pixel(w, h, Rgb([120, 100, 80]));
        let r = det.detect(&img);
        assert!(r.is_ok(), "{w}x{h}: {r:?}");
        for b in r.unwrap() {
            assert!(b.x >= 0.0 && b.y >= 0.0 && b.x + b.w <= w as f32 + 0.01);
            let crop = crop_face(&img, &b, DEFAULT_MARGIN, true, FACE_SIZE);
            assert_eq!(crop.dimensions(), (FACE_SIZE, FACE_SIZE));
        }
    }
}

#[test]
fn missing_or_corrupt_model_is_an_error_naming_the_file() {
    let missing = Path::new("/nonexistent/dir/centerface.onnx");
    let e = FaceDetector::load(missing, DetectorConfig::default()).unwrap_err();
    assert!(matches!(e, FaceError::ModelRead { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("/nonexistent/dir/centerface.onnx") && msg.contains("CenterFace"));

    let dir = std::env::temp_dir().join(format!("paca-face-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in [
        ("garbage.onnx", b"this is not an onnx model at all".to_vec()),
        ("empty.onnx", Vec::new()),
        // A truncated copy of the real model.
        (
            "truncated.onnx",
            std::fs::read(model_path()).unwrap()[..100_000].to_vec(),
        ),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let e = FaceDetector::load(&p, DetectorConfig::default()).unwrap_err();
        let msg = e.to_string();
        println!("{name}: {msg}");
        assert!(matches!(e, FaceError::ModelInvalid { .. }), "{e:?}");
        assert!(msg.contains(name) && msg.contains("CenterFace"), "{msg}");
    }
    std::fs::remove_dir_all(&dir).ok();

    // A valid ONNX file that is not CenterFace.
    let other = manifest().join("tests/fixtures/face/not_centerface.onnx");
    let e = FaceDetector::load(&other, DetectorConfig::default()).unwrap_err();
    println!("not_centerface.onnx: {e}");
    assert!(matches!(e, FaceError::ModelInvalid { .. }), "{e:?}");
    assert!(e.to_string().contains("not_centerface.onnx"));

    let bad = DetectorConfig {
        width: 0,
        ..DetectorConfig::default()
    };
    let e = FaceDetector::load(&model_path(), bad).unwrap_err();
    assert!(matches!(e, FaceError::Config(_)), "{e:?}");
}

#[test]
fn crop_is_square_sized_and_padded_at_borders() {
    let img = astronaut();
    let (x, y, w, h) = ASTRONAUT_FACE;
    let b = boxed(x, y, w, h);
    let c = crop_face(&img, &b, DEFAULT_MARGIN, false, FACE_SIZE);
    assert_eq!(c.dimensions(), (96, 96));
    // A box hanging over the top-left corner: still 96×96, the outside replicates the edge.
    let corner = boxed(-40.0, -40.0, 80.0, 80.0);
    let c = crop_face(&img, &corner, 0.2, true, 96);
    assert_eq!(c.dimensions(), (96, 96));
    assert_eq!(c.get_pixel(0, 0), img.get_pixel(0, 0));
    // Degenerate inputs do not panic.
    let nan = boxed(f32::NAN, 0.0, f32::INFINITY, -3.0);
    assert_eq!(crop_face(&img, &nan, 0.2, true, 48).dimensions(), (48, 48));
    assert_eq!(
        crop_face(&RgbImage::new(0, 0), &b, 0.2, true, 96).dimensions(),
        (96, 96)
    );
    assert_eq!(crop_face(&img, &b, 0.2, true, 0).dimensions(), (0, 0));
}

#[test]
fn crop_alignment_levels_marked_eyes() {
    // Gray frame with a red "left eye" and a blue "right eye" on a line tilted by 20°.
    let mut img = RgbImage::from_pixel(400, 400, Rgb([128, 128, 128]));
    let (cx, cy, r) = (200.0f32, 200.0f32, 40.0f32);
    let a = 20f32.to_radians();
    let le = [cx - r * a.cos(), cy - r * a.sin()];
    let re = [cx + r * a.cos(), cy + r * a.sin()];
    for (p, col) in [(le, Rgb([255, 0, 0])), (re, Rgb([0, 0, 255]))] {
        for dy in -4i32..=4 {
            for dx in -4i32..=4 {
                img.put_pixel((p[0] as i32 + dx) as u32, (p[1] as i32 + dy) as u32, col);
            }
        }
    }
    let b = FaceBox {
        x: cx - 80.0,
        y: cy - 80.0,
        w: 160.0,
        h: 160.0,
        score: 1.0,
        landmarks: [
            le,
            re,
            [cx, cy + 20.0],
            [cx - 20.0, cy + 50.0],
            [cx + 20.0, cy + 50.0],
        ],
    };
    let centroid = |img: &RgbImage, red: bool| {
        let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
        for (x, y, p) in img.enumerate_pixels() {
            let hit = if red {
                p[0] > 200 && p[2] < 80
            } else {
                p[2] > 200 && p[0] < 80
            };
            if hit {
                sx += x as f32;
                sy += y as f32;
                n += 1.0;
            }
        }
        assert!(n > 0.0);
        (sx / n, sy / n)
    };
    let plain = crop_face(&img, &b, 0.0, false, 96);
    let (l, r) = (centroid(&plain, true), centroid(&plain, false));
    assert!((r.1 - l.1) > 10.0, "unaligned eyes should differ in height");
    let aligned = crop_face(&img, &b, 0.0, true, 96);
    let (l, r) = (centroid(&aligned, true), centroid(&aligned, false));
    assert!(
        (r.1 - l.1).abs() < 1.5,
        "aligned eyes at rows {} and {}",
        l.1,
        r.1
    );
    assert!(l.0 < r.0, "left eye stays on the left");
}

#[test]
fn astronaut_on_noise_is_found_at_small_detector_widths() {
    // The photo shrunk to 360×360 over a noise frame (face ≈ 80 px tall): the small network
    // inputs a live run may choose (`run.detect_width`) still find exactly that face, and the
    // same frame gives the same box again. Their cost is measured by `paca-fer bench pipeline
    // --detect-width W` (per-stage ms), not here.
    let small = imageops::resize(&astronaut(), 360, 360, imageops::FilterType::Triangle);
    let mut frame = noise_frame(640, 480, &mut Rng(42));
    imageops::overlay(&mut frame, &small, 140, 60);
    let s = 360.0 / 512.0;
    let (x, y, w, h) = ASTRONAUT_FACE;
    let gt = boxed(140.0 + x * s, 60.0 + y * s, w * s, h * s);
    for width in [160, 256, 320] {
        let cfg = DetectorConfig {
            width,
            ..DetectorConfig::default()
        };
        let det = FaceDetector::load(&model_path(), cfg).unwrap();
        let dets = det.detect(&frame).unwrap();
        assert_eq!(dets.len(), 1, "width {width}: {dets:?}");
        let iou = dets[0].iou(&gt);
        println!("width {width}: IoU {iou:.3}");
        assert!(iou >= 0.5, "width {width}: IoU {iou}");
        assert_eq!(
            det.detect(&frame).unwrap(),
            dets,
            "width {width}: a second pass differs"
        );
    }
}

/// Pearson correlation of the gray levels of two images of the same size.
fn correlation(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let gray = |p: &Rgb<u8>| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]);
    let (u, v): (Vec<f64>, Vec<f64>) = a
        .pixels()
        .zip(b.pixels())
        .map(|(p, q)| (gray(p), gray(q)))
        .unzip();
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
    let (mu, mv) = (mean(&u), mean(&v));
    let (mut uv, mut uu, mut vv) = (0.0, 0.0, 0.0);
    for (x, y) in u.iter().zip(&v) {
        let (dx, dy) = (x - mu, y - mv);
        uv += dx * dy;
        uu += dx * dx;
        vv += dy * dy;
    }
    uv / (uu * vv).sqrt().max(1e-12)
}

/// The centre of a `FACE_SIZE` crop taken at `margin`, where the margin-0 square lies, scaled
/// back up to `FACE_SIZE`.
fn margin_zero_part(crop: &RgbImage, margin: f32) -> RgbImage {
    let side = (FACE_SIZE as f32 / (1.0 + 2.0 * margin)).round() as u32;
    let off = (FACE_SIZE - side) / 2;
    let centre = imageops::crop_imm(crop, off, off, side, side).to_image();
    imageops::resize(&centre, FACE_SIZE, FACE_SIZE, imageops::FilterType::Triangle)
}

#[test]
fn crops_frame_faces_like_ferplus_and_margins_widen_the_square() {
    // A contact sheet, also written for a person to compare framing. Row 1: FER+ originals;
    // row 2: the same faces found in 640×480 composites and cropped by the pipeline
    // (DEFAULT_MARGIN, aligned), which must look like the originals (same framing); row 3:
    // astronaut at margins 0 / default / 0.2 / 0.4, unaligned and aligned, where a wider margin
    // must hold the margin-0 crop at its centre.
    let Some(dir) = ferplus_valid() else { return };
    let cell = FACE_SIZE + 4;
    let mut sheet = RgbImage::from_pixel(8 * cell, 3 * cell, Rgb([255, 255, 255]));
    let mut rng = Rng(5);
    let faces = ferplus_sample(&dir, 1);
    assert_eq!(faces.len(), 8, "one face per class in {}", dir.display());
    let mut framing = Vec::new();
    for (i, f) in faces.iter().enumerate() {
        let face = image::open(f).unwrap().to_rgb8();
        let big = imageops::resize(&face, 144, 144, imageops::FilterType::CatmullRom);
        let orig = imageops::resize(&face, FACE_SIZE, FACE_SIZE, imageops::FilterType::CatmullRom);
        imageops::replace(&mut sheet, &orig, (i as u32 * cell) as i64, 0);
        let mut frame = RgbImage::from_pixel(640, 480, Rgb([128, 128, 128]));
        let (x0, y0) = (rng.below(640 - 144), rng.below(480 - 144));
        imageops::replace(&mut frame, &big, x0 as i64, y0 as i64);
        let dets = detector().detect(&frame).unwrap();
        let b = dets
            .first()
            .unwrap_or_else(|| panic!("no face found in the composite of {}", f.display()));
        let c = crop_face(&frame, b, DEFAULT_MARGIN, true, FACE_SIZE);
        imageops::replace(&mut sheet, &c, (i as u32 * cell) as i64, cell as i64);
        let r = correlation(&c, &orig);
        println!("{}: pipeline crop vs FER+ original, r = {r:.3}", f.display());
        // Measured 0.23–0.92 (FER+ framing varies from face to face); a crop beside the face
        // gives about 0.
        assert!(
            r >= 0.1,
            "{}: crop unlike the FER+ face (r = {r:.3})",
            f.display()
        );
        framing.push(r);
    }
    // Measured mean 0.62 at DEFAULT_MARGIN (0.54 at margin 0, 0.57 at 0.1, 0.19 at 0.3, 0.10 at 0.4).
    let mean = framing.iter().sum::<f64>() / framing.len() as f64;
    assert!(
        mean >= 0.5,
        "pipeline crops unlike the FER+ framing: mean r = {mean:.3}"
    );
    let img = astronaut();
    let b = detector().detect(&img).unwrap()[0];
    let tight = crop_face(&img, &b, 0.0, false, FACE_SIZE);
    for (i, (m, align)) in [0.0, DEFAULT_MARGIN, 0.2, 0.4]
        .iter()
        .flat_map(|m| [(*m, false), (*m, true)])
        .enumerate()
    {
        let c = crop_face(&img, &b, m, align, FACE_SIZE);
        imageops::replace(&mut sheet, &c, (i as u32 * cell) as i64, 2 * cell as i64);
        if !align && m > 0.0 {
            // Measured ≥ 0.97; reading the centre for half or 1.5× the margin gives ≤ 0.94.
            let r = correlation(&margin_zero_part(&c, m), &tight);
            println!("astronaut margin {m}: centre vs margin-0 crop, r = {r:.3}");
            assert!(
                r >= 0.96,
                "margin {m}: the centre is not the margin-0 crop (r = {r:.3})"
            );
        }
    }
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("face_crops.png");
    sheet.save(&out).unwrap();
    assert_eq!(image::open(&out).unwrap().to_rgb8(), sheet, "{}", out.display());
    println!("contact sheet: {}", out.display());
}

/// Least recall on hard frames with the shipped detector settings (160 px, score 0.2): `bench
/// detect` measured 0.548 and 0.527 on two 300-frame sets (README's detector table).
const HARD_MIN_RECALL: f64 = 0.45;
/// Most false detections a hard frame may have (issue #18's bound); measured 0.010 and 0.023.
const HARD_MAX_FALSE: f64 = 0.05;

/// FER+ valid faces (`n` of them, a fixed spread over the classes) as RGB images with labels.
fn ferplus_faces(n_per_class: usize) -> Option<Vec<RgbImage>> {
    let dir = ferplus_valid()?;
    let files = ferplus_sample(&dir, n_per_class);
    Some(files.iter().map(|f| image::open(f).unwrap().to_rgb8()).collect())
}

/// Hard frames (`bench frames --hard`'s generator) scored with the shipped defaults, as `bench
/// detect` scores them: the detector's crop square against the pasted face's square.
fn hard_tally(faces: &[RgbImage], frames: u64, seed: u64) -> paca_fer::face::evaluate::Tally {
    use paca_fer::face::evaluate::{MATCH_IOU, Tally, crop_box, truth_box};
    use paca_fer::pipeline::frames::{HardSpec, hard_frame};
    let config = paca_fer::config::Config::default();
    let det = FaceDetector::load(
        &model_path(),
        DetectorConfig {
            width: config.run.detect_width,
            threshold: config.run.detect_threshold,
            ..DetectorConfig::default()
        },
    )
    .unwrap();
    let mut rng = Rng(seed);
    let mut t = Tally::default();
    for i in 0..frames {
        let n = rng.below(5) as usize;
        let chosen: Vec<RgbImage> = (0..n)
            .map(|_| faces[rng.below(faces.len() as u32) as usize].clone())
            .collect();
        let f = hard_frame(&chosen, &HardSpec::default(), seed * 1000 + i);
        let truth: Vec<FaceBox> = f.faces.iter().map(|(b, _)| truth_box(*b)).collect();
        let found: Vec<FaceBox> = det
            .detect(&f.image)
            .unwrap()
            .iter()
            .map(|b| crop_box(b, DEFAULT_MARGIN))
            .collect();
        t.add(&truth, &found, MATCH_IOU);
    }
    t
}

#[test]
fn hard_frames_recall_and_false_detections_with_the_shipped_defaults() {
    let Some(faces) = ferplus_faces(5) else { return };
    let t = hard_tally(&faces, 60, 3);
    println!(
        "hard frames: {} faces, recall {:.3}, precision {:.3}, mean IoU {:.3}, {:.3} false a frame",
        t.faces,
        t.recall(),
        t.precision(),
        t.mean_iou(),
        t.false_per_frame()
    );
    assert!(t.faces >= 80, "too few faces placed: {}", t.faces);
    assert!(
        t.recall() >= HARD_MIN_RECALL,
        "recall {:.3} < {HARD_MIN_RECALL}",
        t.recall()
    );
    assert!(
        t.false_per_frame() <= HARD_MAX_FALSE,
        "{:.3} false detections a frame > {HARD_MAX_FALSE}",
        t.false_per_frame()
    );
    assert!(t.mean_iou() >= 0.6, "mean IoU {:.3}", t.mean_iou());
}

/// The detector with the shipped `[run]` settings (width, threshold).
fn shipped_detector() -> FaceDetector {
    let config = paca_fer::config::Config::default();
    FaceDetector::load(
        &model_path(),
        DetectorConfig {
            width: config.run.detect_width,
            threshold: config.run.detect_threshold,
            ..DetectorConfig::default()
        },
    )
    .unwrap()
}

/// `frame` moved by (dx, dy) pixels on a grey canvas of the same size.
fn shifted(frame: &RgbImage, dx: i64, dy: i64) -> RgbImage {
    let mut out = RgbImage::from_pixel(frame.width(), frame.height(), Rgb([128, 128, 128]));
    imageops::overlay(&mut out, frame, dx, dy);
    out
}

#[test]
fn known_faces_are_found_again_in_windows_after_they_moved() {
    use paca_fer::pipeline::frames::{HardSpec, hard_frame};
    let Some(faces) = ferplus_faces(5) else { return };
    let det = shipped_detector();
    let mut rng = Rng(11);
    let (mut known, mut again, mut ious) = (0usize, 0usize, Vec::new());
    for i in 0..30u64 {
        let n = 1 + rng.below(4) as usize;
        let chosen: Vec<RgbImage> = (0..n)
            .map(|_| faces[rng.below(faces.len() as u32) as usize].clone())
            .collect();
        let frame = hard_frame(&chosen, &HardSpec::default(), 7000 + i).image;
        let before = det.detect(&frame).unwrap();
        // The whole scene moves by up to 12 px, as a face between two webcam frames.
        let (dx, dy) = (rng.below(25) as i64 - 12, rng.below(25) as i64 - 12);
        let moved = shifted(&frame, dx, dy);
        let after = det.detect_near(&moved, &before).unwrap();
        assert!(
            after.len() <= before.len(),
            "re-detection only looks for known faces"
        );
        known += before.len();
        for b in &before {
            let want = FaceBox {
                x: b.x + dx as f32,
                y: b.y + dy as f32,
                ..*b
            };
            if let Some(best) = after.iter().map(|a| a.iou(&want)).reduce(f32::max)
                && best >= 0.5
            {
                again += 1;
                ious.push(best);
            }
        }
        for a in &after {
            assert!(a.score >= det.config().threshold, "{a:?}");
        }
    }
    let rate = again as f64 / known.max(1) as f64;
    let mean_iou = ious.iter().sum::<f32>() / ious.len().max(1) as f32;
    println!("re-detection: {again} of {known} known faces found again, mean IoU {mean_iou:.3}");
    assert!(known >= 20, "the full passes found only {known} faces");
    assert!(rate >= 0.9, "only {again} of {known} moved faces found again");
    assert!(
        mean_iou >= 0.75,
        "re-detected boxes are off: mean IoU {mean_iou:.3}"
    );
    // No priors: nothing is looked for. A prior on bare background finds nothing.
    let empty = hard_frame(&[], &HardSpec::default(), 1);
    assert!(det.detect_near(&empty.image, &[]).unwrap().is_empty());
    let nowhere = det
        .detect_near(&empty.image, &[boxed(300.0, 200.0, 80.0, 80.0)])
        .unwrap();
    assert!(nowhere.is_empty(), "{nowhere:?}");
}
