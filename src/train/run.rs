//! `paca-fer train`: load the data, embed every face once (cached), cluster each image's patches for
//! each cell (cached, timed), train and evaluate, and write the results table and the models.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::backend::{AutodiffBackend, Backend};
use image::RgbImage;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::sweep::Cell;
use super::trainer::{self, SplitData, TrainOptions};
use super::{cache_key, checkpoint};
use crate::cluster::{ClusterSpec, cluster_batch};
use crate::data::{Dataset, Sample, balanced_split, load_faces};
use crate::model::embed::{Embedder, EmbedderKind, embed_faces};
use crate::model::{Grouping, ModelConfig, ModelMeta, Pooling};
use crate::npy;
use crate::patch::NUM_PATCHES;
use crate::sweep_results::{self as results, CellResult, Results, Shard};

/// Everything a training run needs besides the cells.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Run name: folders `<out>/<name>`, `<models>/<name>` (and checkpoints under `train/runs/train/`).
    pub name: String,
    /// Patch embedder.
    pub embedder: EmbedderKind,
    /// Embedder weights (ignored for `pixels`).
    pub embedder_weights: Option<PathBuf>,
    /// Model shape (in_dim and attention are set per cell).
    pub d_model: usize,
    /// Attention heads.
    pub heads: usize,
    /// Blocks.
    pub depth: usize,
    /// MLP ratio.
    pub mlp_ratio: f64,
    /// Optimisation (checkpoint_dir is set per cell).
    pub train: TrainOptions,
    /// Where results tables go.
    pub out_dir: PathBuf,
    /// Where models go.
    pub models_dir: PathBuf,
    /// Where cached features and cluster labels go.
    pub cache_dir: PathBuf,
    /// Keep at most this many training images (quick mode).
    pub max_train: Option<usize>,
    /// Seed of clustering.
    pub cluster_seed: u64,
    /// Train only this part of the cells (`--shard I/N`); results go to `<out>/<name>/shard-I-of-N`.
    pub shard: Option<Shard>,
}

impl RunSpec {
    /// Folder of this run's results tables: `<out>/<name>`, or the shard's folder inside it.
    pub fn results_dir(&self) -> PathBuf {
        let dir = self.out_dir.join(&self.name);
        match self.shard {
            Some(s) => dir.join(s.folder()),
            None => dir,
        }
    }
}

/// The train and evaluation splits of a dataset as labelled samples.
pub fn splits_of(
    ds: &Dataset,
    per_class: usize,
    test_fraction: f64,
    seed: u64,
) -> Result<(Vec<Sample>, Vec<Sample>)> {
    if let (Ok(tr), Ok(ev)) = (ds.split("train"), ds.split("valid").or_else(|_| ds.split("test"))) {
        return Ok((tr.to_vec(), ev.to_vec()));
    }
    let all = ds.split("all").or_else(|_| ds.split("train"))?;
    Ok(balanced_split(all, per_class, test_fraction, seed))
}

/// The embedded faces of a list of samples, with the cache key that identifies them.
#[derive(Debug, Clone)]
pub struct Features {
    /// `[n, 36, dim]` patch features, image-major (unreadable images skipped).
    pub features: Vec<f32>,
    /// Feature width per patch.
    pub dim: usize,
    /// Class index per embedded image.
    pub targets: Vec<u8>,
    /// Feature-cache key of the inputs ([`cache_key::features_key`]); cluster keys build on it.
    pub key: String,
}

