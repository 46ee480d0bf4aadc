//! Behavioural properties of the patch-to-cluster ViT on `NdArray<f32>`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::backend::ndarray::NdArrayDevice;
use burn::backend::{Autodiff, NdArray};
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, ElementConversion, Int, Tensor, TensorData};
use paca_fer::model::{
    Assignment, AttentionKind, CONFIG_FILE, MODEL_FILE, ModelConfig, ModelError, PatchAttentionConfig,
    Pooling, Vit, hard_assignment, identity_assignment, load_model, save_model,
};

type B = NdArray<f32>;
type Ad = Autodiff<B>;

const N: usize = 36;

fn device() -> NdArrayDevice {
    Default::default()
}

fn max_abs_diff<const D: usize, Bk: Backend>(a: Tensor<Bk, D>, b: Tensor<Bk, D>) -> f32 {
    (a - b).abs().max().into_scalar().elem::<f32>()
}

fn all_finite<const D: usize, Bk: Backend>(t: Tensor<Bk, D>) -> bool {
    t.into_data()
        .to_vec::<f32>()
        .unwrap()
        .iter()
        .all(|v| v.is_finite())
}

fn tokens(batch: usize, d: usize) -> Tensor<B, 3> {
    Tensor::random([batch, N, d], Distribution::Normal(0.0, 1.0), &device())
}

fn hard(clusters: usize) -> AttentionKind {
    AttentionKind::PatchToCluster {
        clusters,
        assignment: Assignment::Hard,
    }
}

fn small_config(in_dim: usize) -> ModelConfig {
    ModelConfig::new(in_dim)
        .with_d_model(32)
        .with_heads(4)
        .with_depth(2)
        .with_dropout(0.0)
        .with_drop_path(0.0)
}

fn labels(batch: usize, m: usize, seed: usize) -> Vec<u32> {
    (0..batch * N)
        .map(|i| ((i * 7 + seed + i / N * 3) % m) as u32)
        .collect()
}

fn temp_dir(tag: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "paca-fer-test-{}-{}-{tag}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn identity_assignment_reduces_to_patch_to_patch() {
    let attn = PatchAttentionConfig::new(64, 4).init::<B>(&device());
    let x = tokens(3, 64);
    let p2p = attn.forward_patch_to_patch(x.clone());
    let paca = attn.forward_patch_to_cluster(x, identity_assignment(3, N, &device()), None);
    assert_eq!(p2p.dims(), [3, N, 64]);
    assert!(max_abs_diff(p2p, paca) < 1e-5);
}

#[test]
fn identity_assignment_model_matches_patch_to_patch_model_with_copied_weights() {
    for pooling in [Pooling::Mean, Pooling::ClassToken] {
        let paca_cfg = small_config(20).with_attention(hard(N)).with_pooling(pooling);
        let p2p_cfg = paca_cfg.clone().with_attention(AttentionKind::PatchToPatch);
        let paca: Vit<B> = paca_cfg.init(&device()).unwrap();
        let p2p: Vit<B> = p2p_cfg.init::<B>(&device()).unwrap();
        let p2p = p2p.load_record(paca.clone().into_record());
        let x = tokens(2, 20);
        let a = identity_assignment(2, N, &device());
        let d = max_abs_diff(paca.forward(x.clone(), Some(a)), p2p.forward(x, None));
        assert!(d < 1e-5, "{pooling:?}: {d}");
    }
}

