//! Patch embedders: a 96×96 RGB face → 36 patches (6×6 grid of 16×16) → one vector per patch.
//!
//! **Input convention (all embedders):** `[B, 3, 96, 96]` RGB, ImageNet-normalised — first scale
//! pixels to `[0, 1]` (gray faces: copy the gray channel to R, G and B), then call
//! [`normalize_imagenet`]. **Output:** `[B, 36, feat_dim]`, patch index `row * 6 + col`
//! (row-major over the 6×6 grid, row 0 at the top).
//!
//! | kind (`FromStr`/`Display`) | what | `feat_dim` |
//! |---|---|---|
//! | `pixels` | raw normalised patch, channel-major | 768 |
//! | `mobilenet_v2` | MobileNetV2 `features[:14]`, stride 16, ImageNet weights | 96 |
//! | `resnet50` (`resnet50:feature_map`) | ResNet-50 `layer3`, stride 16 | 1024 |
//! | `resnet50:per_patch` | ResNet-50 `layer4` + avg-pool on each upsampled patch | 2048 |
//!
//! The CNNs are frozen feature extractors: BatchNorm is folded into the convolutions at load
//! time (inference mode on every backend, autodiff included) and no parameter requires a
//! gradient. Prefer running them on the inner (non-autodiff) backend, or precomputing features.

mod faces;
pub mod layers;
pub mod mobilenet;
pub mod pixels;
pub mod resnet;
mod weights;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

pub use faces::embed_faces;
pub use mobilenet::{
    FINETUNED_EMBEDDER_FILE, MOBILENET_V2_BLOCKS, MOBILENET_V2_DIM, MOBILENET_V2_WEIGHTS_FILE,
    MobileNetV2Embedder,
};
pub use pixels::{PIXELS_DIM, PixelEmbedder};
pub use resnet::{ResNetConfig, ResNetEmbedder, ResNetMode};

/// Side of the square input face, in pixels.
pub const INPUT_SIZE: usize = 96;
/// Side of one square patch, in pixels.
pub const PATCH: usize = 16;
/// Patches per row and per column (96 / 16).
pub const GRID: usize = INPUT_SIZE / PATCH;
/// Patches per face (6 × 6).
pub const NUM_PATCHES: usize = GRID * GRID;
/// ImageNet per-channel RGB mean (torchvision), applied to `[0, 1]` pixels.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet per-channel RGB standard deviation (torchvision).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Errors from building or running an embedder; each names the file/tensor and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The weights file could not be read.
    #[error("cannot read embedder weights {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The file is not valid safetensors (truncated, bad header, …).
    #[error("embedder weights {path} are not a valid safetensors file: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// A tensor the architecture needs is absent.
    #[error("embedder weights {path}: tensor `{name}` is missing (expected shape {expected:?})")]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// torchvision tensor name.
        name: String,
        /// Shape the architecture needs.
        expected: Vec<usize>,
    },
    /// A tensor has the wrong shape for the architecture.
    #[error("embedder weights {path}: tensor `{name}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        /// The file.
        path: PathBuf,
        /// torchvision tensor name.
        name: String,
        /// Shape the architecture needs.
        expected: Vec<usize>,
        /// Shape found in the file.
        found: Vec<usize>,
    },
    /// The embedder kind needs a weights file but none was given.
    #[error("embedder `{0}` needs a weights file (torchvision-named safetensors)")]
    WeightsRequired(EmbedderKind),
    /// An unrecognised embedder name.
    #[error(
        "unknown embedder `{0}` (expected pixels, mobilenet_v2, resnet50, resnet50:feature_map \
         or resnet50:per_patch)"
    )]
    UnknownKind(String),
    /// Invalid embedder configuration.
    #[error("invalid embedder configuration: {0}")]
    Config(String),
    /// The input images do not have the shape `[B, 3, 96, 96]`.
    #[error("embedder input must be [B, 3, 96, 96] with B > 0, got {0:?}")]
    InputShape(Vec<usize>),
    /// A face handed to [`embed_faces`] is not the 96×96 crop every embedder takes.
    #[error(
        "face {index} is {width}×{height}; faces must be {INPUT_SIZE}×{INPUT_SIZE} (crop and resize first)"
    )]
    FaceSize {
        /// Position of the face in the batch.
        index: usize,
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
    },
}

