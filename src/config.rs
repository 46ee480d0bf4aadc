//! Configuration: every default lives in `config/default.toml` (compiled in), a user file may override
//! any subset, and command-line flags override both. Unknown keys and bad values are errors naming the
//! key and the file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::Grouping;

/// The defaults file, compiled into the binary so it runs from any directory.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Error loading or validating a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File that failed.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key or a value of the wrong type.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// File that failed.
        path: PathBuf,
        /// Parser message (names the key and line).
        message: String,
    },
    /// A value parsed but is out of range.
    #[error("invalid value for `{key}` in {path}: {message}")]
    Value {
        /// File the value came from (or `command line`).
        path: PathBuf,
        /// Dotted key, e.g. `train.lr`.
        key: String,
        /// What was expected.
        message: String,
    },
}

/// Dataset options.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Layout name: auto, ferplus, affectnet, imagefolder.
    pub layout: String,
    /// Images per class in the balanced study protocol.
    pub per_class: usize,
    /// Fraction of each class held out as the test split.
    pub test_fraction: f64,
    /// Seed of the subsample and split.
    pub split_seed: u64,
}

/// Image geometry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImageConfig {
    /// Face side in pixels.
    pub size: u32,
    /// Patch side in pixels.
    pub patch: u32,
}

/// Model shape.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Patch embedder name.
    pub embedder: String,
    /// Token width.
    pub d_model: usize,
    /// Attention heads.
    pub heads: usize,
    /// Transformer blocks.
    pub depth: usize,
    /// MLP hidden width as a multiple of `d_model`.
    pub mlp_ratio: f64,
}

/// Optimisation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Adam learning rate.
    pub lr: f64,
    /// Passes over the training split.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Seed of initialisation and shuffling.
    pub seed: u64,
    /// Training threads: each batch is split into this many shards (0 = one per core).
    pub threads: usize,
    /// Label smoothing of the cross-entropy, in [0, 1).
    pub label_smoothing: f32,
    /// Learning-rate schedule: "constant" (the study) or "cosine" (decay to 0 over the run).
    pub lr_schedule: String,
}

/// Patch clustering.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// How patches are grouped: a clustering method, `none` (patch-to-patch) or `learned`.
    pub method: Grouping,
    /// Clusters per image.
    pub k: usize,
}

/// Live runtime.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Per-frame latency budget in milliseconds.
    pub budget_ms: f64,
    /// Accuracy given up per millisecond when ranking sweep cells.
    pub latency_weight: f64,
    /// Width frames are downscaled to for detection.
    pub detect_width: u32,
    /// Minimum face-detector score, in (0, 1).
    pub detect_threshold: f32,
    /// Run the face detector on every n-th frame; frames between reuse the last boxes.
    pub detect_every: u32,
    /// Run the detector on its own thread for live sources (boxes lag by one detection).
    pub detect_async: bool,
    /// Between full detector passes, re-detect the known faces in a window around each.
    pub redetect: bool,
    /// Network width of a re-detection window.
    pub redetect_width: u32,
    /// Level the eyes when cropping faces.
    pub align: bool,
    /// Weight of the previous average in the per-face EMA of probabilities, in [0, 1).
    pub smoothing: f32,
    /// Use the model folder's test-time augmentation views in live runs.
    pub model_tta: bool,
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Dataset options.
    pub data: DataConfig,
    /// Image geometry.
    pub image: ImageConfig,
    /// Model shape.
    pub model: ModelSection,
    /// Optimisation.
    pub train: TrainConfig,
    /// Patch clustering.
    pub cluster: ClusterConfig,
    /// Live runtime.
    pub run: RunConfig,
}

impl Default for Config {
    fn default() -> Self {
        // The compiled-in file is checked by a unit test, so this cannot fail at run time.
        toml::from_str(DEFAULT_TOML).expect("config/default.toml is valid")
    }
}

const LAYOUTS: &[&str] = &["auto", "ferplus", "affectnet", "imagefolder"];
const EMBEDDERS: &[&str] = &["pixels", "mobilenet_v2", "resnet50", "resnet50:per_patch"];

