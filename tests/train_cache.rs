//! The training caches (`features_for`, `clusters_for`) are keyed by content: a second run reuses
//! them, while a replaced image (not only the first one) or changed embedder weights are noticed
//! instead of silently reusing stale features or cluster labels. Eight real FER+ faces each.

mod common;

use std::path::{Path, PathBuf};

use paca_fer::backend::Cpu;
use paca_fer::cluster::{ClusterSpec, Method, cluster_batch};
use paca_fer::data::{Dataset, Layout, Sample};
use paca_fer::model::embed::{Embedder, EmbedderKind};
use paca_fer::npy;
use paca_fer::patch::NUM_PATCHES;
use paca_fer::train::run::{Features, clusters_for, features_for};
use paca_fer::train::sweep::Cell;

/// ImageNet MobileNetV2 weights shipped in the repository (always there: a missing file fails).
fn mobilenet_weights() -> Option<PathBuf> {
    let p = common::repo_root().join("models/embedders/mobilenet_v2_imagenet_torchvision.safetensors");
    assert!(p.is_file(), "{} is missing from the repository", p.display());
    Some(p)
}

/// One FER+ training face per class (8) copied into `<dir>/faces/<class>/`, as sorted samples.
fn faces(dir: &Path) -> Option<Vec<Sample>> {
    let root = dir.join("faces");
    let fer = common::ferplus()?;
    common::copy_ferplus_split(&fer, "train", &root, 1);
    let samples = Dataset::open(&root, Layout::ImageFolder)
        .unwrap()
        .split("all")
        .unwrap()
        .to_vec();
    assert_eq!(samples.len(), 8);
    Some(samples)
}

/// Overwrites the last sample's file (same path, same label) with the next FER+ face of its class.
fn replace_last_face(samples: &[Sample]) {
    let last = &samples.last().unwrap().path;
    let class = last.parent().unwrap().file_name().unwrap();
    let mut files: Vec<_> = std::fs::read_dir(common::ferplus().unwrap().join("train").join(class))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let other = std::fs::read(&files[1]).unwrap();
    assert_ne!(
        std::fs::read(last).unwrap(),
        other,
        "the replacement must be another face"
    );
    std::fs::write(last, other).unwrap();
}