/// Checks that `images` is `[B, 3, 96, 96]` with `B > 0` and returns its dimensions.
pub(crate) fn check_input<B: Backend>(images: &Tensor<B, 4>) -> Result<[usize; 4], EmbedError> {
    let dims = images.dims();
    if dims[0] == 0 || dims[1..] != [3, INPUT_SIZE, INPUT_SIZE] {
        return Err(EmbedError::InputShape(dims.to_vec()));
    }
    Ok(dims)
}

/// Images per forward pass inside the CNN embedders: larger batches are split into chunks of
/// this size (activations then stay in cache; on NdArray, batch 64 in one pass is ~2× slower
/// per image than eight passes of 8).
pub const EMBED_CHUNK: usize = 8;

/// Applies `f` to `x` in chunks of `chunk` along the batch axis and concatenates the results.
pub(crate) fn in_chunks<B: Backend, const D: usize>(
    x: Tensor<B, 4>,
    chunk: usize,
    f: impl Fn(Tensor<B, 4>) -> Tensor<B, D>,
) -> Tensor<B, D> {
    if x.dims()[0] <= chunk {
        return f(x);
    }
    Tensor::cat(x.split(chunk, 0).into_iter().map(f).collect(), 0)
}

/// ImageNet normalisation of `[B, 3, H, W]` RGB in `[0, 1]`: `(x - mean) / std` per channel.
pub fn normalize_imagenet<B: Backend>(images: Tensor<B, 4>) -> Tensor<B, 4> {
    let device = images.device();
    let [b, c, h, w] = images.dims();
    let per_image = |v: [f32; 3]| layers::per_channel(Tensor::<B, 1>::from_floats(v, &device), b);
    ((images.reshape([b, c, h * w]) - per_image(IMAGENET_MEAN)) / per_image(IMAGENET_STD))
        .reshape([b, c, h, w])
}

/// Cuts `[B, C, 96, 96]` into `[B * 36, C, 16, 16]`, patches in row-major grid order.
pub fn split_patches<B: Backend>(images: Tensor<B, 4>) -> Tensor<B, 4> {
    let [b, ch, _, _] = images.dims();
    images
        .reshape([b, ch, GRID, PATCH, GRID, PATCH])
        .permute([0, 2, 4, 1, 3, 5])
        .reshape([b * NUM_PATCHES, ch, PATCH, PATCH])
}

/// Which patch embedder to use; parses from / prints as `pixels`, `mobilenet_v2`, `resnet50`,
/// `resnet50:per_patch` (and `resnet50:feature_map`, printed as `resnet50`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum EmbedderKind {
    /// Raw 16×16×3 patches (768-d), no weights.
    #[default]
    Pixels,
    /// MobileNetV2 truncated at stride 16 (96-d), ImageNet weights.
    MobileNetV2,
    /// ResNet-50 (1024-d feature map or 2048-d per patch), user-supplied weights.
    ResNet50 {
        /// Feature-map or per-patch embedding.
        mode: ResNetMode,
    },
}

impl EmbedderKind {
    /// Embedding size per patch for this kind at full width.
    pub fn feat_dim(self) -> usize {
        match self {
            EmbedderKind::Pixels => PIXELS_DIM,
            EmbedderKind::MobileNetV2 => MOBILENET_V2_DIM,
            EmbedderKind::ResNet50 { mode } => ResNetConfig::new().with_mode(mode).feat_dim(),
        }
    }

    /// Whether [`Embedder::load`] needs a weights file for this kind.
    pub fn needs_weights(self) -> bool {
        !matches!(self, EmbedderKind::Pixels)
    }
}

impl fmt::Display for EmbedderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmbedderKind::Pixels => f.write_str("pixels"),
            EmbedderKind::MobileNetV2 => f.write_str("mobilenet_v2"),
            EmbedderKind::ResNet50 {
                mode: ResNetMode::FeatureMap,
            } => f.write_str("resnet50"),
            EmbedderKind::ResNet50 { mode } => write!(f, "resnet50:{mode}"),
        }
    }
}

