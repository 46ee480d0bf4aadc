//! Stable keys of the training caches (`<cache>/features-<key>.npy`, `<cache>/clusters-…-<key>.npy`).
//!
//! A key is SHA-256 over a version tag and then typed fields (variable-length ones length-prefixed,
//! integers as little-endian `u64`), printed as its first 16 bytes in hex. It depends only on what is
//! fed in: never on `Debug` output or std's `DefaultHasher`, which may change between Rust releases.
//!
//! - **Feature key** ([`features_key`]): [`FEATURES_VERSION`], the input side (96), the embedder kind
//!   and its feature width, a digest of the embedder's *loaded* weights ([`weights_digest`]: so a
//!   different `--embedder-weights` file, a fine-tuned `embedder.mpk` or random weights each get their
//!   own features), and per sample its path, its label and a SHA-256 of the file's bytes. Content,
//!   not size and modification time: a replaced image is noticed even when its name, size and mtime
//!   are unchanged, and hashing all 28k FER+ PNGs takes ≈ 0.3 s on 2 cores with warm disk caches
//!   (≈ 2 s cold), against minutes to embed them. An unreadable file is recorded as such (it is skipped
//!   by the embedding too), so the key changes once it becomes readable.
//! - **Cluster key** ([`clusters_key`]): [`CLUSTERS_VERSION`], the feature key of the features
//!   clustered, their count and width, the method, k and the seed.
//!
//! Bump a version tag when the code behind it changes its output (decoding and resizing faces or
//! the embedders for features; the clustering methods for clusters): old cache files are then
//! simply never read again.

use std::path::PathBuf;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::data::Sample;
use crate::model::embed::{Embedder, EmbedderKind, INPUT_SIZE};

/// Version tag of the feature cache: bump when face decoding/resizing or an embedder changes its output.
pub const FEATURES_VERSION: &str = "paca-fer features v2";
/// Version tag of the cluster cache: bump when a clustering method changes its labels.
pub const CLUSTERS_VERSION: &str = "paca-fer clusters v2";

/// A SHA-256 digest.
pub type Digest32 = [u8; 32];

/// Builder of one key: a version tag, then typed fields in a fixed order.
#[derive(Clone)]
pub struct KeyHasher(Sha256);

impl KeyHasher {
    /// A key that starts with the version tag `tag`.
    pub fn new(tag: &str) -> Self {
        let mut h = KeyHasher(Sha256::new());
        h.str(tag);
        h
    }

    /// Adds a byte string (length-prefixed, so consecutive fields cannot run into each other).
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.update((b.len() as u64).to_le_bytes());
        self.0.update(b);
        self
    }

    /// Adds a UTF-8 string.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// Adds an integer (little-endian `u64`).
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.update(v.to_le_bytes());
        self
    }

    /// The full digest.
    pub fn digest(self) -> Digest32 {
        self.0.finalize().into()
    }

    /// The key: the digest's first 16 bytes as 32 lowercase hex digits.
    pub fn finish(self) -> String {
        hex(&self.digest()[..16])
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the feature key records of one sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleInput {
    /// Path of the image file.
    pub path: PathBuf,
    /// Class index of its label.
    pub label: u8,
    /// SHA-256 of the file's bytes; `None` when it could not be read.
    pub content: Option<Digest32>,
}

/// SHA-256 of the file at `path`, streamed.
fn file_digest(path: &std::path::Path) -> std::io::Result<Digest32> {
    let mut h = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut h)?;
    Ok(h.finalize().into())
}

/// Reads and hashes every sample's file (in parallel), in the order given.
pub fn sample_inputs(samples: &[Sample]) -> Vec<SampleInput> {
    samples
        .par_iter()
        .map(|s| SampleInput {
            path: s.path.clone(),
            label: s.label.index() as u8,
            content: match file_digest(&s.path) {
                Ok(d) => Some(d),
                Err(e) => {
                    log::debug!("cache key: cannot read {}: {e}", s.path.display());
                    None
                }
            },
        })
        .collect()
}

/// Hashes the name path, shape and values of every parameter a module visits.
struct WeightHasher(KeyHasher);

impl WeightHasher {
    fn tensor(&mut self, tag: &str, dims: &[usize], data: burn::tensor::TensorData) {
        self.0.str(tag).u64(dims.len() as u64);
        for &d in dims {
            self.0.u64(d as u64);
        }
        self.0.bytes(data.as_bytes());
    }
}