#[test]
fn permuting_cluster_ids_leaves_output_unchanged() {
    // m = 3 exercises the block-diagonal path, m = 5 the head-split path.
    for (m, perm) in [(3usize, vec![2u32, 0, 1]), (5, vec![3, 0, 4, 1, 2])] {
        let attn = PatchAttentionConfig::new(64, 4).init::<B>(&device());
        let x = tokens(2, 64);
        let l = labels(2, m, 1);
        let permuted: Vec<u32> = l.iter().map(|&c| perm[c as usize]).collect();
        let a = hard_assignment::<B>(&l, 2, N, m, &device()).unwrap();
        let b = hard_assignment::<B>(&permuted, 2, N, m, &device()).unwrap();
        let ya = attn.forward_patch_to_cluster(x.clone(), a, None);
        let yb = attn.forward_patch_to_cluster(x, b, None);
        assert!(max_abs_diff(ya, yb) < 1e-5, "m={m}");

        // Same at model level (hard PaCa).
        let model: Vit<B> = small_config(16).with_attention(hard(m)).init(&device()).unwrap();
        let f = tokens(2, 16);
        let a = hard_assignment::<B>(&l, 2, N, m, &device()).unwrap();
        let b = hard_assignment::<B>(&permuted, 2, N, m, &device()).unwrap();
        let d = max_abs_diff(model.forward(f.clone(), Some(a)), model.forward(f, Some(b)));
        assert!(d < 1e-5, "m={m}: {d}");
    }
}

#[test]
fn empty_cluster_is_finite_and_equals_dropping_it() {
    let m = 4;
    // cluster 2 never used
    let l: Vec<u32> = (0..2 * N).map(|i| [0u32, 1, 3][i % 3]).collect();
    let compact: Vec<u32> = l.iter().map(|&c| if c == 3 { 2 } else { c }).collect();
    let with_empty = hard_assignment::<B>(&l, 2, N, m, &device()).unwrap();
    let without = hard_assignment::<B>(&compact, 2, N, 3, &device()).unwrap();

    let model: Vit<B> = small_config(16).with_attention(hard(m)).init(&device()).unwrap();
    let f = tokens(2, 16);
    let y_empty = model.forward(f.clone(), Some(with_empty));
    assert!(all_finite(y_empty.clone()));
    let y_without = model.forward(f, Some(without));
    assert!(max_abs_diff(y_empty, y_without) < 1e-5);

    // Gradients through an empty cluster stay finite too.
    let model: Vit<Ad> = small_config(16).with_attention(hard(m)).init(&device()).unwrap();
    let a = hard_assignment::<Ad>(&l, 2, N, m, &device()).unwrap();
    let f = Tensor::<Ad, 3>::random([2, N, 16], Distribution::Default, &device());
    let grads = model.forward(f, Some(a)).sum().backward();
    let g = model.embed.proj.weight.grad(&grads).unwrap();
    assert!(all_finite(g));
}

#[test]
fn soft_assignment_rows_sum_to_one_and_head_gets_gradient() {
    let m = 6;
    let attn = PatchAttentionConfig::new(32, 4)
        .with_soft_clusters(Some(m))
        .init::<Ad>(&device());
    let x = Tensor::<Ad, 3>::random([3, N, 32], Distribution::Normal(0.0, 1.0), &device());
    let a = attn.soft_assignment(x.clone(), 0).unwrap();
    assert_eq!(a.dims(), [3, m, N]);
    let sums = a.sum_dim(2).into_data().to_vec::<f32>().unwrap();
    assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5), "{sums:?}");

    let loss = attn.forward_soft(x, 0).powi_scalar(2).sum();
    let grads = loss.backward();
    let head = attn.assign_head.as_ref().unwrap();
    let g = head.weight.grad(&grads).expect("assignment head has a gradient");
    let norm: f32 = g.abs().sum().into_scalar();
    assert!(norm > 0.0 && norm.is_finite(), "grad norm {norm}");
}

#[test]
fn soft_model_head_gets_gradient_with_class_token() {
    let cfg = small_config(16)
        .with_attention(AttentionKind::PatchToCluster {
            clusters: 3,
            assignment: Assignment::Soft,
        })
        .with_pooling(Pooling::ClassToken);
    let model: Vit<Ad> = cfg.init(&device()).unwrap();
    let f = Tensor::<Ad, 3>::random([2, N, 16], Distribution::Default, &device());
    let logits = model.forward(f, None);
    assert_eq!(logits.dims(), [2, 8]);
    let grads = logits.sum().backward();
    for block in &model.blocks {
        let g = block.attn.assign_head.as_ref().unwrap().weight.grad(&grads);
        let norm: f32 = g.unwrap().abs().sum().into_scalar();
        assert!(norm > 0.0);
    }
}

