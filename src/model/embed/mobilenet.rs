//! torchvision MobileNetV2 (width 1.0), truncated after `features[13]` (stride 16, 96 channels).
//!
//! With a 96×96 face the stride-16 map is exactly 6×6, so one forward pass yields one 96-d
//! ImageNet feature per 16×16 patch (the receptive field is larger than the patch, so each
//! embedding also sees context around its patch).
//!
//! Layer layout (torchvision `features` index: expansion t, output channels c, stride s):
//! `0`: 3×3 conv 3→32 s2 · `1`: t1 c16 · `2–3`: t6 c24 (s2) · `4–6`: t6 c32 (s2) ·
//! `7–10`: t6 c64 (s2) · `11–13`: t6 c96 — stride 2·2·2·2 = 16. `features[14]` (c160, s2) and
//! later layers are not built and their tensors are ignored when loading.

use std::path::Path;

use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use super::layers::ConvBn;
use super::weights::{ConvSpec, ParamSource, WeightFile};
use super::{EMBED_CHUNK, EmbedError, GRID, NUM_PATCHES, check_input, in_chunks};

/// Output channels of the truncated MobileNetV2 (`features[13]`), i.e. the embedding size.
pub const MOBILENET_V2_DIM: usize = 96;

/// File name of a fine-tuned MobileNetV2 (burn named MessagePack) inside a model folder.
pub const FINETUNED_EMBEDDER_FILE: &str = "embedder.mpk";

/// File name of torchvision's ImageNet MobileNetV2 weights as safetensors (in `../shared/weights/`).
pub const MOBILENET_V2_WEIGHTS_FILE: &str = "mobilenet_v2_imagenet_torchvision.safetensors";

/// torchvision's inverted-residual settings `(t, c, n, s)` up to the stride-16 stage.
const SETTINGS: [(usize, usize, usize, usize); 5] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
];

/// Inverted-residual blocks built (`features[1..=13]`): the most `--freeze-blocks` accepts.
pub const MOBILENET_V2_BLOCKS: usize = 13;

/// Channels of the stem convolution `features[0]`.
const STEM_CHANNELS: usize = 32;

/// ReLU6, as in torchvision's MobileNetV2.
fn relu6<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    x.clamp(0.0, 6.0)
}

/// One MobileNetV2 inverted-residual block: 1×1 expand → 3×3 depthwise → 1×1 linear projection.
#[derive(Module, Debug)]
pub struct InvertedResidual<B: Backend> {
    /// 1×1 expansion + ReLU6 (absent when the expansion factor is 1).
    expand: Option<ConvBn<B>>,
    /// 3×3 depthwise convolution + ReLU6 (carries the block's stride).
    depthwise: ConvBn<B>,
    /// 1×1 linear projection (no activation).
    project: ConvBn<B>,
    /// Whether the input is added back (stride 1 and equal channel counts).
    residual: bool,
}

impl<B: Backend> InvertedResidual<B> {
    /// Builds block `features.{index}` mapping `inp` to `out` channels with expansion `t`.
    fn build(
        source: &ParamSource<'_>,
        index: usize,
        (inp, out, stride, t): (usize, usize, usize, usize),
        device: &B::Device,
    ) -> Result<Self, EmbedError> {
        let hidden = inp * t;
        let p = format!("features.{index}.conv");
        // torchvision names: with expansion, conv.0 = expand, conv.1 = depthwise, conv.2/3 =
        // projection conv/BN; without, conv.0 = depthwise, conv.1/2 = projection conv/BN.
        let (expand, dw_idx, proj_idx) = if t == 1 {
            (None, 0, 1)
        } else {
            let e = ConvBn::build(
                source,
                &format!("{p}.0.0"),
                &format!("{p}.0.1"),
                ConvSpec::new(inp, hidden, 1, 1),
                device,
            )?;
            (Some(e), 1, 2)
        };
        let depthwise = ConvBn::build(
            source,
            &format!("{p}.{dw_idx}.0"),
            &format!("{p}.{dw_idx}.1"),
            ConvSpec::new(hidden, hidden, 3, stride).grouped(hidden),
            device,
        )?;
        let project = ConvBn::build(
            source,
            &format!("{p}.{proj_idx}"),
            &format!("{p}.{}", proj_idx + 1),
            ConvSpec::new(hidden, out, 1, 1),
            device,
        )?;
        Ok(Self {
            expand,
            depthwise,
            project,
            residual: stride == 1 && inp == out,
        })
    }

