//! Training on real FER+ faces: the loss falls, a run resumed from its checkpoint ends exactly where
//! an uninterrupted run ends, and the saved model reloads to the same predictions.

mod common;

use paca_fer::backend::{Cpu, CpuTrain};
use paca_fer::cluster::{ClusterSpec, Method, cluster_batch};
use paca_fer::data::{Dataset, Layout, load_faces};
use paca_fer::model::embed::embed_faces;
use paca_fer::model::embed::{Embedder, EmbedderKind};
use paca_fer::model::{Assignment, AttentionKind, ModelConfig, load_model, save_model};
use paca_fer::patch::NUM_PATCHES;
use paca_fer::train::trainer::{SplitData, TrainOptions, predict, train};

fn split(samples: &[paca_fer::data::Sample], k: usize) -> SplitData<'static> {
    let (faces, _) = load_faces(samples, 96);
    let device = Default::default();
    let emb = Embedder::<Cpu>::load(EmbedderKind::Pixels, None, &device).unwrap();
    let imgs: Vec<_> = faces.iter().map(|(i, _)| i.clone()).collect();
    let features = embed_faces(&imgs, &emb, &device, false).unwrap();
    let dim = emb.feat_dim();
    let spec = ClusterSpec {
        method: Method::KMeans,
        k,
        seed: 0,
    };
    let cl = cluster_batch(&features, imgs.len(), NUM_PATCHES, dim, &spec, 2).unwrap();
    let clusters = cl.iter().flat_map(|c| c.labels.clone()).collect();
    SplitData {
        features: features.into(),
        dim,
        clusters: Some(clusters),
        targets: faces.iter().map(|(_, e)| e.index() as u8).collect(),
    }
}

#[test]
fn resume_matches_uninterrupted_and_model_round_trips() {
    let Some(root) = common::ferplus() else { return };
    let ds = Dataset::open(&root, Layout::FerPlus).unwrap();
    let tr: Vec<_> = ds.split("train").unwrap().iter().step_by(100).cloned().collect();
    let ev: Vec<_> = ds.split("valid").unwrap().iter().step_by(40).cloned().collect();
    let (train_d, eval_d) = (split(&tr, 2), split(&ev, 2));
    let cfg = ModelConfig::new(train_d.dim)
        .with_d_model(32)
        .with_heads(2)
        .with_depth(2)
        .with_attention(AttentionKind::PatchToCluster {
            clusters: 2,
            assignment: Assignment::Hard,
        });
    let dir = tempfile::tempdir().unwrap();
    let opts = |epochs: usize, sub: &str, resume: bool| TrainOptions {
        epochs,
        batch_size: 32,
        lr: 1e-3,
        seed: 3,
        label_smoothing: 0.0,
        cosine: false,
        checkpoint_dir: dir.path().join(sub),
        resume,
        progress: false,
        threads: 2,
    };
    let device = Default::default();
    let (_, full) = train::<CpuTrain>(&cfg, &train_d, &eval_d, &opts(3, "full", false), &device).unwrap();
    assert!(
        full.train_loss[2] < full.train_loss[0],
        "loss did not fall: {:?}",
        full.train_loss
    );

    // "Killed" after one epoch, then resumed to three.
    let (_, first) = train::<CpuTrain>(&cfg, &train_d, &eval_d, &opts(1, "resumed", false), &device).unwrap();
    assert_eq!(first.train_loss.len(), 1);
    let (model, resumed) =
        train::<CpuTrain>(&cfg, &train_d, &eval_d, &opts(3, "resumed", true), &device).unwrap();
    assert_eq!(resumed.train_loss.len(), 3);
    assert_eq!(
        resumed.epochs_run, 2,
        "the resumed run must start from the epoch-1 checkpoint"
    );
    // Same shuffle, dropout stream and optimiser state; only the CPU backend's multi-threaded float
    // reductions are not bit-reproducible (two fresh runs differ at ~1e-8), so compare with a tolerance.
    for (a, b) in full.train_loss.iter().zip(&resumed.train_loss) {
        assert!(
            (a - b).abs() / a < 1e-5,
            "loss curves differ: {:?} vs {:?}",
            full.train_loss,
            resumed.train_loss
        );
    }
    assert!(
        (full.metrics.accuracy - resumed.metrics.accuracy).abs() <= 0.02,
        "accuracy {} vs {}",
        full.metrics.accuracy,
        resumed.metrics.accuracy
    );

    // Saved and reloaded, the model predicts the same.
    let mdir = dir.path().join("model");
    save_model(&mdir, &model, &cfg).unwrap();
    let (loaded, cfg2) = load_model::<Cpu>(&mdir, &device).unwrap();
    assert_eq!(cfg2, cfg);
    let (p1, _) = predict(&model, &cfg, &eval_d, 64, &device).unwrap();
    let (p2, _) = predict(&loaded, &cfg, &eval_d, 64, &device).unwrap();
    assert_eq!(p1, p2);
}