impl FromStr for EmbedderKind {
    type Err = EmbedError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || EmbedError::UnknownKind(s.to_string());
        match s.trim() {
            "pixels" => Ok(EmbedderKind::Pixels),
            "mobilenet_v2" => Ok(EmbedderKind::MobileNetV2),
            "resnet50" => Ok(EmbedderKind::ResNet50 {
                mode: ResNetMode::FeatureMap,
            }),
            other => match other.strip_prefix("resnet50:") {
                Some(mode) => Ok(EmbedderKind::ResNet50 {
                    mode: mode.parse().map_err(|_| unknown())?,
                }),
                None => Err(unknown()),
            },
        }
    }
}

impl TryFrom<String> for EmbedderKind {
    type Error = EmbedError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<EmbedderKind> for String {
    fn from(kind: EmbedderKind) -> Self {
        kind.to_string()
    }
}

/// Any patch embedder, behind one `embed` call.
#[derive(Module, Debug)]
pub enum Embedder<B: Backend> {
    /// Raw patches.
    Pixels(PixelEmbedder<B>),
    /// MobileNetV2 stride-16 features.
    MobileNetV2(MobileNetV2Embedder<B>),
    /// ResNet-50 features.
    ResNet50(ResNetEmbedder<B>),
}

impl<B: Backend> Embedder<B> {
    /// Builds `kind`, loading torchvision-named safetensors `weights` (ignored for `pixels`).
    /// ResNet-50 uses [`ResNetConfig`] defaults (per-patch resize 64).
    pub fn load(kind: EmbedderKind, weights: Option<&Path>, device: &B::Device) -> Result<Self, EmbedError> {
        if !kind.needs_weights() {
            if let Some(path) = weights {
                log::warn!("embedder `{kind}` has no weights; ignoring {}", path.display());
            }
            return Ok(Embedder::Pixels(PixelEmbedder::new()));
        }
        let path = weights.ok_or(EmbedError::WeightsRequired(kind))?;
        match kind {
            EmbedderKind::Pixels => Ok(Embedder::Pixels(PixelEmbedder::new())),
            EmbedderKind::MobileNetV2 => Ok(Embedder::MobileNetV2(MobileNetV2Embedder::load(path, device)?)),
            EmbedderKind::ResNet50 { mode } => Ok(Embedder::ResNet50(ResNetEmbedder::load(
                &ResNetConfig::new().with_mode(mode),
                path,
                device,
            )?)),
        }
    }

    /// Builds `kind` with random weights (tests, shape checks, benchmarks without weights).
    pub fn random(kind: EmbedderKind, device: &B::Device) -> Result<Self, EmbedError> {
        Ok(match kind {
            EmbedderKind::Pixels => Embedder::Pixels(PixelEmbedder::new()),
            EmbedderKind::MobileNetV2 => Embedder::MobileNetV2(MobileNetV2Embedder::random(device)),
            EmbedderKind::ResNet50 { mode } => Embedder::ResNet50(ResNetEmbedder::random(
                &ResNetConfig::new().with_mode(mode),
                device,
            )?),
        })
    }

    /// The kind of this embedder.
    pub fn kind(&self) -> EmbedderKind {
        match self {
            Embedder::Pixels(_) => EmbedderKind::Pixels,
            Embedder::MobileNetV2(_) => EmbedderKind::MobileNetV2,
            Embedder::ResNet50(r) => EmbedderKind::ResNet50 { mode: r.mode() },
        }
    }

    /// Embedding size per patch.
    pub fn feat_dim(&self) -> usize {
        match self {
            Embedder::Pixels(_) => PIXELS_DIM,
            Embedder::MobileNetV2(_) => MOBILENET_V2_DIM,
            Embedder::ResNet50(r) => r.feat_dim(),
        }
    }

    /// ImageNet-normalised `[B, 3, 96, 96]` → `[B, 36, feat_dim]` (patch = row * 6 + col).
    pub fn embed(&self, images: Tensor<B, 4>) -> Result<Tensor<B, 3>, EmbedError> {
        match self {
            Embedder::Pixels(e) => e.embed(images),
            Embedder::MobileNetV2(e) => e.embed(images),
            Embedder::ResNet50(e) => e.embed(images),
        }
    }
}
