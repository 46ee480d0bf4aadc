//! torchvision ResNet-50 (bottleneck v1.5: stride on the 3×3 convolution) as a patch embedder.
//!
//! Two modes ([`ResNetMode`]):
//! - `FeatureMap`: the whole 96×96 face goes through `conv1 … layer3` (stride 16), giving a
//!   6×6×1024 map → one 1024-d embedding per patch, one pass per face (cheap; `layer4` is not
//!   built and its tensors are ignored when loading).
//! - `PerPatch`: each 16×16 patch is cut out, upsampled bilinearly (PyTorch
//!   `F.interpolate(mode="bilinear", align_corners=False)`) to `patch_resize`×`patch_resize`
//!   (default 64), run through the full network to `layer4`, and globally average-pooled → the
//!   2048-d patch embedding of the study. 36 forward passes per face: ≈ 36 × 0.33 GMAC at 64×64,
//!   so precompute these offline. 224 reproduces the ImageNet scale but costs 12× more.
//!
//! No weights ship: load torchvision-named safetensors (`conv1.weight`, `bn1.*`,
//! `layer1.0.conv1.weight`, `layer1.0.downsample.0.weight`, …; `fc.*` is ignored).

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use burn::config::Config;
use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::module::max_pool2d;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::layers::ConvBn;
use super::weights::{ConvSpec, ParamSource, WeightFile};
use super::{EMBED_CHUNK, EmbedError, NUM_PATCHES, PATCH, check_input, in_chunks};

/// How a ResNet turns a face into 36 patch embeddings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResNetMode {
    /// One pass over the 96×96 face; `layer3` (stride 16) gives 6×6 × 1024.
    #[default]
    FeatureMap,
    /// Each 16×16 patch upsampled and pooled after `layer4` → 2048-d.
    PerPatch,
}

impl ResNetMode {
    /// The name used in [`super::EmbedderKind`] strings (`feature_map`, `per_patch`).
    pub fn name(self) -> &'static str {
        match self {
            ResNetMode::FeatureMap => "feature_map",
            ResNetMode::PerPatch => "per_patch",
        }
    }
}

impl fmt::Display for ResNetMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ResNetMode {
    type Err = EmbedError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "feature_map" => Ok(ResNetMode::FeatureMap),
            "per_patch" => Ok(ResNetMode::PerPatch),
            other => Err(EmbedError::UnknownKind(other.to_string())),
        }
    }
}

/// ResNet-50 stage depths (`layer1 … layer4`).
const RESNET50_BLOCKS: [usize; 4] = [3, 4, 6, 3];
/// Bottleneck expansion: output channels = 4 × the block's inner width.
const EXPANSION: usize = 4;

/// Configuration of a [`ResNetEmbedder`].
#[derive(Config, Debug)]
pub struct ResNetConfig {
    /// Feature-map or per-patch embedding.
    #[config(default = "ResNetMode::FeatureMap")]
    pub mode: ResNetMode,
    /// Side the 16×16 patches are upsampled to in `PerPatch` mode (multiple of 32 recommended).
    #[config(default = 64)]
    pub patch_resize: usize,
    /// Divides every channel count (1 = ResNet-50); >1 only for small test fixtures.
    #[config(default = 1)]
    pub width_divisor: usize,
}

impl ResNetConfig {
    /// Embedding size: `1024 / width_divisor` (feature map) or `2048 / width_divisor` (per patch).
    pub fn feat_dim(&self) -> usize {
        let div = self.width_divisor.max(1);
        match self.mode {
            ResNetMode::FeatureMap => 256 * EXPANSION / div,
            ResNetMode::PerPatch => 512 * EXPANSION / div,
        }
    }
}

/// A bottleneck block: 1×1 reduce → 3×3 (stride) → 1×1 expand, plus identity/projection shortcut.
#[derive(Module, Debug)]
pub struct Bottleneck<B: Backend> {
    /// 1×1 reduction + ReLU.
    conv1: ConvBn<B>,
    /// 3×3 convolution with the block's stride + ReLU.
    conv2: ConvBn<B>,
    /// 1×1 expansion (ReLU after the sum).
    conv3: ConvBn<B>,
    /// 1×1 strided projection shortcut when shape changes.
    downsample: Option<ConvBn<B>>,
}