#[test]
fn full_model_output_shape_and_finite_for_every_variant() {
    let kinds = [
        hard(2),
        hard(4),
        AttentionKind::PatchToCluster {
            clusters: 4,
            assignment: Assignment::Soft,
        },
        AttentionKind::PatchToPatch,
    ];
    for attention in kinds {
        for pooling in [Pooling::Mean, Pooling::ClassToken] {
            let cfg = ModelConfig::new(24)
                .with_attention(attention)
                .with_pooling(pooling);
            let model: Vit<B> = cfg.init(&device()).unwrap();
            let f = tokens(5, 24);
            let a = cfg
                .clusters()
                .map(|m| hard_assignment::<B>(&labels(5, m, 0), 5, N, m, &device()).unwrap());
            let y = model.try_forward(f, a).unwrap();
            assert_eq!(y.dims(), [5, 8]);
            assert!(all_finite(y), "{attention:?} {pooling:?}");
        }
    }
}

#[test]
fn try_forward_rejects_bad_shapes_without_panicking() {
    let model: Vit<B> = small_config(16).with_attention(hard(3)).init(&device()).unwrap();
    let f = tokens(2, 16);
    let a = hard_assignment::<B>(&labels(2, 3, 0), 2, N, 3, &device()).unwrap();
    assert!(matches!(
        model.try_forward(f.clone(), None),
        Err(ModelError::InvalidInput(_))
    ));
    let wrong_m = hard_assignment::<B>(&labels(2, 4, 0), 2, N, 4, &device()).unwrap();
    assert!(model.try_forward(f.clone(), Some(wrong_m)).is_err());
    assert!(model.try_forward(tokens(2, 15), Some(a.clone())).is_err());
    assert!(model.try_forward(f, Some(a)).is_ok());
}

#[test]
fn invalid_configs_are_rejected() {
    assert!(
        ModelConfig::new(8)
            .with_d_model(30)
            .with_heads(4)
            .init::<B>(&device())
            .is_err()
    );
    assert!(ModelConfig::new(0).init::<B>(&device()).is_err());
    assert!(
        ModelConfig::new(8)
            .with_dropout(1.0)
            .init::<B>(&device())
            .is_err()
    );
    assert!(
        ModelConfig::new(8)
            .with_attention(hard(0))
            .init::<B>(&device())
            .is_err()
    );
}

#[test]
fn config_round_trips_through_json() {
    use burn::config::Config;
    let cfg = ModelConfig::new(96)
        .with_d_model(96)
        .with_attention(AttentionKind::PatchToCluster {
            clusters: 5,
            assignment: Assignment::Soft,
        })
        .with_pooling(Pooling::ClassToken)
        .with_mlp_ratio(4.0);
    let json = burn::config::config_to_json(&cfg);
    let back = ModelConfig::load_binary(json.as_bytes()).unwrap();
    assert_eq!(cfg, back);
    let default = ModelConfig::new(768);
    let back = ModelConfig::load_binary(burn::config::config_to_json(&default).as_bytes()).unwrap();
    assert_eq!(default, back);
}

#[test]
fn adam_steps_decrease_cross_entropy_on_a_fixed_batch() {
    B::seed(&device(), 7);
    for attention in [hard(3), AttentionKind::PatchToPatch] {
        let cfg = small_config(16).with_attention(attention);
        let mut model: Vit<Ad> = cfg.init(&device()).unwrap();
        let mut optim = AdamConfig::new().init::<Ad, Vit<Ad>>();
        let loss_fn = CrossEntropyLossConfig::new().init(&device());
        let batch = 16;
        let f = Tensor::<Ad, 3>::random([batch, N, 16], Distribution::Normal(0.0, 1.0), &device());
        let a = cfg
            .needs_assignment()
            .then(|| hard_assignment::<Ad>(&labels(batch, 3, 2), batch, N, 3, &device()).unwrap());
        let y: Vec<i64> = (0..batch as i64).map(|i| i % 8).collect();
        let y = Tensor::<Ad, 1, Int>::from_data(TensorData::new(y, [batch]), &device());
        let mut losses = Vec::new();
        for _ in 0..15 {
            let loss = loss_fn.forward(model.forward(f.clone(), a.clone()), y.clone());
            losses.push(loss.clone().into_scalar());
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(1e-3, model, grads);
        }
        let (first, last) = (losses[0], *losses.last().unwrap());
        assert!(
            losses.windows(2).all(|w| w[1] < w[0]) && last < 0.8 * first,
            "{attention:?}: loss {first} -> {last} ({losses:?})"
        );
    }
}