impl<B: Backend> ModuleVisitor<B> for WeightHasher {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.0.str("enter").str(name).str(container_type);
    }

    fn exit_module(&mut self, name: &str, _container_type: &str) {
        self.0.str("exit").str(name);
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let t = param.val();
        let dims = t.dims();
        self.tensor("float", &dims, t.into_data().convert::<f32>());
    }

    fn visit_int<const D: usize>(&mut self, param: &Param<Tensor<B, D, Int>>) {
        let t = param.val();
        let dims = t.dims();
        self.tensor("int", &dims, t.into_data().convert::<i64>());
    }

    fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<B, D, Bool>>) {
        let t = param.val();
        let dims = t.dims();
        self.tensor("bool", &dims, t.into_data());
    }
}

/// Digest of an embedder's loaded parameters (names, shapes, values as `f32`): whatever file or
/// fine-tuning they came from, equal weights give equal digests. `pixels` has none (a constant).
pub fn weights_digest<B: Backend>(embedder: &Embedder<B>) -> Digest32 {
    let mut v = WeightHasher(KeyHasher::new("paca-fer embedder weights v1"));
    embedder.visit(&mut v);
    v.0.digest()
}

/// The feature-cache key of `samples` embedded at `side`×`side` by a `kind` embedder of width
/// `feat_dim` whose weights digest to `weights`.
pub fn features_key(
    samples: &[SampleInput],
    kind: EmbedderKind,
    feat_dim: usize,
    weights: &Digest32,
    side: usize,
) -> String {
    let mut h = KeyHasher::new(FEATURES_VERSION);
    h.u64(side as u64)
        .str(&kind.to_string())
        .u64(feat_dim as u64)
        .bytes(weights)
        .u64(samples.len() as u64);
    for s in samples {
        h.bytes(s.path.as_os_str().as_encoded_bytes()).u64(s.label as u64);
        match &s.content {
            Some(d) => h.u64(1).bytes(d),
            None => h.u64(0),
        };
    }
    h.finish()
}

/// The feature-cache key of `samples` (their files read and hashed) embedded by `embedder` at 96×96.
pub fn features_key_for<B: Backend>(samples: &[Sample], embedder: &Embedder<B>) -> String {
    let t0 = std::time::Instant::now();
    let inputs = sample_inputs(samples);
    let key = features_key(
        &inputs,
        embedder.kind(),
        embedder.feat_dim(),
        &weights_digest(embedder),
        INPUT_SIZE,
    );
    log::debug!(
        "feature cache key of {} images: {key} ({:.2} s)",
        samples.len(),
        t0.elapsed().as_secs_f64()
    );
    key
}

