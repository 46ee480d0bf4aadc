//! Runs the CenterFace network with burn (any backend: Flex or NdArray on CPU, CUDA, …).

use burn::prelude::*;
use burn::tensor::TensorData;

use crate::face::RawMaps;
use crate::face::centerface_net::Model;

/// The four CenterFace outputs for one image, owned and row-major.
#[derive(Debug, Clone)]
pub struct Outputs {
    /// Output grid width (input width / 4).
    pub grid_w: usize,
    /// Output grid height (input height / 4).
    pub grid_h: usize,
    /// Heat-map, grid_h·grid_w values.
    pub heat: Vec<f32>,
    /// Log box size (height, width planes).
    pub scale: Vec<f32>,
    /// Centre offset (y, x planes).
    pub offset: Vec<f32>,
    /// Landmarks (10 planes).
    pub landmarks: Vec<f32>,
}

impl Outputs {
    /// Borrowed view for [`decode`](crate::face::decode).
    pub fn maps(&self) -> RawMaps<'_> {
        RawMaps {
            grid_w: self.grid_w,
            grid_h: self.grid_h,
            heat: &self.heat,
            scale: &self.scale,
            offset: &self.offset,
            landmarks: &self.landmarks,
        }
    }
}

/// The CenterFace network with its weights, on one burn device.
#[derive(Debug)]
pub struct Engine<B: Backend> {
    model: Model<B>,
    device: B::Device,
}

/// Copies one `[1, ch, gh, gw]` output tensor to the host, checking its shape.
fn host<B: Backend>(
    t: Tensor<B, 4>,
    name: &str,
    ch: usize,
    gh: usize,
    gw: usize,
) -> Result<Vec<f32>, String> {
    let dims = t.dims();
    if dims != [1, ch, gh, gw] {
        return Err(format!(
            "{name} output has shape {dims:?}, expected [1, {ch}, {gh}, {gw}]"
        ));
    }
    t.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| format!("{name} output: {e:?}"))
}

impl<B: Backend> Engine<B> {
    /// Builds the network on `device` with the weights of the ONNX model in `bytes`.
    pub fn from_bytes(bytes: &[u8], device: &B::Device) -> Result<Self, String> {
        if bytes.is_empty() {
            return Err("the file is empty".into());
        }
        let model = crate::face::weights::load::<B>(bytes, device)?;
        Ok(Self {
            model,
            device: device.clone(),
        })
    }

    /// Runs the network on one planar RGB image of `w`×`h` pixels (multiples of 32).
    pub fn run(&self, input: Vec<f32>, w: usize, h: usize) -> Result<Outputs, String> {
        if !w.is_multiple_of(32) || !h.is_multiple_of(32) || input.len() != 3 * w * h {
            return Err(format!("bad input: {} values for 3x{h}x{w}", input.len()));
        }
        let x = Tensor::<B, 4>::from_data(TensorData::new(input, [1, 3, h, w]), &self.device);
        let (heat, scale, offset, landmarks) = self.model.forward(x);
        let (gw, gh) = (w / 4, h / 4);
        Ok(Outputs {
            grid_w: gw,
            grid_h: gh,
            heat: host(heat, "heat-map", 1, gh, gw)?,
            scale: host(scale, "scale", 2, gh, gw)?,
            offset: host(offset, "offset", 2, gh, gw)?,
            landmarks: host(landmarks, "landmarks", 10, gh, gw)?,
        })
    }
}
