//! Reading torchvision-named safetensors files and turning Conv2d + BatchNorm2d pairs into
//! fused, inference-mode convolutions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::{Param, ParamId};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use super::EmbedError;

/// PyTorch's default `BatchNorm2d` epsilon, used by torchvision's MobileNetV2 and ResNet.
pub(crate) const BN_EPS: f64 = 1e-5;

/// One float tensor read from a safetensors file, converted to `f32`.
struct RawTensor {
    shape: Vec<usize>,
    values: Vec<f32>,
}

/// All floating-point tensors of one safetensors file, by name.
pub(crate) struct WeightFile {
    path: PathBuf,
    tensors: HashMap<String, RawTensor>,
}

impl WeightFile {
    /// Reads and parses `path`; integer tensors (`num_batches_tracked`) are skipped.
    pub(crate) fn open(path: &Path) -> Result<Self, EmbedError> {
        let bytes = std::fs::read(path).map_err(|source| EmbedError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let parsed = SafeTensors::deserialize(&bytes).map_err(|e| EmbedError::Format {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut tensors = HashMap::new();
        for (name, view) in parsed.iter() {
            let values = match decode_floats(view.dtype(), view.data()) {
                Some(v) => v,
                None => continue,
            };
            tensors.insert(
                name.to_string(),
                RawTensor {
                    shape: view.shape().to_vec(),
                    values,
                },
            );
        }
        Ok(Self {
            path: path.to_path_buf(),
            tensors,
        })
    }

    /// Returns the values of tensor `name`, checking that its shape is `expected`.
    pub(crate) fn get(&self, name: &str, expected: &[usize]) -> Result<&[f32], EmbedError> {
        let tensor = self.tensors.get(name).ok_or_else(|| EmbedError::MissingTensor {
            path: self.path.clone(),
            name: name.to_string(),
            expected: expected.to_vec(),
        })?;
        if tensor.shape != expected {
            return Err(EmbedError::ShapeMismatch {
                path: self.path.clone(),
                name: name.to_string(),
                expected: expected.to_vec(),
                found: tensor.shape.clone(),
            });
        }
        Ok(&tensor.values)
    }
}

/// Converts little-endian F32/F64/F16/BF16 bytes to `f32`; `None` for non-float dtypes.
fn decode_floats(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
    let values = match dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
            .collect(),
        _ => return None,
    };
    Some(values)
}

/// Exact IEEE-754 half → single conversion (normals, subnormals, infinities, NaN).
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let mant = u32::from(h & 0x3ff);
    let bits = match (exp, mant) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: value = m * 2^-24; normalise it into an f32.
            let shift = m.leading_zeros() - 21; // bring the top set bit to position 10
            let m = (m << shift) & 0x3ff;
            let e = 127 - 15 + 1 - shift;
            sign | (e << 23) | (m << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// A fused convolution's weight `[out, in / groups, k, k]` and bias `[out]`.
pub(crate) type FusedParams<B> = (Param<Tensor<B, 4>>, Param<Tensor<B, 1>>);

/// Where convolution parameters come from: a torchvision safetensors file, or random init.
pub(crate) enum ParamSource<'a> {
    /// Read `<conv>.weight` and the `<bn>.{weight,bias,running_mean,running_var}` tensors.
    File(&'a WeightFile),
    /// Kaiming-normal weights, BatchNorm at identity (`gamma = 1, beta = 0, mean = 0, var = 1`).
    Random,
}

/// Hyper-parameters of one convolution layer (square kernel, symmetric padding, no dilation).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConvSpec {
    /// Input channels.
    pub in_ch: usize,
    /// Output channels.
    pub out_ch: usize,
    /// Kernel side.
    pub kernel: usize,
    /// Stride on both axes.
    pub stride: usize,
    /// Zero padding on all four sides.
    pub padding: usize,
    /// Convolution groups (`in_ch` for a depthwise convolution).
    pub groups: usize,
}

impl ConvSpec {
    /// A `kernel`×`kernel` convolution with torchvision's "same-ish" padding `(kernel - 1) / 2`.
    pub(crate) fn new(in_ch: usize, out_ch: usize, kernel: usize, stride: usize) -> Self {
        Self {
            in_ch,
            out_ch,
            kernel,
            stride,
            padding: (kernel - 1) / 2,
            groups: 1,
        }
    }

    /// The same convolution split into `groups` groups.
    pub(crate) fn grouped(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// Shape of the torch weight `[out, in / groups, k, k]`.
    fn weight_shape(&self) -> [usize; 4] {
        [self.out_ch, self.in_ch / self.groups, self.kernel, self.kernel]
    }
}

impl ParamSource<'_> {
    /// Builds the fused weight and bias of `conv` (torch name prefix) followed by BatchNorm `bn`.
    ///
    /// BatchNorm in inference mode is `y = (x - mean) / sqrt(var + eps) * gamma + beta`, so it
    /// folds into the bias-free convolution as `W' = W * s`, `b' = beta - mean * s` with
    /// `s = gamma / sqrt(var + eps)` (computed in f64).
    pub(crate) fn conv_bn<B: Backend>(
        &self,
        conv: &str,
        bn: &str,
        spec: ConvSpec,
        device: &B::Device,
    ) -> Result<FusedParams<B>, EmbedError> {
        let shape = spec.weight_shape();
        let (weight, bias) = match self {
            ParamSource::Random => {
                let fan_in = (shape[1] * shape[2] * shape[3]) as f64;
                let std = (2.0 / fan_in).sqrt();
                let w = Tensor::<B, 4>::random(shape, Distribution::Normal(0.0, std), device);
                (w, Tensor::<B, 1>::zeros([spec.out_ch], device))
            }
            ParamSource::File(file) => {
                let w = file.get(&format!("{conv}.weight"), &shape)?;
                let c = [spec.out_ch];
                let gamma = file.get(&format!("{bn}.weight"), &c)?;
                let beta = file.get(&format!("{bn}.bias"), &c)?;
                let mean = file.get(&format!("{bn}.running_mean"), &c)?;
                let var = file.get(&format!("{bn}.running_var"), &c)?;
                let per_out = w.len() / spec.out_ch;
                let mut fused_w = Vec::with_capacity(w.len());
                let mut fused_b = Vec::with_capacity(spec.out_ch);
                for o in 0..spec.out_ch {
                    let s = f64::from(gamma[o]) / (f64::from(var[o]) + BN_EPS).sqrt();
                    fused_w.extend(
                        w[o * per_out..(o + 1) * per_out]
                            .iter()
                            .map(|&v| (f64::from(v) * s) as f32),
                    );
                    fused_b.push((f64::from(beta[o]) - f64::from(mean[o]) * s) as f32);
                }
                (
                    Tensor::<B, 4>::from_data(TensorData::new(fused_w, shape), device),
                    Tensor::<B, 1>::from_data(TensorData::new(fused_b, c), device),
                )
            }
        };
        // Frozen feature extractor: the parameters never require gradients.
        Ok((
            Param::initialized(ParamId::new(), weight),
            Param::initialized(ParamId::new(), bias),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::f16_to_f32;

    #[test]
    fn f16_conversion_matches_known_values() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert_eq!(f16_to_f32(0x03ff), 6.097_555e-5);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert!(f16_to_f32(0x7c00).is_infinite());
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x8000).to_bits(), 0x8000_0000);
    }
}
