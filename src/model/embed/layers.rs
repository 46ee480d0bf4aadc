//! Building blocks shared by the CNN embedders.

use burn::module::{Module, Param};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use burn::tensor::module::conv2d;
use burn::tensor::ops::{ConvOptions, PadMode};

use super::EmbedError;
use super::weights::{ConvSpec, ParamSource};

/// A convolution with its BatchNorm folded in (inference mode), so it needs no batch statistics
/// and behaves the same on autodiff and plain backends.
#[derive(Module, Debug)]
pub struct ConvBn<B: Backend> {
    /// Fused weight `[out, in / groups, k, k]`.
    weight: Param<Tensor<B, 4>>,
    /// Fused bias `[out]`.
    bias: Param<Tensor<B, 1>>,
    /// Kernel side.
    kernel: usize,
    /// Stride on both axes.
    stride: usize,
    /// Symmetric zero padding.
    padding: usize,
    /// Convolution groups.
    groups: usize,
}

impl<B: Backend> ConvBn<B> {
    /// Loads (or randomly initialises) torch layers `conv` + `bn` with hyper-parameters `spec`.
    pub(crate) fn build(
        source: &ParamSource<'_>,
        conv: &str,
        bn: &str,
        spec: ConvSpec,
        device: &B::Device,
    ) -> Result<Self, EmbedError> {
        let (weight, bias) = source.conv_bn(conv, bn, spec, device)?;
        Ok(Self {
            weight,
            bias,
            kernel: spec.kernel,
            stride: spec.stride,
            padding: spec.padding,
            groups: spec.groups,
        })
    }

    /// Applies the fused convolution: `[N, in, H, W] -> [N, out, H', W']`.
    ///
    /// Pointwise (1×1, stride 1, ungrouped) convolutions run as one batched matrix product,
    /// several times faster than the generic direct convolution of the NdArray backend.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        if self.kernel == 1 && self.stride == 1 && self.groups == 1 && self.padding == 0 {
            let [n, c_in, h, w] = x.dims();
            let [c_out, _, _, _] = self.weight.dims();
            let weight = self.weight.val().reshape([1, c_out, c_in]);
            let y = weight.matmul(x.reshape([n, c_in, h * w]));
            return self.add_bias(y).reshape([n, c_out, h, w]);
        }
        let y = conv2d(
            x,
            self.weight.val(),
            None,
            ConvOptions::new(
                [self.stride, self.stride],
                [self.padding, self.padding],
                [1, 1],
                self.groups,
            ),
        );
        let [n, c_out, h, w] = y.dims();
        self.add_bias(y.reshape([n, c_out, h * w]))
            .reshape([n, c_out, h, w])
    }

    /// Adds the per-channel bias to `y: [N, C, L]` (as [`per_channel`] values; burn's own
    /// convolution bias gradient would copy the whole output once more).
    fn add_bias(&self, y: Tensor<B, 3>) -> Tensor<B, 3> {
        let [n, _, _] = y.dims();
        y + per_channel(self.bias.val(), n)
    }

    /// The fused weight `[out, in / groups, k, k]`.
    pub fn weight(&self) -> Tensor<B, 4> {
        self.weight.val()
    }

    /// Whether this is a 3×3 depthwise convolution with padding 1 (the MobileNetV2 middle layer).
    pub fn is_depthwise_3x3(&self) -> bool {
        let [c_out, c_in_per_group, _, _] = self.weight.dims();
        self.kernel == 3 && self.padding == 1 && self.groups == c_out && c_in_per_group == 1
    }

    /// Same result as [`Self::forward`], computing 3×3 depthwise layers as nine shifted,
    /// per-channel-scaled copies of the input instead of a grouped convolution.
    ///
    /// Used when training the embedder: burn-cubecl computes the weight gradient of a grouped
    /// convolution with one kernel launch per group (hundreds per layer), while these
    /// element-wise products differentiate cheaply on any backend. Stride 2 is the stride-1
    /// result sampled at even positions.
    pub fn forward_shifted(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        if !self.is_depthwise_3x3() || !matches!(self.stride, 1 | 2) {
            return self.forward(x);
        }
        let [n, c, h, w] = x.dims();
        let padded = x.pad((1, 1, 1, 1), PadMode::Constant(0.0));
        let weight = self.weight.val().reshape([c, 9]);
        let mut out = self.bias.val().reshape([1, c, 1, 1]);
        for dy in 0..3 {
            for dx in 0..3 {
                let tap = weight.clone().narrow(1, dy * 3 + dx, 1).reshape([1, c, 1, 1]);
                let window = padded.clone().narrow(2, dy, h).narrow(3, dx, w);
                out = out + window * tap;
            }
        }
        if self.stride == 1 {
            return out;
        }
        // Keep rows and columns 0, 2, 4, … (heights and widths here are even).
        let (ho, wo) = (h.div_ceil(2), w.div_ceil(2));
        let out = out.pad((0, wo * 2 - w, 0, ho * 2 - h), PadMode::Constant(0.0));
        out.reshape([n, c, ho, 2, wo, 2])
            .narrow(3, 0, 1)
            .narrow(5, 0, 1)
            .reshape([n, c, ho, wo])
    }
}

/// Per-channel values `[C]` as a contiguous `[N, C, 1]` tensor, to combine with `[N, C, L]`
/// activations. A `[1, C, 1]` broadcast over both N and L has no fast path in burn-flex (it walks
/// the output element by element: 11 % of a fine-tuning step); a contiguous `[N, C, 1]` operand
/// is a per-row scalar, which both CPU backends apply and differentiate with vector code.
pub(crate) fn per_channel<B: Backend>(values: Tensor<B, 1>, n: usize) -> Tensor<B, 3> {
    let [c] = values.dims();
    values.reshape([1, c, 1]).repeat_dim(0, n)
}