/// Names of the files in `dir` starting with `prefix` and ending with `.npy`, sorted.
fn cache_files(dir: &Path, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix) && n.ends_with(".npy"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Largest absolute difference between two equally long slices.
fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn embed(samples: &[Sample], e: &Embedder<Cpu>, cache: &Path) -> Features {
    features_for(samples, e, cache, &Default::default(), false).unwrap()
}

fn mobilenet(weights: &Path) -> Embedder<Cpu> {
    Embedder::load(EmbedderKind::MobileNetV2, Some(weights), &Default::default()).unwrap()
}

#[test]
fn feature_cache_is_reused_and_notices_a_replaced_last_image() {
    let Some(weights) = mobilenet_weights() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let Some(samples) = faces(tmp.path()) else { return };
    let cache = tmp.path().join("cache");
    let emb = mobilenet(&weights);

    let a = embed(&samples, &emb, &cache);
    assert_eq!(a.len(), 8);
    let files = cache_files(&cache, "features-");
    assert_eq!(files.len(), 1, "{files:?}");

    // Reused: mark the cached matrix; a second call returns the marked values without embedding.
    let marked: Vec<f32> = a.features.iter().map(|x| x + 1.0).collect();
    npy::write_f32(&cache.join(&files[0]), &[8, NUM_PATCHES, a.dim], &marked).unwrap();
    let again = embed(&samples, &emb, &cache);
    assert_eq!(again.key, a.key);
    assert_eq!(again.features, marked, "the second call must read the cache");
    assert_eq!(again.targets, a.targets);

    // The last face replaced (same path, label and name): new key, new cache file, fresh features.
    replace_last_face(&samples);
    let b = embed(&samples, &emb, &cache);
    assert_ne!(b.key, a.key);
    assert_eq!(cache_files(&cache, "features-").len(), 2);
    assert_eq!(b.targets, a.targets);
    let per = NUM_PATCHES * a.dim;
    assert!(max_diff(&b.features[..7 * per], &a.features[..7 * per]) < 1e-4);
    assert!(
        max_diff(&b.features[7 * per..], &a.features[7 * per..]) > 1e-2,
        "the replaced face's features must be recomputed"
    );
}

#[test]
fn feature_cache_notices_changed_embedder_weights() {
    let Some(weights) = mobilenet_weights() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let Some(samples) = faces(tmp.path()) else { return };
    let cache = tmp.path().join("cache");
    let a = embed(&samples, &mobilenet(&weights), &cache);

    // The same weights under another name: same key, the cache is reused.
    let copy = tmp.path().join("copy.safetensors");
    std::fs::copy(&weights, &copy).unwrap();
    assert_eq!(embed(&samples, &mobilenet(&copy), &cache).key, a.key);
    assert_eq!(cache_files(&cache, "features-").len(), 1);

    // The stem convolution's weights scaled by 1.5 (one tensor of the file perturbed): new key and
    // features that differ.
    let bytes = std::fs::read(&weights).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let name = "features.0.0.weight";
    let stem: Vec<u8> = st
        .tensor(name)
        .unwrap()
        .data()
        .chunks_exact(4)
        .flat_map(|c| (f32::from_le_bytes(c.try_into().unwrap()) * 1.5).to_le_bytes())
        .collect();
    let mut tensors: Vec<(String, safetensors::tensor::TensorView)> =
        st.tensors().into_iter().filter(|(n, _)| n != name).collect();
    let view = st.tensor(name).unwrap();
    tensors.push((
        name.to_string(),
        safetensors::tensor::TensorView::new(view.dtype(), view.shape().to_vec(), &stem).unwrap(),
    ));
    let perturbed = tmp.path().join("perturbed.safetensors");
    safetensors::serialize_to_file(tensors, None, &perturbed).unwrap();
    let emb_b = mobilenet(&perturbed);
    let b = embed(&samples, &emb_b, &cache);
    assert_ne!(b.key, a.key);
    assert_eq!(cache_files(&cache, "features-").len(), 2);
    let d = max_diff(&b.features, &a.features);
    assert!(d > 1e-3, "features must be recomputed (max difference {d})");

    // A fine-tuned trunk saved as embedder.mpk is keyed by its weights too: the perturbed
    // weights round-tripped through .mpk hit b's cache entry, not a's.
    let Embedder::MobileNetV2(inner) = &emb_b else {
        unreachable!()
    };
    let mpk = tmp.path().join("embedder.mpk");
    inner.save_mpk(&mpk).unwrap();
    assert_eq!(embed(&samples, &mobilenet(&mpk), &cache).key, b.key);
    assert_eq!(cache_files(&cache, "features-").len(), 2);
}

#[test]
fn cluster_cache_is_reused_and_notices_a_replaced_last_image() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(samples) = faces(tmp.path()) else { return };
    let cache = tmp.path().join("cache");
    let pixels = Embedder::<Cpu>::load(EmbedderKind::Pixels, None, &Default::default()).unwrap();
    let cell = Cell {
        method: Method::KMeans.into(),
        k: 4,
    };

    let a = embed(&samples, &pixels, &cache);
    assert!(
        cache_files(&cache, "features-").is_empty(),
        "pixels are not cached"
    );
    let (la, ma, _) = clusters_for(&a, &cell, 0, &cache).unwrap();
    assert_eq!(la.len(), 8 * NUM_PATCHES);
    let files = cache_files(&cache, "clusters-");
    assert_eq!(files.len(), 1, "{files:?}");

    // Reused: a marked seconds file is read back.
    let seconds = cache.join(&files[0]).with_extension("seconds");
    std::fs::write(&seconds, "12345").unwrap();
    let (l2, m2, s2) = clusters_for(&a, &cell, 0, &cache).unwrap();
    assert_eq!(
        (l2, m2, s2),
        (la.clone(), ma, 12345.0),
        "the second call must read the cache"
    );

    // Another seed is another cache entry.
    clusters_for(&a, &cell, 1, &cache).unwrap();
    assert_eq!(cache_files(&cache, "clusters-").len(), 2);

    // The last face replaced: the features differ there, and the labels are recomputed from them.
    replace_last_face(&samples);
    let b = embed(&samples, &pixels, &cache);
    assert_ne!(b.key, a.key);
    let per = NUM_PATCHES * b.dim;
    assert_eq!(b.features[..7 * per], a.features[..7 * per]);
    assert!(max_diff(&b.features[7 * per..], &a.features[7 * per..]) > 1e-2);
    let (lb, _, sb) = clusters_for(&b, &cell, 0, &cache).unwrap();
    assert_ne!(sb, 12345.0, "stale cluster labels were reused");
    assert_eq!(cache_files(&cache, "clusters-").len(), 3);
    let spec = ClusterSpec {
        method: Method::KMeans,
        k: 4,
        seed: 0,
    };
    let fresh: Vec<u32> = cluster_batch(&b.features, 8, NUM_PATCHES, b.dim, &spec, 1)
        .unwrap()
        .iter()
        .flat_map(|c| c.labels.clone())
        .collect();
    assert_eq!(lb, fresh);
}
