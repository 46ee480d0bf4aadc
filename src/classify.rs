//! A trained model folder ready for inference: faces → patch features → per-image clusters → ViT →
//! emotion probabilities. Used by `predict`, `eval`, `run` and the benchmarks alike.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::backend::Backend;
use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::cluster::ClusterSpec;
use crate::labels::{Emotion, NUM_CLASSES};
use crate::model::embed::{Embedder, EmbedderKind, FINETUNED_EMBEDDER_FILE, embed_faces};
use crate::model::{META_FILE, ModelConfig, ModelMeta, Vit, clustered_assignment, load_model};
use crate::patch::NUM_PATCHES;

/// The default model shipped in the repository, used when `--model` is not given.
pub const DEFAULT_MODEL: &str = "models/default";

/// One face's classification.
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    /// Most probable emotion.
    pub label: Emotion,
    /// Probability of each class in canonical order.
    pub probs: [f32; NUM_CLASSES],
    /// Cluster id of each of the 36 patches (empty for models without hard clusters).
    pub clusters: Vec<u32>,
}

/// Time spent per stage of one [`Classifier::classify_timed`] call, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StageTimes {
    /// Patch embedding.
    pub embed: f64,
    /// Per-image clustering.
    pub cluster: f64,
    /// The ViT.
    pub model: f64,
}

/// A loaded model folder with its embedder and clustering settings.
pub struct Classifier<B: Backend> {
    /// The transformer.
    pub model: Vit<B>,
    /// Its configuration.
    pub config: ModelConfig,
    /// How it was trained (embedder, method, k).
    pub meta: ModelMeta,
    embedder: Embedder<B>,
    spec: Option<ClusterSpec>,
    device: B::Device,
}

/// Finds the embedder weights for a model folder: in it, beside it (a zoo's shared trunk), where
/// training found them, or in the shipped `models/embedders/`.
fn find_weights(dir: &Path, meta: &ModelMeta) -> Option<PathBuf> {
    let file = meta
        .embedder_weights
        .as_ref()
        .and_then(|p| Path::new(p).file_name().map(|f| f.to_os_string()))?;
    let mut candidates = vec![
        dir.join(&file),
        dir.join("..").join(&file),
        dir.join("../embedders").join(&file),
        dir.join("../../embedders").join(&file),
    ];
    if let Some(p) = &meta.embedder_weights {
        candidates.push(PathBuf::from(p));
    }
    candidates.push(crate::assets::locate(&Path::new("models/embedders").join(&file)));
    candidates.into_iter().find(|p| p.is_file())
}

/// The embedder weights file a model folder was trained with (`None` for `pixels`): its own
/// fine-tuned trunk (`embedder.mpk` in the folder, or shared beside it as in the zoo), else the
/// file its `meta.json` names, looked up as [`find_weights`] does.
pub fn embedder_weights(dir: &Path, meta: &ModelMeta) -> Result<Option<PathBuf>> {
    if meta.embedder == EmbedderKind::Pixels {
        return Ok(None);
    }
    if meta.embedder == EmbedderKind::MobileNetV2
        && meta.embedder_weights.as_deref() == Some(FINETUNED_EMBEDDER_FILE)
    {
        let own = dir.join(FINETUNED_EMBEDDER_FILE);
        let shared = dir.join("..").join(FINETUNED_EMBEDDER_FILE);
        return Ok(Some(if !own.is_file() && shared.is_file() {
            shared
        } else {
            own
        }));
    }
    find_weights(dir, meta).map(Some).with_context(|| {
        format!(
            "embedder weights {:?} for {} not found",
            meta.embedder_weights,
            dir.display()
        )
    })
}

impl<B: Backend> Classifier<B> {
    /// Loads `dir` (config.json, model.mpk, meta.json) and the embedder it was trained with.
    pub fn load(dir: &Path, device: &B::Device) -> Result<Self> {
        if !dir.is_dir() {
            bail!(
                "model folder {} does not exist (expected config.json, model.mpk and meta.json; train one with `paca-fer train`)",
                dir.display()
            );
        }
        let meta_path = dir.join(META_FILE);
        let meta = ModelMeta::load(dir)?;
        let (model, config) = load_model::<B>(dir, device)?;
        let weights = embedder_weights(dir, &meta)?;
        let embedder = Embedder::load(meta.embedder, weights.as_deref(), device)?;
        if embedder.feat_dim() != config.in_dim {
            bail!(
                "{}: the {} embedder gives {}-d features but the model expects {}",
                dir.display(),
                meta.embedder,
                embedder.feat_dim(),
                config.in_dim
            );
        }
        let spec = if config.needs_assignment() {
            let method = meta.method.method().cloned().with_context(|| {
                format!(
                    "{}: method {} has no per-image clusters, but {} expects them",
                    meta_path.display(),
                    meta.method,
                    dir.join(crate::model::CONFIG_FILE).display()
                )
            })?;
            Some(ClusterSpec {
                method,
                k: meta.k,
                seed: meta.cluster_seed,
            })
        } else {
            None
        };
        Ok(Classifier {
            model,
            config,
            meta,
            embedder,
            spec,
            device: device.clone(),
        })
    }

    /// Classifies 96×96 faces; a face of another size is an error naming it.
    pub fn classify(&self, faces: &[RgbImage]) -> Result<Vec<Prediction>> {
        Ok(self.classify_timed(faces)?.0)
    }

