//! Parity of the burn patch embedders with PyTorch references (`scripts/make_embed_fixtures.py`),
//! plus shape, loader-error and API checks.
//!
//! Fixtures: `tests/fixtures/embed/`. MobileNetV2 tests need `../shared/weights/` and fail when it
//! is absent (see `tests/common`). Timing: `cargo test --release --test embed_parity -- --ignored
//! --nocapture`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::{Tensor, TensorData};
use burn_ndarray::{NdArray, NdArrayDevice};
use paca_fer::model::embed::{
    EMBED_CHUNK, EmbedError, Embedder, EmbedderKind, MOBILENET_V2_WEIGHTS_FILE, MobileNetV2Embedder,
    PixelEmbedder, ResNetConfig, ResNetEmbedder, ResNetMode, normalize_imagenet,
};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

type B = NdArray<f32>;

/// Parity tolerance: max |burn - torch| / max |torch|.
const TOL: f32 = 1e-4;

fn fixture_dir() -> PathBuf {
    common::repo_root().join("tests/fixtures/embed")
}

/// torchvision's ImageNet MobileNetV2 weights in `../shared/weights/` (see [`common::shared`]).
fn mobilenet_weights() -> Option<PathBuf> {
    common::shared(&format!("weights/{MOBILENET_V2_WEIGHTS_FILE}"))
}

/// The ImageNet MobileNetV2 embedder from `../shared/weights/` (see [`common::shared`]).
fn mobilenet() -> Option<MobileNetV2Embedder<B>> {
    let weights = mobilenet_weights()?;
    Some(MobileNetV2Embedder::<B>::load(&weights, &NdArrayDevice::Cpu).unwrap())
}