impl<B: Backend> Bottleneck<B> {
    /// Builds block `prefix` (e.g. `layer2.0`).
    fn build(
        source: &ParamSource<'_>,
        prefix: &str,
        (inp, width, stride): (usize, usize, usize),
        device: &B::Device,
    ) -> Result<Self, EmbedError> {
        let out = width * EXPANSION;
        let cb = |name: &str, spec| {
            ConvBn::build(
                source,
                &format!("{prefix}.conv{name}"),
                &format!("{prefix}.bn{name}"),
                spec,
                device,
            )
        };
        let conv1 = cb("1", ConvSpec::new(inp, width, 1, 1))?;
        let conv2 = cb("2", ConvSpec::new(width, width, 3, stride))?;
        let conv3 = cb("3", ConvSpec::new(width, out, 1, 1))?;
        let downsample = if stride != 1 || inp != out {
            Some(ConvBn::build(
                source,
                &format!("{prefix}.downsample.0"),
                &format!("{prefix}.downsample.1"),
                ConvSpec::new(inp, out, 1, stride),
                device,
            )?)
        } else {
            None
        };
        Ok(Self {
            conv1,
            conv2,
            conv3,
            downsample,
        })
    }

    /// Applies the block.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let h = self.conv1.forward(x.clone()).clamp_min(0.0);
        let h = self.conv2.forward(h).clamp_min(0.0);
        let h = self.conv3.forward(h);
        let identity = match &self.downsample {
            Some(d) => d.forward(x),
            None => x,
        };
        (h + identity).clamp_min(0.0)
    }
}

/// ResNet-50 patch embedder (see the module docs for the two modes).
#[derive(Module, Debug)]
pub struct ResNetEmbedder<B: Backend> {
    /// 7×7 stride-2 stem + ReLU (a 3×3 stride-2 max-pool follows).
    stem: ConvBn<B>,
    /// `layer1 … layer3`, plus `layer4` in per-patch mode.
    stages: Vec<Vec<Bottleneck<B>>>,
    /// Whether this embedder runs per patch (`true`) or on the whole face's feature map.
    per_patch: bool,
    /// Upsampled patch side in per-patch mode.
    patch_resize: usize,
    /// Output channels of the last built stage (the embedding size).
    out_dim: usize,
}

impl<B: Backend> ResNetEmbedder<B> {
    /// Builds the network from torchvision-named tensors in the safetensors file at `path`.
    pub fn load(config: &ResNetConfig, path: &Path, device: &B::Device) -> Result<Self, EmbedError> {
        let file = WeightFile::open(path)?;
        Self::build(config, &ParamSource::File(&file), device)
    }

    /// Builds the network with random (Kaiming-normal) weights, for tests and shape checks.
    pub fn random(config: &ResNetConfig, device: &B::Device) -> Result<Self, EmbedError> {
        Self::build(config, &ParamSource::Random, device)
    }

    /// Shared construction for both parameter sources.
    fn build(
        config: &ResNetConfig,
        source: &ParamSource<'_>,
        device: &B::Device,
    ) -> Result<Self, EmbedError> {
        let div = config.width_divisor;
        if div == 0 || 64 % div != 0 {
            return Err(EmbedError::Config(format!(
                "width_divisor must divide 64, got {div}"
            )));
        }
        if config.patch_resize < PATCH {
            return Err(EmbedError::Config(format!(
                "patch_resize must be at least {PATCH}, got {}",
                config.patch_resize
            )));
        }
        let per_patch = config.mode == ResNetMode::PerPatch;
        let stem_ch = 64 / div;
        let stem = ConvBn::build(source, "conv1", "bn1", ConvSpec::new(3, stem_ch, 7, 2), device)?;
        let n_stages = if per_patch { 4 } else { 3 };
        let mut stages = Vec::with_capacity(n_stages);
        let mut inp = stem_ch;
        for (s, &blocks) in RESNET50_BLOCKS.iter().enumerate().take(n_stages) {
            let width = (64 << s) / div;
            let mut stage = Vec::with_capacity(blocks);
            for i in 0..blocks {
                let stride = if i == 0 && s > 0 { 2 } else { 1 };
                let prefix = format!("layer{}.{i}", s + 1);
                stage.push(Bottleneck::build(source, &prefix, (inp, width, stride), device)?);
                inp = width * EXPANSION;
            }
            stages.push(stage);
        }
        Ok(Self {
            stem,
            stages,
            per_patch,
            patch_resize: config.patch_resize,
            out_dim: inp,
        })
    }