impl Features {
    /// Number of embedded images.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// True when no image was embedded.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}

/// Features and targets of `samples` (decoded, embedded), cached under `cache_dir` by content: the
/// image files' bytes, paths and labels, and the embedder's kind and loaded weights (see
/// [`cache_key`]). `pixels` features are recomputed, never written.
pub fn features_for<B: Backend>(
    samples: &[Sample],
    embedder: &Embedder<B>,
    cache_dir: &Path,
    device: &B::Device,
    progress: bool,
) -> Result<Features> {
    let key = cache_key::features_key_for(samples, embedder);
    let fpath = cache_dir.join(format!("features-{key}.npy"));
    let tpath = cache_dir.join(format!("targets-{key}.npy"));
    let dim = embedder.feat_dim();
    if fpath.is_file() && tpath.is_file() {
        if let (Ok((fs, f)), Ok((ts, t))) = (npy::read_f32(&fpath), npy::read_i32(&tpath))
            && fs.len() == 3
            && fs[1] == NUM_PATCHES
            && fs[2] == dim
            && ts == [fs[0]]
        {
            log::info!("features from cache {}", fpath.display());
            return Ok(Features {
                features: f,
                dim,
                targets: t.into_iter().map(|x| x as u8).collect(),
                key,
            });
        }
        log::warn!("ignoring unreadable cache {}", fpath.display());
    }
    let (faces, report) = load_faces(samples, 96);
    if !report.skipped.is_empty() {
        log::warn!("{} unreadable images skipped", report.skipped.len());
    }
    let targets: Vec<u8> = faces.iter().map(|(_, e)| e.index() as u8).collect();
    let imgs: Vec<RgbImage> = faces.into_iter().map(|(i, _)| i).collect();
    let t0 = Instant::now();
    let feats = embed_faces(&imgs, embedder, device, progress)?;
    log::info!(
        "embedded {} faces with {} in {:.1} s",
        imgs.len(),
        embedder.kind(),
        t0.elapsed().as_secs_f64()
    );
    // Raw-pixel features are cheap to recompute and large: cache only learned embeddings.
    if embedder.kind() != EmbedderKind::Pixels {
        std::fs::create_dir_all(cache_dir).with_context(|| format!("creating {}", cache_dir.display()))?;
        npy::write_f32(&fpath, &[imgs.len(), NUM_PATCHES, dim], &feats)
            .with_context(|| format!("writing {}", fpath.display()))?;
        let t: Vec<i32> = targets.iter().map(|&x| x as i32).collect();
        npy::write_i32(&tpath, &[t.len()], &t).with_context(|| format!("writing {}", tpath.display()))?;
    }
    Ok(Features {
        features: feats,
        dim,
        targets,
        key,
    })
}

/// Cluster labels `[n, 36]` of every image of `features` for one cell, the slots M the model needs,
/// and the seconds clustering took (measured when computed; read back from the cache otherwise).
/// Cached under `cache_dir` by the features' key, the method, k and `seed` ([`cache_key::clusters_key`]).
pub fn clusters_for(
    features: &Features,
    cell: &Cell,
    seed: u64,
    cache_dir: &Path,
) -> Result<(Vec<u32>, usize, f64)> {
    let (feats, dim) = (&features.features[..], features.dim);
    let n = feats.len() / (NUM_PATCHES * dim);
    let Grouping::Clustered(method) = &cell.method else {
        bail!("{} has no per-image clusters", cell.method);
    };
    let key = cache_key::clusters_key(&features.key, n, dim, &cell.method.to_string(), cell.k, seed);
    let lpath = cache_dir.join(format!("clusters-{}-{key}.npy", cell.name()));
    let spath = lpath.with_extension("seconds");
    if let (Ok((shape, l)), Ok(s)) = (npy::read_i32(&lpath), std::fs::read_to_string(&spath))
        && shape == [n, NUM_PATCHES]
    {
        let labels: Vec<u32> = l.into_iter().map(|x| x.max(0) as u32).collect();
        let m = (labels.iter().copied().max().unwrap_or(0) as usize + 1).max(cell.k);
        return Ok((labels, m, s.trim().parse().unwrap_or(f64::NAN)));
    }
    let spec = ClusterSpec {
        method: method.clone(),
        k: cell.k,
        seed,
    };
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let t0 = Instant::now();
    let out = cluster_batch(feats, n, NUM_PATCHES, dim, &spec, threads)?;
    let secs = t0.elapsed().as_secs_f64();
    let mut labels = Vec::with_capacity(n * NUM_PATCHES);
    for c in &out {
        labels.extend_from_slice(&c.labels);
    }
    let m = out
        .iter()
        .map(|c| c.k)
        .max()
        .unwrap_or(1)
        .max(cell.k)
        .min(NUM_PATCHES);
    std::fs::create_dir_all(cache_dir).with_context(|| format!("creating {}", cache_dir.display()))?;
    let li: Vec<i32> = labels.iter().map(|&x| x as i32).collect();
    npy::write_i32(&lpath, &[n, NUM_PATCHES], &li).with_context(|| format!("writing {}", lpath.display()))?;
    std::fs::write(&spath, format!("{secs}")).with_context(|| format!("writing {}", spath.display()))?;
    Ok((labels, m, secs))
}

/// The model configuration of a cell.
pub fn model_config(spec: &RunSpec, in_dim: usize, grouping: &Grouping, m: usize) -> ModelConfig {
    ModelConfig::new(in_dim)
        .with_d_model(spec.d_model)
        .with_heads(spec.heads)
        .with_depth(spec.depth)
        .with_mlp_ratio(spec.mlp_ratio)
        .with_attention(grouping.attention(m))
        .with_pooling(Pooling::Mean)
}

/// Trains every cell on the dataset (those of `spec.shard` when set), writing results after each so a
/// killed sweep keeps finished cells; with `spec.train.resume` finished cells are skipped and an
/// unfinished one continues from its last epoch checkpoint.
pub fn run_cells<B: AutodiffBackend>(
    spec: &RunSpec,
    ds: &Dataset,
    split: (Vec<Sample>, Vec<Sample>),
    cells: &[Cell],
    device: &B::Device,
) -> Result<Vec<CellResult>> {
    let (mut train_s, eval_s) = split;
    if let Some(max) = spec.max_train
        && train_s.len() > max
    {
        train_s.shuffle(&mut ChaCha8Rng::seed_from_u64(spec.train.seed));
        train_s.truncate(max);
        train_s.sort();
    }
    let inner = device.clone();
    let embedder: Embedder<B::InnerBackend> =
        Embedder::load(spec.embedder, spec.embedder_weights.as_deref(), &inner)
            .with_context(|| format!("loading the {} embedder", spec.embedder))?;
    let dim = embedder.feat_dim();
    let progress = spec.train.progress;
    let tr = features_for(&train_s, &embedder, &spec.cache_dir, &inner, progress)?;
    let ev = features_for(&eval_s, &embedder, &spec.cache_dir, &inner, progress)?;
    let out_dir = spec.results_dir();
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let mut done = if spec.train.resume {
        results::read(&out_dir).unwrap_or_default()
    } else {
        vec![]
    };
    let sweep: Vec<String> = cells.iter().map(Cell::name).collect();
    let mine: Vec<&Cell> = cells
        .iter()
        .enumerate()
        .filter(|(i, _)| spec.shard.is_none_or(|s| s.holds(*i)))
        .map(|(_, c)| c)
        .collect();
    if let Some(s) = spec.shard {
        log::info!(
            "shard {s}: {} of the sweep's {} cells ({})",
            mine.len(),
            cells.len(),
            mine.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
        );
    }

    for cell in mine {
        if done
            .iter()
            .any(|r| r.method == cell.method && r.k == cell.k && r.epochs == spec.train.epochs)
        {
            log::info!("{} k={}: already in results, skipping", cell.method, cell.k);
            continue;
        }
        log::info!("cell {} k={}", cell.method, cell.k);
        let hard = cell.method.is_clustered();
        let (tr_c, ev_c, m, cluster_s) = if hard {
            let (a, m1, s1) = clusters_for(&tr, cell, spec.cluster_seed, &spec.cache_dir)?;
            let (b, m2, s2) = clusters_for(&ev, cell, spec.cluster_seed, &spec.cache_dir)?;
            (Some(a), Some(b), m1.max(m2), s1 + s2)
        } else {
            (None, None, cell.method.slots(cell.k), 0.0)
        };
        let n_clustered = tr.len() + ev.len();
        let train = SplitData {
            features: Cow::Borrowed(&tr.features),
            dim,
            clusters: tr_c,
            targets: tr.targets.clone(),
        };
        let eval = SplitData {
            features: Cow::Borrowed(&ev.features),
            dim,
            clusters: ev_c,
            targets: ev.targets.clone(),
        };
        let cfg = model_config(spec, dim, &cell.method, m);
        let cell_name = cell.name();
        let mut opts = spec.train.clone();
        opts.checkpoint_dir = checkpoint::run_root(Path::new("train/runs/train"), &out_dir).join(&cell_name);
        checkpoint::bind_options(
            &opts.checkpoint_dir,
            &cell_options(spec, &cfg, &tr, cell),
            opts.resume,
        )?;
        let (model, outcome) = trainer::train::<B>(&cfg, &train, &eval, &opts, device)?;
        let model_dir = spec.models_dir.join(&spec.name).join(&cell_name);
        let meta = ModelMeta {
            embedder: spec.embedder,
            method: cell.method.clone(),
            k: cell.k,
            cluster_seed: spec.cluster_seed,
            metrics: outcome.metrics.clone(),
            data: ds.root.display().to_string(),
            embedder_weights: spec.embedder_weights.as_ref().map(|p| p.display().to_string()),
            flip_tta: false,
            zoom_tta: false,
        };
        crate::model::save_model(&model_dir, &model, &cfg)?;
        meta.save(&model_dir)?;
        let r = CellResult {
            method: cell.method.clone(),
            k: cell.k,
            clusters: m,
            accuracy: outcome.metrics.accuracy,
            macro_f1: outcome.metrics.macro_f1,
            per_class: outcome.metrics.per_class.clone(),
            confusion: outcome.metrics.confusion.clone(),
            cluster_seconds: cluster_s,
            cluster_us_per_image: if hard {
                cluster_s * 1e6 / n_clustered as f64
            } else {
                0.0
            },
            model_ms_per_image: outcome.model_ms_per_image,
            train_images_per_s: outcome.images_per_s,
            train_seconds: outcome.train_seconds,
            params: outcome.params,
            epochs: spec.train.epochs,
            train_images: train.len(),
            eval_images: eval.len(),
            model_dir: model_dir.display().to_string(),
        };
        log::info!(
            "{} k={}: accuracy {:.2} %, macro-F1 {:.3}, clustering {:.1} µs/image",
            r.method,
            r.k,
            r.accuracy * 100.0,
            r.macro_f1,
            r.cluster_us_per_image
        );
        done.retain(|x| !(x.method == r.method && x.k == r.k));
        done.push(r);
        results::write(
            &out_dir,
            &Results {
                run: spec.name.clone(),
                embedder: spec.embedder,
                sweep: sweep.clone(),
                shard: spec.shard,
                cells: done.clone(),
            },
        )?;
    }
    if done.is_empty() {
        bail!("no cell was trained");
    }
    write_plots(
        &out_dir,
        &done,
        Some((&ev.features, dim)),
        cells,
        spec.cluster_seed,
    );
    Ok(done)
}

/// Merges the results folders of a sweep's shards (`train merge`) into `out`: the tables one
/// unsharded run writes ([`results::merge`]) and the figures that need no features (the PCA
/// scatter needs the evaluation features; each shard's folder keeps its own).
pub fn merge_shards(dirs: &[PathBuf], out: &Path) -> Result<Results> {
    let parts = dirs
        .iter()
        .map(|d| Ok((d.clone(), results::read_file(&d.join("results.json"))?)))
        .collect::<Result<Vec<_>>>()?;
    let merged = results::merge(&parts)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    results::write(out, &merged)?;
    write_plots(out, &merged.cells, None, &[], 0);
    Ok(merged)
}

/// What a cell's checkpoint must have been trained with to be resumed (see
/// [`checkpoint::bind_options`]): the optimisation, the model, and the features' content key.
fn cell_options(
    spec: &RunSpec,
    cfg: &ModelConfig,
    features: &Features,
    cell: &Cell,
) -> std::collections::BTreeMap<String, serde_json::Value> {
    let t = &spec.train;
    [
        ("--epochs", serde_json::json!(t.epochs)),
        ("--batch-size", serde_json::json!(t.batch_size)),
        ("--lr", serde_json::json!(t.lr)),
        ("--seed", serde_json::json!(t.seed)),
        ("train.label_smoothing", serde_json::json!(t.label_smoothing)),
        (
            "train.lr_schedule",
            serde_json::json!(if t.cosine { "cosine" } else { "constant" }),
        ),
        ("model", serde_json::to_value(cfg).unwrap_or_default()),
        ("features", serde_json::json!(features.key)),
        ("cell", serde_json::json!(cell.name())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Writes the sweep's figures next to its results: accuracy heat-map, accuracy vs per-frame runtime
/// with the Pareto front, and the study's figure 4 (one face's patch clusters per method, PCA).
/// A figure that fails is logged, never fatal: the results tables are what matter.
fn write_plots(
    out_dir: &Path,
    done: &[CellResult],
    eval_features: Option<(&[f32], usize)>,
    cells: &[Cell],
    seed: u64,
) {
    use super::plots;
    if let Err(e) = plots::accuracy_heatmap(done, &out_dir.join("accuracy_heatmap.png")) {
        log::warn!("{e:#}");
    }
    if let Err(e) = plots::pareto_plot(done, &out_dir.join("accuracy_vs_runtime.png")) {
        log::warn!("{e:#}");
    }
    let Some((eval_features, dim)) = eval_features else {
        return;
    };
    let face = &eval_features[..(NUM_PATCHES * dim).min(eval_features.len())];
    let mut labelings = Vec::new();
    for c in cells {
        let Some(method) = c.method.method().cloned() else {
            continue;
        };
        if let Ok(r) = crate::cluster::cluster(face, NUM_PATCHES, dim, &ClusterSpec { method, k: c.k, seed })
        {
            labelings.push((format!("{} k={}", c.method, c.k), r.labels));
        }
    }
    if !labelings.is_empty()
        && let Err(e) = plots::cluster_scatter(face, dim, &labelings, &out_dir.join("patch_clusters_pca.png"))
    {
        log::warn!("{e:#}");
    }
}
