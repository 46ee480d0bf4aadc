//! Loads CenterFace's weights from the shipped `.onnx` file into the burn network.
//!
//! burn-onnx names each layer after its ONNX node as parsed by `onnx-ir` (`conv2d1`,
//! `convtranspose2d1`, `batchnormalization1`, …); parsing the same file with the same
//! `onnx-ir` version at run time yields the same names, so every initializer lands in the
//! generated module's field of that name. Shapes are checked by burn when applying.

use burn::module::ParamId;
use burn::prelude::*;
use burn_store::{ModuleSnapshot, TensorSnapshot};
use onnx_ir::{Node, OnnxGraphBuilder};

use crate::face::centerface_net::Model;

/// Parameter names of each layer kind, in the order of the ONNX node's inputs 1, 2, ….
fn param_names(node: &Node) -> Option<(&'static str, &'static [&'static str])> {
    match node {
        Node::Conv2d(_) => Some(("Conv2d", &["weight", "bias"])),
        Node::ConvTranspose2d(_) => Some(("ConvTranspose2d", &["weight", "bias"])),
        Node::BatchNormalization(_) => Some(("BatchNorm", &["gamma", "beta", "running_mean", "running_var"])),
        _ => None,
    }
}

/// Parses `bytes` as ONNX and returns one snapshot per weight tensor, keyed `layer.param`.
fn snapshots(bytes: &[u8]) -> Result<Vec<TensorSnapshot>, String> {
    let graph = OnnxGraphBuilder::new()
        .parse_bytes(bytes)
        .map_err(|e| format!("not a readable ONNX model ({e})"))?;
    let mut out = Vec::new();
    for node in &graph.nodes {
        let Some((container, names)) = param_names(node) else {
            continue;
        };
        for (arg, name) in node.inputs().iter().skip(1).zip(names.iter()) {
            let Some(data) = arg.value() else {
                return Err(format!(
                    "layer {} has no constant data for its {name}",
                    node.name()
                ));
            };
            out.push(TensorSnapshot::from_data(
                data,
                vec![node.name().to_string(), (*name).to_string()],
                vec![format!("Struct:{container}")],
                ParamId::new(),
            ));
        }
    }
    Ok(out)
}

/// Builds the network on `device` and fills every parameter from the ONNX bytes; fails when
/// the file is not ONNX, lacks or adds a layer, or a tensor's shape differs from CenterFace's.
pub fn load<B: Backend>(bytes: &[u8], device: &B::Device) -> Result<Model<B>, String> {
    // onnx-ir and burn-store are not written for hostile input: turn a panic on a corrupt
    // file into an error instead of taking the caller down.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let snaps = snapshots(bytes)?;
        let mut model = Model::<B>::new(device);
        let applied = model.apply(snaps, None, None, false);
        if !applied.errors.is_empty() {
            let first: Vec<String> = applied.errors.iter().take(3).map(|e| e.to_string()).collect();
            return Err(format!("weights do not fit: {}", first.join("; ")));
        }
        if !applied.missing.is_empty() {
            let names: Vec<&str> = applied.missing.iter().take(5).map(|(p, _)| p.as_str()).collect();
            return Err(format!(
                "{} weight tensor(s) missing, e.g. {}",
                applied.missing.len(),
                names.join(", ")
            ));
        }
        if !applied.unused.is_empty() {
            let names: Vec<&str> = applied.unused.iter().take(5).map(String::as_str).collect();
            return Err(format!(
                "{} weight tensor(s) that CenterFace does not have, e.g. {}",
                applied.unused.len(),
                names.join(", ")
            ));
        }
        Ok(model)
    }));
    result.unwrap_or_else(|_| Err("the parser failed on this file".to_string()))
}