#[test]
fn data_parallel_grads_equal_single_pass_grads() {
    use burn::module::{ModuleVisitor, Param};
    use paca_fer::model::{data_parallel_grads, split_batch};

    /// Collects (id, gradient values) for every float parameter.
    struct Collect<'a>(&'a GradientsParams, Vec<Vec<f32>>);
    impl ModuleVisitor<Ad> for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Ad, D>>) {
            let g = self
                .0
                .get::<B, D>(param.id)
                .expect("every parameter has a gradient");
            self.1.push(g.into_data().to_vec::<f32>().unwrap());
        }
    }

    let cfg = small_config(16).with_attention(hard(3));
    let model: Vit<Ad> = cfg.init(&device()).unwrap();
    let batch = 7; // uneven shards: 4 + 3
    let f = Tensor::<Ad, 3>::random([batch, N, 16], Distribution::Normal(0.0, 1.0), &device());
    let a = hard_assignment::<Ad>(&labels(batch, 3, 4), batch, N, 3, &device()).unwrap();
    let y = Tensor::<Ad, 1, Int>::from_data(TensorData::new((0..batch as i64).collect(), [batch]), &device());
    let loss_fn = CrossEntropyLossConfig::new().init(&device());

    // Data-parallel first, on a model that has not run yet (catches replicas without grads).
    let shards = split_batch(f.clone(), Some(a.clone()), y.clone(), 2);
    assert_eq!(shards.len(), 2);
    let loss = |logits, y| loss_fn.forward(logits, y);
    let (parallel, parallel_loss) = data_parallel_grads(&model, shards, &loss, 0).unwrap();

    let loss = loss_fn.forward(model.forward(f, Some(a)), y);
    let single_loss: f32 = loss.clone().into_scalar();
    let single = GradientsParams::from_grads(loss.backward(), &model);
    assert!((single_loss - parallel_loss).abs() < 1e-5);

    let mut s = Collect(&single, Vec::new());
    model.visit(&mut s);
    let mut p = Collect(&parallel, Vec::new());
    model.visit(&mut p);
    assert_eq!(s.1.len(), p.1.len());
    for (gs, gp) in s.1.iter().zip(&p.1) {
        for (x, z) in gs.iter().zip(gp) {
            assert!((x - z).abs() < 1e-5 + 1e-4 * x.abs(), "{x} vs {z}");
        }
    }
}

fn saved_model(tag: &str) -> (PathBuf, Vit<B>, ModelConfig) {
    let cfg = small_config(12)
        .with_attention(hard(3))
        .with_pooling(Pooling::ClassToken);
    let model: Vit<B> = cfg.init(&device()).unwrap();
    let dir = temp_dir(tag);
    save_model(&dir, &model, &cfg).unwrap();
    (dir, model, cfg)
}

