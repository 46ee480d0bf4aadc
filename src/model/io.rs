//! The model folder format: `config.json` + `model.mpk` (burn named MessagePack, full
//! precision) + `meta.json` ([`ModelMeta`]: embedder, clustering, metrics), so a folder describes
//! itself. Every file is written with [`crate::files::write_atomic`] (synced, renamed into place),
//! so a killed write never leaves a half-written file under the real name. Loading checks that
//! the weights fit the architecture described by the config.

use std::fs;
use std::path::Path;

use burn::config::Config;
use burn::module::{Module, ModuleVisitor, Param};
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::{Tensor, backend::Backend};

use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;
use crate::model::config::ModelConfig;
use crate::model::embed::EmbedderKind;
use crate::model::error::ModelError;
use crate::model::grouping::Grouping;
use crate::model::vit::{Vit, VitRecord};

/// File name of the serialised [`ModelConfig`] inside a model folder.
pub const CONFIG_FILE: &str = "config.json";
/// File name of the weights inside a model folder.
pub const MODEL_FILE: &str = "model.mpk";
/// File name of the [`ModelMeta`] inside a model folder.
pub const META_FILE: &str = "meta.json";

type Rec = NamedMpkBytesRecorder<FullPrecisionSettings>;

/// Writes `bytes` to `path` with [`crate::files::write_atomic`], naming the file on error.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    crate::files::write_atomic(path, bytes).map_err(|source| ModelError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Model metadata saved beside `config.json` and `model.mpk` so a model folder is self-describing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Patch embedder the model's inputs come from.
    pub embedder: EmbedderKind,
    /// How patches were grouped (`none` = patch-to-patch, `learned` = soft assignment, or a method).
    pub method: Grouping,
    /// Clusters per image (slots, for DBSCAN).
    pub k: usize,
    /// Seed of clustering.
    pub cluster_seed: u64,
    /// Metrics on the evaluation split.
    pub metrics: Metrics,
    /// Data the model was trained on.
    pub data: String,
    /// Embedder weights file used in training (looked up again at load time).
    #[serde(default)]
    pub embedder_weights: Option<String>,
    /// Average each face's probabilities with its mirror image's (test-time augmentation; costs
    /// a second trunk + ViT pass per face).
    #[serde(default)]
    pub flip_tta: bool,
    /// Also classify each face's central 88/96 square, zoomed back to 96×96, and average
    /// (test-time augmentation; one more pass per face, two with `flip_tta`).
    #[serde(default)]
    pub zoom_tta: bool,
}

impl ModelMeta {
    /// Writes `meta.json` into the model folder `dir` (atomically, synced).
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        let path = dir.join(META_FILE);
        let json = serde_json::to_string_pretty(self).map_err(|e| ModelError::Write {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        write_atomic(&path, json.as_bytes())
    }

    /// Reads `meta.json` from the model folder `dir`, naming the file when it is missing or is
    /// not model metadata.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join(META_FILE);
        let bytes = read(&path)?;
        serde_json::from_slice(&bytes).map_err(|e| ModelError::CorruptFile {
            path,
            reason: format!("not model metadata (expected embedder, method, k, …): {e}"),
        })
    }
}

/// Saves `model` and `config` into `dir` (created if needed) as [`CONFIG_FILE`] and
/// [`MODEL_FILE`]; either file appears only once completely written.
pub fn save_model<B: Backend>(dir: &Path, model: &Vit<B>, config: &ModelConfig) -> Result<(), ModelError> {
    fs::create_dir_all(dir).map_err(|source| ModelError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let weights_path = dir.join(MODEL_FILE);
    let bytes = Recorder::<B>::record(&Rec::default(), model.clone().into_record(), ()).map_err(|e| {
        ModelError::Write {
            path: weights_path.clone(),
            source: std::io::Error::other(e.to_string()),
        }
    })?;
    let json = burn::config::config_to_json(config);
    write_atomic(&weights_path, &bytes)?;
    write_atomic(&dir.join(CONFIG_FILE), json.as_bytes())
}

/// Reads a whole file, mapping "not found" to [`ModelError::MissingFile`].
fn read(path: &Path) -> Result<Vec<u8>, ModelError> {
    fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ModelError::MissingFile {
            path: path.to_path_buf(),
        },
        _ => ModelError::CorruptFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
    })
}