/// Reads float32 tensor `name` from `embed_parity.safetensors` as (shape, values).
fn fixture(name: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(fixture_dir().join("embed_parity.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let view = st.tensor(name).unwrap();
    assert_eq!(view.dtype(), Dtype::F32);
    let values = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (view.shape().to_vec(), values)
}

fn fixture_tensor<const D: usize>(name: &str) -> Tensor<B, D> {
    let (shape, values) = fixture(name);
    Tensor::from_data(TensorData::new(values, shape), &NdArrayDevice::Cpu)
}

/// max |a - b| / max |b|, after checking shapes.
fn rel_err<const D: usize>(ours: Tensor<B, D>, reference: Tensor<B, D>) -> f32 {
    assert_eq!(ours.dims(), reference.dims());
    let diff: f32 = (ours - reference.clone()).abs().max().into_scalar();
    let scale: f32 = reference.abs().max().into_scalar();
    diff / scale
}

fn assert_parity<const D: usize>(what: &str, ours: Tensor<B, D>, reference: Tensor<B, D>) {
    let err = rel_err(ours, reference);
    println!("{what}: relative error {err:.3e}");
    assert!(err <= TOL, "{what}: relative error {err:.3e} > {TOL:e}");
}

#[test]
fn pixels_match_torch_unfold() {
    let input = fixture_tensor::<4>("input");
    let out = PixelEmbedder::<B>::new().embed(input).unwrap();
    assert_eq!(out.dims(), [2, 36, 768]);
    assert_eq!(rel_err(out, fixture_tensor("pixels")), 0.0);
}

#[test]
fn mobilenet_v2_matches_pytorch() {
    let Some(model) = mobilenet() else { return };
    let input = fixture_tensor::<4>("input");
    let expected = fixture_tensor::<3>("mobilenet_v2");
    let out = model.embed(input.clone()).unwrap();
    assert_eq!(out.dims(), [2, 36, 96]);
    for i in 0..2 {
        assert_parity(
            &format!("mobilenet_v2 image {i}"),
            out.clone().slice(i..i + 1),
            expected.clone().slice(i..i + 1),
        );
    }
    // Batch independence: a single image gives the same features as inside the batch.
    let single = model.embed(input.slice(1..2)).unwrap();
    assert_parity("mobilenet_v2 batch-1", single, expected.slice(1..2));
}

#[test]
fn mobilenet_v2_matches_pytorch_on_ferplus_face() {
    let Some(weights) = mobilenet_weights() else {
        return;
    };
    let bytes = std::fs::read(fixture_dir().join("embed_parity.safetensors")).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let face_rel = meta.metadata().as_ref().unwrap()["ferplus_face"].clone();
    let Some(face_path) = common::shared(&face_rel) else {
        return;
    };
    // Same preprocessing as the script: 48×48 gray → 2× nearest → RGB → [0, 1] → ImageNet.
    let gray = image::open(&face_path).unwrap().to_luma8();
    assert_eq!(gray.dimensions(), (48, 48));
    let mut plane = Vec::with_capacity(96 * 96);
    for y in 0..96u32 {
        for x in 0..96u32 {
            plane.push(f32::from(gray.get_pixel(x / 2, y / 2).0[0]) / 255.0);
        }
    }
    let rgb: Vec<f32> = plane.iter().cycle().take(3 * 96 * 96).copied().collect();
    let device = NdArrayDevice::Cpu;
    let x = normalize_imagenet(Tensor::<B, 4>::from_data(
        TensorData::new(rgb, [1, 3, 96, 96]),
        &device,
    ));
    let model = MobileNetV2Embedder::<B>::load(&weights, &device).unwrap();
    let out = model.embed(x).unwrap();
    assert_parity(
        "mobilenet_v2 FER+ face",
        out,
        fixture_tensor("mobilenet_v2_ferplus_face"),
    );
}

#[test]
fn mobilenet_v2_shifted_depthwise_path_matches_pytorch() {
    // The training path (depthwise layers as nine shifted products) against the same PyTorch
    // reference as the grouped-convolution path.
    let Some(model) = mobilenet() else { return };
    let out = model.embed_shifted(fixture_tensor::<4>("input")).unwrap();
    assert_parity("mobilenet_v2 shifted path", out, fixture_tensor("mobilenet_v2"));
}

#[test]
fn shifted_depthwise_gradients_equal_grouped_convolution_gradients() {
    // Both paths must give the same gradient with respect to the input and to the weights.
    type A = burn::backend::Autodiff<B>;
    let device = NdArrayDevice::Cpu;
    let model = paca_fer::train::finetune::trainable(MobileNetV2Embedder::<A>::random(&device));
    let x = Tensor::<A, 4>::random(
        [2, 3, 96, 96],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let probe = Tensor::<A, 3>::random([2, 36, 96], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
    let grads_of = |shifted: bool| {
        let x = x.clone().require_grad();
        let out = if shifted {
            model.embed_shifted(x.clone()).unwrap()
        } else {
            model.embed(x.clone()).unwrap()
        };
        let grads = (out * probe.clone()).sum().backward();
        let gx = x.grad(&grads).unwrap();
        // Block 3 has stride 2, block 5 stride 1.
        let gw: Vec<_> = [3, 5]
            .map(|b| model.depthwise_weight(b).unwrap().grad(&grads).unwrap())
            .into();
        (gx, gw)
    };
    let (gx_conv, gw_conv) = grads_of(false);
    let (gx_shift, gw_shift) = grads_of(true);
    assert_parity("input gradient", gx_shift, gx_conv);
    for (i, (s, c)) in gw_shift.into_iter().zip(gw_conv).enumerate() {
        assert_parity(&format!("depthwise weight gradient {i}"), s, c);
    }
}

fn small_resnet(mode: ResNetMode) -> ResNetEmbedder<B> {
    let config = ResNetConfig::new()
        .with_mode(mode)
        .with_width_divisor(8)
        .with_patch_resize(64);
    let path = fixture_dir().join("resnet50_div8_random_f16.safetensors");
    ResNetEmbedder::load(&config, &path, &NdArrayDevice::Cpu).unwrap()
}

#[test]
fn resnet_feature_map_matches_pytorch() {
    let model = small_resnet(ResNetMode::FeatureMap);
    assert_eq!(model.feat_dim(), 128);
    let out = model.embed(fixture_tensor("input")).unwrap();
    assert_parity(
        "resnet/8 feature_map",
        out,
        fixture_tensor("resnet_small_feature_map"),
    );
}

#[test]
fn resnet_per_patch_matches_pytorch() {
    let model = small_resnet(ResNetMode::PerPatch);
    assert_eq!(model.feat_dim(), 256);
    let out = model.embed(fixture_tensor("input")).unwrap();
    assert_parity(
        "resnet/8 per_patch",
        out,
        fixture_tensor("resnet_small_per_patch"),
    );
}

#[test]
fn autodiff_backend_uses_inference_batchnorm() {
    // BatchNorm is folded at load time, so an autodiff backend (where burn's own BatchNorm would
    // switch to batch statistics) gives the same features, and no parameter needs a gradient.
    type A = burn::backend::Autodiff<B>;
    let config = ResNetConfig::new().with_width_divisor(8);
    let path = fixture_dir().join("resnet50_div8_random_f16.safetensors");
    let model = ResNetEmbedder::<A>::load(&config, &path, &NdArrayDevice::Cpu).unwrap();
    let (shape, values) = fixture("input");
    let x = Tensor::<A, 4>::from_data(TensorData::new(values, shape), &NdArrayDevice::Cpu);
    let out = model.embed(x).unwrap();
    assert!(!out.is_require_grad());
    let out = Tensor::<B, 3>::from_data(out.into_data(), &NdArrayDevice::Cpu);
    assert_parity(
        "resnet/8 feature_map on Autodiff<NdArray>",
        out,
        fixture_tensor("resnet_small_feature_map"),
    );
}

#[test]
fn full_size_shapes_with_random_weights() {
    let device = NdArrayDevice::Cpu;
    let x = Tensor::<B, 4>::random(
        [2, 3, 96, 96],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    for kind in ["pixels", "mobilenet_v2", "resnet50"] {
        let kind: EmbedderKind = kind.parse().unwrap();
        let e = Embedder::<B>::random(kind, &device).unwrap();
        assert_eq!(e.kind(), kind);
        assert_eq!(e.feat_dim(), kind.feat_dim());
        let out = e.embed(x.clone()).unwrap();
        assert_eq!(out.dims(), [2, 36, kind.feat_dim()], "{kind}");
        let v: Vec<f32> = out.into_data().to_vec().unwrap();
        assert!(v.iter().all(|f| f.is_finite()), "{kind}");
    }
    // Per-patch ResNet-50 at a small resize to keep the test quick (layer4 → 1×1 at 32).
    let config = ResNetConfig::new()
        .with_mode(ResNetMode::PerPatch)
        .with_patch_resize(32);
    let e = ResNetEmbedder::<B>::random(&config, &device).unwrap();
    assert_eq!(e.feat_dim(), 2048);
    assert_eq!(e.embed(x.slice(0..1)).unwrap().dims(), [1, 36, 2048]);
}

#[test]
fn batches_larger_than_a_chunk_match_single_images() {
    let device = NdArrayDevice::Cpu;
    let model = MobileNetV2Embedder::<B>::random(&device);
    let n = EMBED_CHUNK + 2;
    let x = Tensor::<B, 4>::random(
        [n, 3, 96, 96],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let batched = model.embed(x.clone()).unwrap();
    assert_eq!(batched.dims(), [n, 36, 96]);
    for i in [0, EMBED_CHUNK - 1, EMBED_CHUNK, n - 1] {
        let single = model.embed(x.clone().slice(i..i + 1)).unwrap();
        assert!(
            rel_err(batched.clone().slice(i..i + 1), single) < 1e-5,
            "image {i}"
        );
    }
}

/// Rewrites the tensors of `src` through `edit` into a temporary safetensors file.
fn rewrite(
    src: &Path,
    tag: &str,
    edit: impl Fn(&str, TensorView<'_>) -> Option<(Vec<usize>, Vec<u8>, Dtype)>,
) -> PathBuf {
    let bytes = std::fs::read(src).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = st
        .iter()
        .filter_map(|(name, view)| {
            edit(name, view).map(|(shape, data, dtype)| (name.to_string(), dtype, shape, data))
        })
        .collect();
    let views = owned
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()));
    let out = safetensors::serialize(views, None).unwrap();
    let path = std::env::temp_dir().join(format!("paca_embed_{}_{tag}.safetensors", std::process::id()));
    std::fs::write(&path, out).unwrap();
    path
}

fn keep(view: TensorView<'_>) -> Option<(Vec<usize>, Vec<u8>, Dtype)> {
    Some((view.shape().to_vec(), view.data().to_vec(), view.dtype()))
}

#[test]
fn mobilenet_loader_errors_name_the_tensor() {
    let Some(weights) = mobilenet_weights() else {
        return;
    };
    let device = NdArrayDevice::Cpu;

    let missing = "features.5.conv.1.0.weight";
    let path = rewrite(&weights, "missing", |name, view| {
        (name != missing).then(|| keep(view)).flatten()
    });
    let err = MobileNetV2Embedder::<B>::load(&path, &device).unwrap_err();
    let msg = err.to_string();
    println!("{msg}");
    assert!(matches!(err, EmbedError::MissingTensor { ref name, .. } if name == missing));
    assert!(msg.contains(missing) && msg.contains("[192, 1, 3, 3]"), "{msg}");
    std::fs::remove_file(&path).ok();

    let bad = "features.12.conv.2.weight";
    let path = rewrite(&weights, "mismatch", |name, view| {
        if name == bad {
            Some((vec![96, 576], vec![0; 96 * 576 * 4], Dtype::F32))
        } else {
            keep(view)
        }
    });
    let err = MobileNetV2Embedder::<B>::load(&path, &device).unwrap_err();
    let msg = err.to_string();
    println!("{msg}");
    assert!(matches!(err, EmbedError::ShapeMismatch { ref name, .. } if name == bad));
    assert!(
        msg.contains(bad) && msg.contains("[96, 576, 1, 1]") && msg.contains("[96, 576]"),
        "{msg}"
    );
    std::fs::remove_file(&path).ok();

    // Truncated file: a format error naming the file, no panic.
    let bytes = std::fs::read(&weights).unwrap();
    let path = std::env::temp_dir().join(format!("paca_embed_{}_truncated.safetensors", std::process::id()));
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = MobileNetV2Embedder::<B>::load(&path, &device).unwrap_err();
    println!("{err}");
    assert!(matches!(err, EmbedError::Format { .. }));
    assert!(err.to_string().contains("truncated.safetensors"));
    std::fs::remove_file(&path).ok();
}

#[test]
fn loader_errors_without_shared_data() {
    let device = NdArrayDevice::Cpu;
    // A ResNet file lacking layer3's last block (always runnable: uses the committed fixture).
    let src = fixture_dir().join("resnet50_div8_random_f16.safetensors");
    let path = rewrite(&src, "resnet_missing", |name, view| {
        (!name.starts_with("layer3.5.")).then(|| keep(view)).flatten()
    });
    let config = ResNetConfig::new().with_width_divisor(8);
    let err = ResNetEmbedder::<B>::load(&config, &path, &device).unwrap_err();
    assert!(
        err.to_string().contains("`layer3.5.conv1.weight`") && err.to_string().contains("[32, 128, 1, 1]"),
        "{err}"
    );
    std::fs::remove_file(&path).ok();
    // A full-size ResNet-50 cannot load the reduced-width file: shape mismatch on the stem.
    let err = ResNetEmbedder::<B>::load(&ResNetConfig::new(), &src, &device).unwrap_err();
    assert!(err.to_string().contains("`conv1.weight`"), "{err}");
    // Missing file, missing weights argument, bad input shape.
    let err = MobileNetV2Embedder::<B>::load(Path::new("/nonexistent/w.safetensors"), &device).unwrap_err();
    assert!(matches!(err, EmbedError::Io { .. }) && err.to_string().contains("/nonexistent/w"));
    let err = Embedder::<B>::load(EmbedderKind::MobileNetV2, None, &device).unwrap_err();
    assert!(matches!(
        err,
        EmbedError::WeightsRequired(EmbedderKind::MobileNetV2)
    ));
    let e = Embedder::<B>::load(EmbedderKind::Pixels, None, &device).unwrap();
    let err = e.embed(Tensor::zeros([1, 3, 64, 64], &device)).unwrap_err();
    assert!(matches!(err, EmbedError::InputShape(_)), "{err}");
}

#[test]
fn kind_names_round_trip() {
    let cases = [
        ("pixels", EmbedderKind::Pixels, 768),
        ("mobilenet_v2", EmbedderKind::MobileNetV2, 96),
        (
            "resnet50",
            EmbedderKind::ResNet50 {
                mode: ResNetMode::FeatureMap,
            },
            1024,
        ),
        (
            "resnet50:per_patch",
            EmbedderKind::ResNet50 {
                mode: ResNetMode::PerPatch,
            },
            2048,
        ),
    ];
    for (name, kind, dim) in cases {
        assert_eq!(name.parse::<EmbedderKind>().unwrap(), kind);
        assert_eq!(kind.to_string(), name);
        assert_eq!(kind.feat_dim(), dim);
        let json = serde_json::to_string(&kind).unwrap();
        assert_eq!(json, format!("\"{name}\""));
        assert_eq!(serde_json::from_str::<EmbedderKind>(&json).unwrap(), kind);
    }
    assert_eq!(
        "resnet50:feature_map".parse::<EmbedderKind>().unwrap(),
        EmbedderKind::ResNet50 {
            mode: ResNetMode::FeatureMap
        }
    );
    for bad in ["", "resnet", "resnet50:", "resnet50:other", "MobileNetV2"] {
        assert!(bad.parse::<EmbedderKind>().is_err(), "{bad}");
    }
    assert!(serde_json::from_str::<EmbedderKind>("\"vgg\"").is_err());
}

#[test]
fn normalize_imagenet_per_channel() {
    let device = NdArrayDevice::Cpu;
    let x = Tensor::<B, 4>::ones([1, 3, 2, 2], &device).mul_scalar(0.5);
    let v: Vec<f32> = normalize_imagenet(x).into_data().to_vec().unwrap();
    let expect = [
        (0.5 - 0.485) / 0.229,
        (0.5 - 0.456) / 0.224,
        (0.5 - 0.406) / 0.225,
    ];
    for (c, e) in expect.iter().enumerate() {
        for v in &v[c * 4..c * 4 + 4] {
            assert!((v - e).abs() < 1e-6);
        }
    }
}

/// Times the MobileNetV2 stride-16 embedder (random weights: same cost as ImageNet ones).
#[test]
#[ignore = "timing; run with --ignored --nocapture in release"]
fn time_mobilenet_v2_embedder() {
    let device = NdArrayDevice::Cpu;
    let model = MobileNetV2Embedder::<B>::random(&device);
    for batch in [1usize, 8, 64] {
        let x = Tensor::<B, 4>::random(
            [batch, 3, 96, 96],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        // Warm-up.
        let _ = model.embed(x.clone()).unwrap().into_data();
        let reps = if batch == 1 { 50 } else { 5 };
        let t = Instant::now();
        for _ in 0..reps {
            let _ = model.embed(x.clone()).unwrap().into_data();
        }
        let ms = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
        println!(
            "MobileNetV2 stride-16 embed, batch {batch}: {ms:.2} ms/batch, {:.3} ms/image",
            ms / batch as f64
        );
    }
    // ResNet-50 for reference (random weights, batch 1, one timed run after a warm-up).
    for (mode, resize) in [(ResNetMode::FeatureMap, 64), (ResNetMode::PerPatch, 64)] {
        let config = ResNetConfig::new().with_mode(mode).with_patch_resize(resize);
        let model = ResNetEmbedder::<B>::random(&config, &device).unwrap();
        let x = Tensor::<B, 4>::zeros([1, 3, 96, 96], &device);
        let _ = model.embed(x.clone()).unwrap().into_data();
        let t = Instant::now();
        let _ = model.embed(x).unwrap().into_data();
        println!(
            "ResNet-50 {mode} (resize {resize}), batch 1: {:.1} ms/image",
            t.elapsed().as_secs_f64() * 1e3
        );
    }
}

#[test]
fn mobilenet_v2_prefix_then_suffix_matches_pytorch_at_every_split() {
    // Partial fine-tuning runs the frozen stem + first n blocks, then the rest: at every split,
    // with either depthwise form, the two halves together give PyTorch's embedding.
    let Some(model) = mobilenet() else { return };
    let x = fixture_tensor::<4>("input");
    for n in [0, 1, 6, 10, paca_fer::model::embed::MOBILENET_V2_BLOCKS] {
        for shifted in [false, true] {
            let out = model.embed_suffix(model.forward_prefix(x.clone(), n), n, shifted);
            assert_parity(
                &format!("mobilenet_v2 split after block {n} (shifted {shifted})"),
                out,
                fixture_tensor("mobilenet_v2"),
            );
        }
    }
}