    /// Embedding size (1024 or 2048 for ResNet-50).
    pub fn feat_dim(&self) -> usize {
        self.out_dim
    }

    /// The mode this embedder was built for.
    pub fn mode(&self) -> ResNetMode {
        if self.per_patch {
            ResNetMode::PerPatch
        } else {
            ResNetMode::FeatureMap
        }
    }

    /// Runs stem + all built stages: `[N, 3, H, W]` → `[N, C, H/s, W/s]` (s = 16 or 32).
    pub fn forward_features(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = self.stem.forward(x).clamp_min(0.0);
        let mut x = max_pool2d(x, [3, 3], [2, 2], [1, 1], [1, 1], false);
        for stage in &self.stages {
            for block in stage {
                x = block.forward(x);
            }
        }
        x
    }

    /// Embeds ImageNet-normalised `[B, 3, 96, 96]` faces → `[B, 36, feat_dim]`, patch = row*6+col.
    pub fn embed(&self, images: Tensor<B, 4>) -> Result<Tensor<B, 3>, EmbedError> {
        check_input(&images)?;
        let c = self.out_dim;
        if !self.per_patch {
            return Ok(in_chunks(images, EMBED_CHUNK, |x| {
                let fmap = self.forward_features(x);
                let [b, _, _, _] = fmap.dims();
                fmap.reshape([b, c, NUM_PATCHES]).swap_dims(1, 2)
            }));
        }
        // One face (36 patches) per pass.
        Ok(in_chunks(images, 1, |x| {
            let [b, _, _, _] = x.dims();
            let patches = super::split_patches(x); // [b*36, 3, 16, 16]
            let up = upsample_bilinear(patches, self.patch_resize);
            let fmap = self.forward_features(up);
            let [n, _, h, w] = fmap.dims();
            let pooled = fmap.reshape([n, c, h * w]).mean_dim(2); // global average pool
            pooled.reshape([b, NUM_PATCHES, c])
        }))
    }
}

/// Row-interpolation matrix `[out, inp]` of PyTorch's bilinear resize with `align_corners=False`.
fn bilinear_matrix(inp: usize, out: usize) -> Vec<f32> {
    let scale = inp as f64 / out as f64;
    let mut m = vec![0f32; out * inp];
    for o in 0..out {
        let src = ((o as f64 + 0.5) * scale - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(inp - 1);
        let i1 = (i0 + 1).min(inp - 1);
        let l1 = (src - i0 as f64) as f32;
        m[o * inp + i0] += 1.0 - l1;
        m[o * inp + i1] += l1;
    }
    m
}

/// Bilinear resize of `[N, C, h, w]` to `[N, C, size, size]` as two small matrix products,
/// matching `F.interpolate(mode="bilinear", align_corners=False)` for upsampling.
pub fn upsample_bilinear<B: Backend>(x: Tensor<B, 4>, size: usize) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let device = x.device();
    let my: Tensor<B, 2> = Tensor::from_data(TensorData::new(bilinear_matrix(h, size), [size, h]), &device);
    let mx: Tensor<B, 2> = Tensor::from_data(TensorData::new(bilinear_matrix(w, size), [size, w]), &device);
    // Columns: [N*C*h, w] · [w, size] → [N*C, h, size].
    let cols = x.reshape([n * c * h, w]).matmul(mx.transpose());
    // Rows: [N*C*size, h] · [h, size] → [N*C, size(cols), size(rows)].
    let rows = cols
        .reshape([n * c, h, size])
        .swap_dims(1, 2)
        .reshape([n * c * size, h])
        .matmul(my.transpose());
    rows.reshape([n * c, size, size])
        .swap_dims(1, 2)
        .reshape([n, c, size, size])
}