/// The cluster-cache key of `n` images of `dim`-wide features (identified by `features_key`)
/// clustered by `method` with `k` and `seed`.
pub fn clusters_key(features_key: &str, n: usize, dim: usize, method: &str, k: usize, seed: u64) -> String {
    let mut h = KeyHasher::new(CLUSTERS_VERSION);
    h.str(features_key)
        .u64(n as u64)
        .u64(dim as u64)
        .str(method)
        .u64(k as u64)
        .u64(seed);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::embed::ResNetMode;

    fn sample(path: &str, label: u8, byte: u8) -> SampleInput {
        SampleInput {
            path: PathBuf::from(path),
            label,
            content: Some([byte; 32]),
        }
    }

    fn base() -> Vec<SampleInput> {
        vec![
            sample("a/1.png", 0, 1),
            sample("b/2.png", 3, 2),
            sample("c/3.png", 7, 3),
        ]
    }

    fn fkey(samples: &[SampleInput], kind: EmbedderKind, dim: usize, w: u8, side: usize) -> String {
        features_key(samples, kind, dim, &[w; 32], side)
    }

    /// Stability check of the hash only (not of correctness): these hex strings must not change
    /// with the Rust release, the platform or the run. If a deliberate change of the key's layout
    /// alters them, bump the version tag in the same commit. The three values were also computed
    /// outside Rust (Python's `hashlib.sha256` over the byte layout in the module docs: each field
    /// `u64` little-endian, strings and byte strings prefixed by their length as `u64`).
    #[test]
    fn keys_are_stable() {
        let f = fkey(&base(), EmbedderKind::MobileNetV2, 96, 9, 96);
        assert_eq!(f, "6467d784e92aaa712fc5247c779ff399");
        assert_eq!(
            clusters_key(&f, 3, 96, "kmeans", 4, 0),
            "26ed960aa60467a3dc8e6f073e920341"
        );
        assert_eq!(KeyHasher::new("tag").finish(), "3d7204e5ca2b81e8fd63a0abc66fbb2b");
    }

    #[test]
    fn changing_any_feature_component_changes_the_key() {
        let mv2 = EmbedderKind::MobileNetV2;
        let s = base();
        let mut variants = vec![fkey(&s, mv2, 96, 9, 96)];
        for i in 0..s.len() {
            let mut v = s.clone();
            v[i].path.set_extension("jpg");
            variants.push(fkey(&v, mv2, 96, 9, 96));
            let mut v = s.clone();
            v[i].label = (v[i].label + 1) % 8;
            variants.push(fkey(&v, mv2, 96, 9, 96));
            let mut v = s.clone();
            v[i].content.as_mut().unwrap()[31] ^= 1;
            variants.push(fkey(&v, mv2, 96, 9, 96));
            let mut v = s.clone();
            v[i].content = None;
            variants.push(fkey(&v, mv2, 96, 9, 96));
            let mut v = s.clone();
            v.remove(i);
            variants.push(fkey(&v, mv2, 96, 9, 96));
        }
        let mut swapped = s.clone();
        swapped.swap(0, 2);
        variants.push(fkey(&swapped, mv2, 96, 9, 96));
        variants.push(fkey(&s, EmbedderKind::Pixels, 96, 9, 96));
        let r50 = EmbedderKind::ResNet50 {
            mode: ResNetMode::PerPatch,
        };
        variants.push(fkey(&s, r50, 96, 9, 96));
        variants.push(fkey(&s, mv2, 95, 9, 96));
        variants.push(fkey(&s, mv2, 96, 8, 96));
        variants.push(fkey(&s, mv2, 96, 9, 64));
        let mut one_weight_bit = [9u8; 32];
        one_weight_bit[0] ^= 0x80;
        variants.push(features_key(&s, mv2, 96, &one_weight_bit, 96));
        assert_all_distinct(&variants);
        // Equal inputs, equal keys.
        assert_eq!(fkey(&base(), mv2, 96, 9, 96), variants[0]);
    }

    #[test]
    fn changing_any_cluster_component_changes_the_key() {
        let variants = vec![
            clusters_key("f", 10, 96, "kmeans", 4, 0),
            clusters_key("g", 10, 96, "kmeans", 4, 0),
            clusters_key("f", 11, 96, "kmeans", 4, 0),
            clusters_key("f", 10, 97, "kmeans", 4, 0),
            clusters_key("f", 10, 96, "dbscan", 4, 0),
            clusters_key("f", 10, 96, "kmeans", 5, 0),
            clusters_key("f", 10, 96, "kmeans", 4, 1),
        ];
        assert_all_distinct(&variants);
        assert_eq!(clusters_key("f", 10, 96, "kmeans", 4, 0), variants[0]);
    }

    #[test]
    fn fields_do_not_run_into_each_other() {
        let mut a = KeyHasher::new("t");
        a.str("ab").str("c");
        let mut b = KeyHasher::new("t");
        b.str("a").str("bc");
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn weights_digest_sees_one_changed_value() {
        use burn::module::ModuleMapper;
        type B = crate::backend::Cpu;
        let device = Default::default();
        let e = Embedder::<B>::random(EmbedderKind::MobileNetV2, &device).unwrap();
        let d = weights_digest(&e);
        assert_eq!(weights_digest(&e.clone()), d, "a clone has the same weights");
        struct Nudge(bool);
        impl ModuleMapper<B> for Nudge {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
                if std::mem::take(&mut self.0) {
                    param.map(|t| {
                        let mut v: Vec<f32> = t.to_data().to_vec().unwrap();
                        v[0] += 1e-3;
                        Tensor::from_data(burn::tensor::TensorData::new(v, t.dims()), &t.device())
                    })
                } else {
                    param
                }
            }
        }
        let nudged = e.clone().map(&mut Nudge(true));
        assert_ne!(weights_digest(&nudged), d);
        let pixels = Embedder::<B>::random(EmbedderKind::Pixels, &device).unwrap();
        assert_ne!(weights_digest(&pixels), d);
    }

    fn assert_all_distinct(keys: &[String]) {
        for (i, a) in keys.iter().enumerate() {
            for (j, b) in keys.iter().enumerate().skip(i + 1) {
                assert_ne!(a, b, "variants {i} and {j} share a key");
            }
        }
    }
}