/// Loads `config.json` from `dir`, validating it.
pub fn load_config(dir: &Path) -> Result<ModelConfig, ModelError> {
    let path = dir.join(CONFIG_FILE);
    let bytes = read(&path)?;
    let config = ModelConfig::load_binary(&bytes).map_err(|e| ModelError::CorruptFile {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    config.validate().map_err(|e| ModelError::CorruptFile {
        path,
        reason: e.to_string(),
    })?;
    Ok(config)
}

/// Loads a model folder written by [`save_model`]: the config, then the weights, checking
/// that every tensor has the shape the config implies.
pub fn load_model<B: Backend>(dir: &Path, device: &B::Device) -> Result<(Vit<B>, ModelConfig), ModelError> {
    let config = load_config(dir)?;
    let path = dir.join(MODEL_FILE);
    let bytes = read(&path)?;
    let record: VitRecord<B> =
        Recorder::<B>::load(&Rec::default(), bytes, device).map_err(|e| ModelError::CorruptFile {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    let fresh = config.init::<B>(device)?;
    check_structure(&record, &config).map_err(|reason| ModelError::ShapeMismatch {
        path: path.clone(),
        reason,
    })?;
    let expected = ParamShapes::of(&fresh);
    let model = fresh.load_record(record);
    let found = ParamShapes::of(&model);
    compare_shapes(&expected, &found).map_err(|reason| ModelError::ShapeMismatch { path, reason })?;
    Ok((model, config))
}

/// Checks the parts of a record that `load_record` would otherwise panic on or silently
/// drop: the number of blocks and the presence of optional tensors.
fn check_structure<B: Backend>(record: &VitRecord<B>, config: &ModelConfig) -> Result<(), String> {
    if record.blocks.len() != config.depth {
        return Err(format!(
            "{} blocks in file, config depth is {}",
            record.blocks.len(),
            config.depth
        ));
    }
    let want_cls = config.extra_tokens() > 0;
    if record.embed.cls.is_some() != want_cls {
        return Err(format!(
            "class token {} in file but config pooling is {:?}",
            if want_cls { "absent" } else { "present" },
            config.pooling
        ));
    }
    let want_head = !config.needs_assignment() && config.clusters().is_some();
    for (i, block) in record.blocks.iter().enumerate() {
        if block.attn.assign_head.is_some() != want_head {
            return Err(format!(
                "block {i}: soft-assignment head {} in file but config attention is {:?}",
                if want_head { "absent" } else { "present" },
                config.attention
            ));
        }
    }
    Ok(())
}

/// Every float parameter's dotted path and shape, in visiting order.
#[derive(Default)]
pub(crate) struct ParamShapes {
    path: Vec<String>,
    shapes: Vec<(String, Vec<usize>)>,
}

impl ParamShapes {
    /// The dotted path and shape of every float parameter of `module`.
    pub(crate) fn of<B: Backend, M: Module<B>>(module: &M) -> Vec<(String, Vec<usize>)> {
        let mut v = ParamShapes::default();
        module.visit(&mut v);
        v.shapes
    }
}

impl<B: Backend> ModuleVisitor<B> for ParamShapes {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.shapes
            .push((self.path.join("."), param.shape().as_slice().to_vec()));
    }
}

fn compare_shapes(expected: &[(String, Vec<usize>)], found: &[(String, Vec<usize>)]) -> Result<(), String> {
    if expected.len() != found.len() {
        return Err(format!(
            "{} parameter tensors in file, config implies {}",
            found.len(),
            expected.len()
        ));
    }
    for ((name, want), (_, got)) in expected.iter().zip(found) {
        if want != got {
            return Err(format!("{name}: shape {got:?} in file, config implies {want:?}"));
        }
    }
    Ok(())
}