    /// Turns mirror-image test-time augmentation on or off (the model folder's `flip_tta` is the default).
    pub fn set_flip_tta(&mut self, on: bool) {
        self.meta.flip_tta = on;
    }

    /// Turns zoomed-view test-time augmentation on or off (the model folder's `zoom_tta` is the default).
    pub fn set_zoom_tta(&mut self, on: bool) {
        self.meta.zoom_tta = on;
    }

    /// Test-time augmentation for live runs: the folder's views only when `keep_folder_views`
    /// (`run.model_tta`; they multiply the per-face cost), then `flip` / `zoom` where given.
    pub fn set_live_tta(&mut self, keep_folder_views: bool, flip: Option<bool>, zoom: Option<bool>) {
        if !keep_folder_views {
            self.set_flip_tta(false);
            self.set_zoom_tta(false);
        }
        if let Some(on) = flip {
            self.set_flip_tta(on);
        }
        if let Some(on) = zoom {
            self.set_zoom_tta(on);
        }
    }

    /// Classifies 96×96 faces and reports the time of each stage. With `flip_tta` and/or
    /// `zoom_tta` each face's probabilities are the mean over its views: itself, its mirror
    /// image, its [`zoom_view`], and the zoomed mirror image.
    pub fn classify_timed(&self, faces: &[RgbImage]) -> Result<(Vec<Prediction>, StageTimes)> {
        if !(self.meta.flip_tta || self.meta.zoom_tta) || faces.is_empty() {
            return self.classify_once(faces);
        }
        let mut views = faces.to_vec();
        if self.meta.zoom_tta {
            views.extend(faces.iter().map(zoom_view));
        }
        if self.meta.flip_tta {
            let mirrors: Vec<RgbImage> = views.iter().map(image::imageops::flip_horizontal).collect();
            views.extend(mirrors);
        }
        let n_views = views.len() / faces.len();
        let (all, times) = self.classify_once(&views)?;
        let mut preds: Vec<Prediction> = all[..faces.len()].to_vec();
        for (i, p) in preds.iter_mut().enumerate() {
            for c in 0..NUM_CLASSES {
                let sum: f32 = (0..n_views).map(|v| all[v * faces.len() + i].probs[c]).sum();
                p.probs[c] = sum / n_views as f32;
            }
            p.label = Emotion::ALL[crate::labels::argmax(&p.probs)];
        }
        Ok((preds, times))
    }

    /// One pass of [`Self::classify_timed`] without test-time augmentation.
    fn classify_once(&self, faces: &[RgbImage]) -> Result<(Vec<Prediction>, StageTimes)> {
        if faces.is_empty() {
            return Ok((vec![], StageTimes::default()));
        }
        let mut times = StageTimes::default();
        let t0 = Instant::now();
        let feats = embed_faces(faces, &self.embedder, &self.device, false)?;
        times.embed = t0.elapsed().as_secs_f64() * 1e3;
        let dim = self.embedder.feat_dim();
        let t1 = Instant::now();
        let (labels, assign) = match &self.spec {
            Some(spec) => {
                let m = self.config.clusters().unwrap_or(NUM_PATCHES);
                let (labels, a) =
                    clustered_assignment::<B>(&feats, faces.len(), NUM_PATCHES, dim, spec, m, &self.device)?;
                (labels, Some(a))
            }
            None => (vec![], None),
        };
        times.cluster = t1.elapsed().as_secs_f64() * 1e3;
        let t2 = Instant::now();
        let x = burn::tensor::Tensor::<B, 3>::from_data(
            burn::tensor::TensorData::new(feats, [faces.len(), NUM_PATCHES, dim]),
            &self.device,
        );
        let p = burn::tensor::activation::softmax(self.model.try_forward(x, assign)?, 1);
        let v: Vec<f32> = p
            .into_data()
            .convert::<f32>()
            .to_vec()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        times.model = t2.elapsed().as_secs_f64() * 1e3;
        let out = v
            .chunks(NUM_CLASSES)
            .enumerate()
            .map(|(i, row)| {
                let mut probs = [0f32; NUM_CLASSES];
                probs.copy_from_slice(row);
                let best = crate::labels::argmax(&probs);
                Prediction {
                    label: Emotion::ALL[best],
                    probs,
                    clusters: if labels.is_empty() {
                        vec![]
                    } else {
                        labels[i * NUM_PATCHES..(i + 1) * NUM_PATCHES].to_vec()
                    },
                }
            })
            .collect();
        Ok((out, times))
    }
}

/// Side of the centre square [`zoom_view`] keeps: 88 of 96 pixels (2 of 48 at FER+ resolution
/// trimmed from each side).
pub const ZOOM_CROP: u32 = 88;

/// The face's central `ZOOM_CROP`² square scaled back to the face's size (a 1.09× zoom): a second
/// view for test-time augmentation, with the same framing at any input size.
pub fn zoom_view(face: &RgbImage) -> RgbImage {
    let (w, h) = face.dimensions();
    let (cw, ch) = (
        (w * ZOOM_CROP).div_ceil(96).max(1),
        (h * ZOOM_CROP).div_ceil(96).max(1),
    );
    let crop = image::imageops::crop_imm(face, (w - cw) / 2, (h - ch) / 2, cw, ch).to_image();
    image::imageops::resize(&crop, w, h, image::imageops::FilterType::Triangle)
}