#[test]
fn save_load_round_trip_gives_identical_logits() {
    let (dir, model, cfg) = saved_model("roundtrip");
    assert!(dir.join(CONFIG_FILE).is_file() && dir.join(MODEL_FILE).is_file());
    assert!(!dir.join(format!("{MODEL_FILE}.tmp")).exists());
    let (loaded, loaded_cfg) = load_model::<B>(&dir, &device()).unwrap();
    assert_eq!(cfg, loaded_cfg);
    let f = tokens(3, 12);
    let a = hard_assignment::<B>(&labels(3, 3, 5), 3, N, 3, &device()).unwrap();
    let before = model.forward(f.clone(), Some(a.clone())).into_data();
    let after = loaded.forward(f.clone(), Some(a.clone())).into_data();
    assert_eq!(before, after);

    // The weights file is a plain burn named-MessagePack record.
    let rec = NamedMpkFileRecorder::<FullPrecisionSettings>::new()
        .load(dir.join(MODEL_FILE), &device())
        .unwrap();
    let via_burn = cfg.init::<B>(&device()).unwrap().load_record(rec);
    assert_eq!(before, via_burn.forward(f, Some(a)).into_data());

    // Saving over an existing checkpoint works (atomic replace).
    save_model(&dir, &loaded, &cfg).unwrap();
    assert!(load_model::<B>(&dir, &device()).is_ok());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn autodiff_model_saves_and_loads_into_inference_backend() {
    let cfg = small_config(12).with_attention(hard(2));
    let model: Vit<Ad> = cfg.init(&device()).unwrap();
    let dir = temp_dir("autodiff");
    save_model(&dir, &model, &cfg).unwrap();
    let (loaded, _) = load_model::<B>(&dir, &device()).unwrap();
    let f = tokens(2, 12);
    let a = hard_assignment::<B>(&labels(2, 2, 0), 2, N, 2, &device()).unwrap();
    use burn::module::AutodiffModule;
    let want = model.valid().forward(f.clone(), Some(a.clone())).into_data();
    assert_eq!(want, loaded.forward(f, Some(a)).into_data());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn missing_files_are_named_in_the_error() {
    let (dir, _, _) = saved_model("missing");
    std::fs::remove_file(dir.join(MODEL_FILE)).unwrap();
    let err = load_model::<B>(&dir, &device()).unwrap_err();
    assert!(matches!(err, ModelError::MissingFile { ref path } if path.ends_with(MODEL_FILE)));
    assert!(err.to_string().contains(MODEL_FILE), "{err}");

    std::fs::remove_file(dir.join(CONFIG_FILE)).unwrap();
    let err = load_model::<B>(&dir, &device()).unwrap_err();
    assert!(err.to_string().contains(CONFIG_FILE), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn truncated_or_garbled_files_give_clear_errors() {
    let (dir, _, _) = saved_model("truncated");
    let weights = dir.join(MODEL_FILE);
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_model::<B>(&dir, &device()).unwrap_err();
    assert!(matches!(err, ModelError::CorruptFile { .. }), "{err}");
    assert!(err.to_string().contains(MODEL_FILE), "{err}");

    std::fs::write(dir.join(CONFIG_FILE), b"{ not json").unwrap();
    let err = load_model::<B>(&dir, &device()).unwrap_err();
    assert!(matches!(err, ModelError::CorruptFile { .. }), "{err}");
    assert!(err.to_string().contains(CONFIG_FILE), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn weights_that_do_not_fit_the_config_are_rejected() {
    type Edit = fn(ModelConfig) -> ModelConfig;
    let edits: [(&str, Edit); 5] = [
        ("d_model", |c| c.with_d_model(64)),
        ("depth", |c| c.with_depth(3)),
        ("in_dim", |c| ModelConfig { in_dim: 13, ..c }),
        ("pooling", |c| c.with_pooling(Pooling::Mean)),
        ("soft", |c| {
            c.with_attention(AttentionKind::PatchToCluster {
                clusters: 3,
                assignment: Assignment::Soft,
            })
        }),
    ];
    for (what, edit) in edits {
        let (dir, _, cfg) = saved_model(what);
        let json = burn::config::config_to_json(&edit(cfg));
        std::fs::write(dir.join(CONFIG_FILE), json).unwrap();
        let err = load_model::<B>(&dir, &device()).unwrap_err();
        assert!(matches!(err, ModelError::ShapeMismatch { .. }), "{what}: {err}");
        assert!(err.to_string().contains(MODEL_FILE), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