impl Config {
    /// Loads the defaults overlaid with `path` (any subset of keys), then validates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text, path)
    }

    /// Parses TOML text (an overlay on the defaults) attributed to `path` in errors.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let parse_err = |e: toml::de::Error| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim().replace('\n', " "),
        };
        let mut base: toml::Table = toml::from_str(DEFAULT_TOML).map_err(parse_err)?;
        let overlay: toml::Table = toml::from_str(text).map_err(parse_err)?;
        merge(&mut base, overlay);
        let cfg: Config = toml::Value::Table(base).try_into().map_err(parse_err)?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Loads `path` if given, else `config/default.toml` in the working directory if present, else the
    /// compiled-in defaults.
    pub fn resolve(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            Some(p) => Self::load(p),
            None => {
                let local = Path::new("config/default.toml");
                if local.is_file() {
                    Self::load(local)
                } else {
                    Ok(Config::default())
                }
            }
        }
    }

    /// Checks every value's range; `path` names where the values came from.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| {
            Err(ConfigError::Value {
                path: path.to_path_buf(),
                key: key.into(),
                message,
            })
        };
        if !LAYOUTS.contains(&self.data.layout.as_str()) {
            return bad(
                "data.layout",
                format!("'{}' is not one of {LAYOUTS:?}", self.data.layout),
            );
        }
        if self.data.per_class == 0 {
            return bad("data.per_class", "must be at least 1".into());
        }
        if !(self.data.test_fraction > 0.0 && self.data.test_fraction < 1.0) {
            return bad(
                "data.test_fraction",
                format!("{} is not in (0, 1)", self.data.test_fraction),
            );
        }
        let (s, p) = (self.image.size, self.image.patch);
        if p == 0 || s == 0 || !s.is_multiple_of(p) {
            return bad(
                "image.patch",
                format!("image.size {s} must be a positive multiple of image.patch {p}"),
            );
        }
        if !EMBEDDERS.contains(&self.model.embedder.as_str()) {
            return bad(
                "model.embedder",
                format!("'{}' is not one of {EMBEDDERS:?}", self.model.embedder),
            );
        }
        if self.model.heads == 0
            || self.model.d_model == 0
            || !self.model.d_model.is_multiple_of(self.model.heads)
        {
            return bad(
                "model.d_model",
                format!(
                    "{} must be a positive multiple of model.heads {}",
                    self.model.d_model, self.model.heads
                ),
            );
        }
        if self.model.depth == 0 {
            return bad("model.depth", "must be at least 1".into());
        }
        if !(self.model.mlp_ratio > 0.0 && self.model.mlp_ratio.is_finite()) {
            return bad("model.mlp_ratio", "must be a positive number".into());
        }
        if !(self.train.lr > 0.0 && self.train.lr.is_finite()) {
            return bad(
                "train.lr",
                format!("{} is not a positive learning rate", self.train.lr),
            );
        }
        if self.train.epochs == 0 {
            return bad("train.epochs", "must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.train.label_smoothing) {
            return bad("train.label_smoothing", "must be in [0, 1)".into());
        }
        if !matches!(self.train.lr_schedule.as_str(), "constant" | "cosine") {
            return bad(
                "train.lr_schedule",
                format!("'{}' is not \"constant\" or \"cosine\"", self.train.lr_schedule),
            );
        }
        if self.train.batch_size == 0 {
            return bad("train.batch_size", "must be at least 1".into());
        }
        let n = (s / p) * (s / p);
        if self.cluster.k == 0 || self.cluster.k > n as usize {
            return bad(
                "cluster.k",
                format!("{} is not in 1..={n} (the number of patches)", self.cluster.k),
            );
        }
        if self.run.budget_ms.is_nan() || self.run.budget_ms <= 0.0 {
            return bad("run.budget_ms", "must be positive".into());
        }
        if !(self.run.latency_weight >= 0.0 && self.run.latency_weight.is_finite()) {
            return bad("run.latency_weight", "must be a finite number >= 0".into());
        }
        if !(self.run.detect_threshold > 0.0 && self.run.detect_threshold < 1.0) {
            return bad(
                "run.detect_threshold",
                "must be between 0 and 1 (exclusive)".into(),
            );
        }
        if self.run.detect_width < 32 || self.run.detect_width > 4096 {
            return bad("run.detect_width", "must be 32 to 4096 pixels".into());
        }
        if self.run.redetect_width < 32 || self.run.redetect_width > 4096 {
            return bad("run.redetect_width", "must be 32 to 4096 pixels".into());
        }
        if self.run.detect_every == 0 {
            return bad("run.detect_every", "must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.run.smoothing) {
            return bad("run.smoothing", "must be in [0, 1)".into());
        }
        Ok(())
    }
}

/// Recursively overlays `over` onto `base`, table by table.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_defaults_parse_and_validate() {
        let c = Config::from_toml_str("", Path::new("x.toml")).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!((c.image.size, c.image.patch), (96, 16));
        assert_eq!(c.model.depth, 6);
        assert_eq!(c.train.lr, 1e-3);
        assert_eq!(c.train.epochs, 30);
    }

    #[test]
    fn overlay_changes_only_named_keys() {
        let c = Config::from_toml_str("[train]\nepochs = 3\n", Path::new("o.toml")).unwrap();
        assert_eq!(c.train.epochs, 3);
        assert_eq!(c.train.lr, 1e-3);
    }

    #[test]
    fn unknown_key_names_key_and_file() {
        let e = Config::from_toml_str("[train]\nepoks = 3\n", Path::new("my.toml")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("epoks") && msg.contains("my.toml"), "{msg}");
    }

    #[test]
    fn bad_value_names_key_and_file() {
        let e = Config::from_toml_str("[cluster]\nk = 0\n", Path::new("k.toml")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("cluster.k") && msg.contains("k.toml"), "{msg}");
        let e = Config::from_toml_str("[train]\nlr = \"fast\"\n", Path::new("t.toml")).unwrap_err();
        assert!(e.to_string().contains("t.toml"), "{e}");
        let e = Config::from_toml_str("[cluster]\nmethod = \"kmean\"\n", Path::new("m.toml")).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("'kmean' is not a patch grouping") && msg.contains("m.toml"),
            "{msg}"
        );
    }
}