    /// Applies the block.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.forward_with(x, false)
    }

    /// Applies the block; `shifted` computes the depthwise layer as shifted products
    /// (see [`ConvBn::forward_shifted`]), for training on GPU backends.
    fn forward_with(&self, x: Tensor<B, 4>, shifted: bool) -> Tensor<B, 4> {
        let h = match &self.expand {
            Some(e) => relu6(e.forward(x.clone())),
            None => x.clone(),
        };
        let h = if shifted {
            self.depthwise.forward_shifted(h)
        } else {
            self.depthwise.forward(h)
        };
        let h = self.project.forward(relu6(h));
        if self.residual { h + x } else { h }
    }
}

/// MobileNetV2 `features[:14]`: a 96×96 ImageNet-normalised face → 6×6×96 → `[B, 36, 96]`.
#[derive(Module, Debug)]
pub struct MobileNetV2Embedder<B: Backend> {
    /// `features[0]`: 3×3 stride-2 convolution + ReLU6.
    stem: ConvBn<B>,
    /// `features[1..=13]`.
    blocks: Vec<InvertedResidual<B>>,
}

impl<B: Backend> MobileNetV2Embedder<B> {
    /// Builds the network from torchvision-named tensors in the safetensors file at `path`.
    /// A `.mpk` file is a fine-tuned trunk written by [`Self::save_mpk`] (see [`Self::load_mpk`]).
    pub fn load(path: &Path, device: &B::Device) -> Result<Self, EmbedError> {
        if path.extension().is_some_and(|e| e == "mpk") {
            return Self::load_mpk(path, device);
        }
        let file = WeightFile::open(path)?;
        Self::build(&ParamSource::File(&file), device)
    }

    /// Writes the (fine-tuned) weights to `path` as burn named MessagePack, atomically.
    pub fn save_mpk(&self, path: &Path) -> Result<(), EmbedError> {
        let bytes = Recorder::<B>::record(
            &NamedMpkBytesRecorder::<FullPrecisionSettings>::default(),
            self.clone().into_record(),
            (),
        )
        .map_err(|e| EmbedError::Format {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        crate::model::io::write_atomic(path, &bytes).map_err(|e| EmbedError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })
    }

    /// Loads weights written by [`Self::save_mpk`], checking every tensor against the architecture.
    pub fn load_mpk(path: &Path, device: &B::Device) -> Result<Self, EmbedError> {
        let bytes = std::fs::read(path).map_err(|source| EmbedError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let format = |reason: String| EmbedError::Format {
            path: path.to_path_buf(),
            reason,
        };
        let record: MobileNetV2EmbedderRecord<B> = Recorder::<B>::load(
            &NamedMpkBytesRecorder::<FullPrecisionSettings>::default(),
            bytes,
            device,
        )
        .map_err(|e| format(format!("not a MobileNetV2 embedder record: {e}")))?;
        let fresh = Self::random(device);
        if record.blocks.len() != fresh.blocks.len() {
            return Err(format(format!(
                "{} inverted-residual blocks in file, MobileNetV2 features[1..=13] has {}",
                record.blocks.len(),
                fresh.blocks.len()
            )));
        }
        for (i, (r, b)) in record.blocks.iter().zip(&fresh.blocks).enumerate() {
            if r.expand.is_some() != b.expand.is_some() {
                return Err(format(format!(
                    "block {}: expansion layer presence differs",
                    i + 1
                )));
            }
        }
        let expected = crate::model::io::ParamShapes::of(&fresh);
        let model = fresh.load_record(record);
        let found = crate::model::io::ParamShapes::of(&model);
        for ((name, want), (_, got)) in expected.iter().zip(&found) {
            if want != got {
                return Err(EmbedError::ShapeMismatch {
                    path: path.to_path_buf(),
                    name: name.clone(),
                    expected: want.clone(),
                    found: got.clone(),
                });
            }
        }
        Ok(model)
    }

    /// Builds the network with random (Kaiming-normal) weights, for tests and shape checks.
    pub fn random(device: &B::Device) -> Self {
        // A random source cannot miss a tensor.
        match Self::build(&ParamSource::Random, device) {
            Ok(m) => m,
            Err(e) => unreachable!("random MobileNetV2 init failed: {e}"),
        }
    }

    /// Shared construction for both parameter sources.
    fn build(source: &ParamSource<'_>, device: &B::Device) -> Result<Self, EmbedError> {
        let stem = ConvBn::build(
            source,
            "features.0.0",
            "features.0.1",
            ConvSpec::new(3, STEM_CHANNELS, 3, 2),
            device,
        )?;
        let mut blocks = Vec::new();
        let mut inp = STEM_CHANNELS;
        let mut index = 1;
        for (t, c, n, s) in SETTINGS {
            for i in 0..n {
                let stride = if i == 0 { s } else { 1 };
                blocks.push(InvertedResidual::build(
                    source,
                    index,
                    (inp, c, stride, t),
                    device,
                )?);
                inp = c;
                index += 1;
            }
        }
        Ok(Self { stem, blocks })
    }

    /// Runs the truncated network: `[B, 3, H, W]` → `[B, 96, H/16, W/16]`.
    pub fn forward_features(&self, images: Tensor<B, 4>) -> Tensor<B, 4> {
        self.forward_features_with(images, false)
    }

    /// [`Self::forward_features`] with the depthwise layers as shifted products (`shifted`).
    fn forward_features_with(&self, images: Tensor<B, 4>, shifted: bool) -> Tensor<B, 4> {
        self.blocks_from(self.forward_prefix(images, 0), 0, shifted)
    }

    /// Runs the stem and the first `n` inverted-residual blocks (`features[..=n]`): the frozen
    /// part of a partly fine-tuned trunk, computed once per batch without gradients.
    pub fn forward_prefix(&self, images: Tensor<B, 4>, n: usize) -> Tensor<B, 4> {
        let mut x = relu6(self.stem.forward(images));
        for block in self.blocks.iter().take(n) {
            x = block.forward(x);
        }
        x
    }

    /// Applies blocks `n..` (`features[n + 1..=13]`) to the output of the first `n`.
    fn blocks_from(&self, mut x: Tensor<B, 4>, n: usize, shifted: bool) -> Tensor<B, 4> {
        for block in self.blocks.iter().skip(n) {
            x = block.forward_with(x, shifted);
        }
        x
    }

    /// Runs blocks `n..` on [`Self::forward_prefix`]'s output → `[B, 36, 96]`, for training only
    /// the top of the trunk; `shifted` writes the depthwise layers as shifted products (cheap
    /// gradients on GPU backends; burn-ndarray's grouped convolution is faster on the CPU).
    pub fn embed_suffix(&self, x: Tensor<B, 4>, n: usize, shifted: bool) -> Tensor<B, 3> {
        patch_rows(self.blocks_from(x, n, shifted))
    }

    /// The fused 3×3 depthwise weight of block `features[block + 1]` (for inspecting training).
    pub fn depthwise_weight(&self, block: usize) -> Option<Tensor<B, 4>> {
        self.blocks.get(block).map(|b| b.depthwise.weight())
    }

    /// Embeds a batch `[B, 3, 96, 96]` → `[B, 36, 96]` in one pass (training, GPU evaluation), with depthwise
    /// layers written as shifted products so their gradients are cheap on every backend
    /// (same values as [`Self::embed`] up to float rounding).
    pub fn embed_shifted(&self, images: Tensor<B, 4>) -> Result<Tensor<B, 3>, EmbedError> {
        check_input(&images)?;
        Ok(patch_rows(self.forward_features_with(images, true)))
    }

    /// Embeds ImageNet-normalised `[B, 3, 96, 96]` faces → `[B, 36, 96]`, patch = row * 6 + col.
    pub fn embed(&self, images: Tensor<B, 4>) -> Result<Tensor<B, 3>, EmbedError> {
        check_input(&images)?;
        Ok(in_chunks(images, EMBED_CHUNK, |x| {
            let fmap = self.forward_features(x);
            debug_assert_eq!(fmap.dims()[1..], [MOBILENET_V2_DIM, GRID, GRID]);
            patch_rows(fmap)
        }))
    }
}

/// The 6×6 feature map `[B, C, 6, 6]` as one row per patch, `[B, 36, C]` (patch = row * 6 + col).
fn patch_rows<B: Backend>(fmap: Tensor<B, 4>) -> Tensor<B, 3> {
    let [b, c, _, _] = fmap.dims();
    fmap.reshape([b, c, NUM_PATCHES]).swap_dims(1, 2)
}
