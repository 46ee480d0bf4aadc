//! `paca-fer finetune` end to end on real FER+ faces (CPU): the MobileNetV2 trunk and the ViT are
//! trained together from the shipped default model (and from a hard-cluster model, its clusters
//! recomputed from the trunk as it trains), the folder it writes is loaded by `eval` with the
//! fine-tuned trunk, and a damaged trunk file is reported by name.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// A FER+-layout folder at `root` with `per_class` faces of each class in train and in valid;
/// returns the FER+ folder they came from (`None`: skipped, see [`common::ferplus`]).
fn mini_ferplus(root: &Path, per_class: usize) -> Option<PathBuf> {
    let fer = common::ferplus()?;
    for split in ["train", "valid"] {
        common::copy_ferplus_split(&fer, split, &root.join(split), per_class);
    }
    Some(fer)
}

fn paca(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_paca-fer"));
    c.current_dir(dir).arg("--json");
    c
}

/// ImageNet MobileNetV2 weights shipped in the repository.
fn imagenet() -> PathBuf {
    common::repo_root().join("models/embedders/mobilenet_v2_imagenet_torchvision.safetensors")
}

/// `finetune` from the shipped default model on `data` into `<dir>/<out>`: batches of 8, one epoch
/// unless `extra` names `--epochs`, plus `extra` flags.
fn finetune_default(dir: &Path, data: &Path, out: &str, extra: &[&str]) -> std::process::Output {
    finetune_command(dir, data, out, extra).output().unwrap()
}

/// The command [`finetune_default`] runs.
fn finetune_command(dir: &Path, data: &Path, out: &str, extra: &[&str]) -> Command {
    let root = common::repo_root();
    let one_epoch: &[&str] = if extra.contains(&"--epochs") {
        &[]
    } else {
        &["--epochs", "1"]
    };
    let mut c = paca(dir);
    c.args(["finetune", "--batch-size", "8", "--warmup-steps", "1"])
        .args(one_epoch)
        .args(extra)
        .arg("--init")
        .arg(root.join("models/default"))
        .arg("--embedder-weights")
        .arg(imagenet())
        .args(["--out", out, "--data"])
        .arg(data);
    c
}

/// `eval --json` of the model folder `<dir>/<model>` on `data`'s valid split, one view per face
/// (both TTA views off, as fine-tuning scores its own evaluation).
fn eval_one_view(dir: &Path, model: &str, data: &Path) -> Value {
    json_of(
        &paca(dir)
            .args(["eval", "--model", model, "--split", "valid"])
            .args(["--flip-tta", "false", "--zoom-tta", "false", "--data"])
            .arg(data)
            .output()
            .unwrap(),
    )
}

fn json_of(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn finetune_writes_a_model_that_eval_loads_with_its_trunk() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("fer");
    if mini_ferplus(&data, 2).is_none() {
        return;
    }
    let root = common::repo_root();
    let out = finetune_default(tmp.path(), &data, "ft", &[]);
    let v = json_of(&out);
    let ft = tmp.path().join("ft");
    for f in [
        "config.json",
        "model.mpk",
        "embedder.mpk",
        "meta.json",
        "finetune.json",
    ] {
        assert!(ft.join(f).is_file(), "{f} missing");
    }
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(ft.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["embedder_weights"], "embedder.mpk");
    assert_eq!(meta["method"], "none");
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(ft.join("finetune.json")).unwrap()).unwrap();
    assert_eq!(record["history"].as_array().unwrap().len(), 1);
    assert_eq!(record["train_faces"], 16);

    // The folder keeps the starting model's test-time augmentation settings.
    let init_meta: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("models/default/meta.json")).unwrap())
            .unwrap();
    assert_eq!(meta["flip_tta"], init_meta["flip_tta"].as_bool().unwrap_or(false));
    assert_eq!(meta["zoom_tta"], init_meta["zoom_tta"].as_bool().unwrap_or(false));

    // `eval` runs the shipped classifier path (chunked trunk, then the ViT), finetune its own
    // batched evaluation (without TTA): the same predictions on the same faces.
    let eval = eval_one_view(tmp.path(), "ft", &data);
    assert_eq!(eval["images"], 16);
    assert_eq!(eval["confusion"], v["metrics"]["confusion"]);

    // The trunk really is the fine-tuned one: a damaged embedder.mpk is reported by name.
    let bytes = std::fs::read(ft.join("embedder.mpk")).unwrap();
    std::fs::write(ft.join("embedder.mpk"), &bytes[..bytes.len() / 3]).unwrap();
    let bad = paca(tmp.path())
        .args(["eval", "--model", "ft", "--split", "valid", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("embedder.mpk"), "{err}");
}

#[test]
fn finetune_refuses_a_missing_start_model() {
    let tmp = tempfile::tempdir().unwrap();
    let out = paca(tmp.path())
        .args(["finetune", "--init", "nowhere", "--out", "ft", "--data", "."])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--init nowhere") && err.contains("meta.json"),
        "{err}"
    );
}

#[test]
fn finetune_flags_out_of_range_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    for (flag, value) in [
        ("--batch-size", "0"),
        ("--budget-min", "-1"),
        ("--lr", "NaN"),
        ("--label-smoothing", "1.5"),
        ("--freeze-blocks", "14"),
        ("--swa-epochs", "99"),
        ("--swa-lr", "0"),
    ] {
        let out = paca(tmp.path())
            .args(["finetune", "--out", "ft", "--data", "."])
            .arg(format!("{flag}={value}"))
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag) && !err.contains("panicked"), "{flag}: {err}");
    }
}

#[test]
fn finetune_with_frozen_blocks_trains_only_the_top_of_the_trunk() {
    use burn_ndarray::{NdArray, NdArrayDevice};
    use paca_fer::model::embed::{MOBILENET_V2_BLOCKS, MobileNetV2Embedder};
    type B = NdArray<f32>;

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("fer");
    let Some(fer) = mini_ferplus(&data, 2) else { return };
    let root = common::repo_root();
    let imagenet = imagenet();
    // Soft targets from the real FER+ vote files.
    std::fs::create_dir_all(data.join("votes")).unwrap();
    let votes = fer.join("votes");
    for f in ["train_label.csv", "valid_label.csv"] {
        std::fs::copy(votes.join(f), data.join("votes").join(f)).unwrap();
    }
    let frozen = 6;
    let frozen_flag = frozen.to_string();
    let out = finetune_default(
        tmp.path(),
        &data,
        "ft",
        &[
            "--embed-lr",
            "1e-2",
            "--freeze-blocks",
            &frozen_flag,
            "--soft-labels",
        ],
    );
    json_of(&out);
    let device = NdArrayDevice::Cpu;
    // The starting trunk: the default model's own when it ships one, else ImageNet's.
    let init_trunk = root.join("models/default/embedder.mpk");
    let init_trunk = if init_trunk.is_file() {
        init_trunk
    } else {
        imagenet.clone()
    };
    let before = MobileNetV2Embedder::<B>::load(&init_trunk, &device).unwrap();
    let after = MobileNetV2Embedder::<B>::load(&tmp.path().join("ft/embedder.mpk"), &device).unwrap();
    for block in 0..MOBILENET_V2_BLOCKS {
        let a = before.depthwise_weight(block).unwrap();
        let b = after.depthwise_weight(block).unwrap();
        let diff: f32 = (a - b).abs().max().into_scalar();
        if block < frozen {
            assert_eq!(diff, 0.0, "frozen block {block} changed by {diff}");
        } else {
            assert!(diff > 1e-4, "trainable block {block} did not change ({diff})");
        }
    }
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("ft/finetune.json")).unwrap()).unwrap();
    assert_eq!(record["options"]["freeze_blocks"], frozen);
    assert_eq!(record["soft_labels"], true);

    // Without vote files, --soft-labels is refused by name.
    std::fs::remove_dir_all(data.join("votes")).unwrap();
    let out = finetune_default(tmp.path(), &data, "ft2", &["--soft-labels"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--soft-labels") && err.contains("votes"), "{err}");
}

#[test]
fn finetune_swa_writes_the_mean_of_the_last_epochs_weights() {
    use burn_ndarray::{NdArray, NdArrayDevice};
    use paca_fer::model::embed::MobileNetV2Embedder;
    type B = NdArray<f32>;

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("fer");
    if mini_ferplus(&data, 2).is_none() {
        return;
    }
    // A constant learning rate (`--swa-lr 1`, one warm-up step) makes the runs' first epochs
    // identical whatever their length: 2 epochs, 3 epochs, and 3 epochs averaging the last two.
    let run = |out: &str, epochs: &str, swa: &str| {
        let flags = [
            "--epochs",
            epochs,
            "--swa-epochs",
            swa,
            "--swa-lr",
            "1",
            "--embed-lr",
            "1e-2",
            "--freeze-blocks",
            "11",
        ];
        json_of(&finetune_default(tmp.path(), &data, out, &flags))
    };
    let two = run("two", "2", "1");
    let three = run("three", "3", "1");
    let avg = run("avg", "3", "2");
    assert_eq!(two["averaged_epochs"], 0);
    assert_eq!(three["averaged_epochs"], 0);
    assert_eq!(avg["averaged_epochs"], 2);
    // The average's own run reports its last epoch alone too: the same weights as `three`.
    assert_eq!(avg["last_epoch_accuracy"], three["metrics"]["accuracy"]);
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("avg/finetune.json")).unwrap())
            .unwrap();
    let history = record["history"].as_array().unwrap();
    assert!(history[1]["swa_eval_accuracy"].is_null());
    assert!(history[2]["swa_eval_accuracy"].is_f64());

    let device = NdArrayDevice::Cpu;
    let trunk = |out: &str| {
        MobileNetV2Embedder::<B>::load(&tmp.path().join(out).join("embedder.mpk"), &device).unwrap()
    };
    let (e2, e3, mean) = (trunk("two"), trunk("three"), trunk("avg"));
    for block in [11, 12] {
        let a = e2.depthwise_weight(block).unwrap();
        let b = e3.depthwise_weight(block).unwrap();
        let m = mean.depthwise_weight(block).unwrap();
        let apart: f32 = (a.clone() - b.clone()).abs().max().into_scalar();
        assert!(
            apart > 1e-4,
            "block {block}: epochs 2 and 3 did not differ ({apart})"
        );
        let off: f32 = (m - (a + b) / 2.0).abs().max().into_scalar();
        assert!(off < 1e-5, "block {block}: average off the mean by {off}");
    }
}

#[cfg(unix)]
#[test]
fn finetune_swa_killed_mid_run_resumes_to_the_same_average() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("fer");
    if mini_ferplus(&data, 2).is_none() {
        return;
    }
    let flags = [
        "--epochs",
        "5",
        "--swa-epochs",
        "4",
        "--embed-lr",
        "1e-2",
        "--freeze-blocks",
        "11",
    ];
    let full = json_of(&finetune_default(tmp.path(), &data, "full", &flags));
    assert_eq!(full["averaged_epochs"], 4);

    // SIGKILL once the second epoch (the first averaged one) is committed, then --resume.
    let mut child = finetune_command(tmp.path(), &data, "cut", &flags)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let latest = tmp.path().join("train/runs/finetune/cut/latest.json");
    let t = Instant::now();
    let killed_mid_run = loop {
        let done = std::fs::read_to_string(&latest)
            .ok()
            .and_then(|s| serde_json::from_str::<Value>(&s).ok())
            .and_then(|v| v["epochs_done"].as_u64());
        if done >= Some(2) {
            child.kill().unwrap();
            break true;
        }
        if child.try_wait().unwrap().is_some() {
            break false;
        }
        assert!(t.elapsed() < Duration::from_secs(120), "no checkpoint appeared");
        std::thread::sleep(Duration::from_millis(2));
    };
    child.wait().unwrap();
    assert!(killed_mid_run, "the run finished before it could be killed");
    assert!(!tmp.path().join("cut/model.mpk").exists());
    let mut resume = flags.to_vec();
    resume.push("--resume");
    let cut = json_of(&finetune_default(tmp.path(), &data, "cut", &resume));
    assert_eq!(cut["averaged_epochs"], 4);
    assert_eq!(cut["metrics"]["confusion"], full["metrics"]["confusion"]);
    assert_eq!(cut["last_epoch_accuracy"], full["last_epoch_accuracy"]);
    let model = |out: &str| std::fs::read(tmp.path().join(out).join("embedder.mpk")).unwrap();
    assert!(
        model("cut") == model("full"),
        "resumed average differs from the uninterrupted one"
    );
    // Resuming the same run with another learning rate is refused, naming the flag.
    let mut changed = resume.clone();
    changed.extend(["--lr", "5e-4"]);
    let out = finetune_command(tmp.path(), &data, "cut", &changed)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--lr was 0.0003 and is now 0.0005"), "{err}");
}

#[test]
fn average_writes_the_mean_of_fine_tuned_folders_and_scores_it() {
    use burn_ndarray::{NdArray, NdArrayDevice};
    use paca_fer::model::embed::MobileNetV2Embedder;
    type B = NdArray<f32>;

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("fer");
    if mini_ferplus(&data, 2).is_none() {
        return;
    }
    // Two fine-tunings of the default model that differ only in their seed.
    for (out, seed) in [("a", "1"), ("b", "2")] {
        let flags = ["--seed", seed, "--embed-lr", "1e-2", "--freeze-blocks", "11"];
        json_of(&finetune_default(tmp.path(), &data, out, &flags));
    }
    let soup = json_of(
        &paca(tmp.path())
            .args(["average", "a", "b", "--out", "soup", "--data"])
            .arg(&data)
            .output()
            .unwrap(),
    );
    assert_eq!(soup["models"], 2);
    let device = NdArrayDevice::Cpu;
    let trunk = |out: &str| {
        MobileNetV2Embedder::<B>::load(&tmp.path().join(out).join("embedder.mpk"), &device).unwrap()
    };
    let (a, b, mean) = (trunk("a"), trunk("b"), trunk("soup"));
    for block in [11, 12] {
        let (wa, wb) = (
            a.depthwise_weight(block).unwrap(),
            b.depthwise_weight(block).unwrap(),
        );
        let apart: f32 = (wa.clone() - wb.clone()).abs().max().into_scalar();
        assert!(
            apart > 1e-4,
            "block {block}: the two runs did not differ ({apart})"
        );
        let off: f32 = (mean.depthwise_weight(block).unwrap() - (wa + wb) / 2.0)
            .abs()
            .max()
            .into_scalar();
        assert!(off < 1e-6, "block {block}: soup off the mean by {off}");
    }
    // Its recorded metrics are what `eval` measures on the written folder.
    let eval = eval_one_view(tmp.path(), "soup", &data);
    assert_eq!(eval["confusion"], soup["metrics"]["confusion"]);
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("soup/meta.json")).unwrap()).unwrap();
    assert_eq!(meta["metrics"]["confusion"], eval["confusion"]);
    assert_eq!(meta["embedder_weights"], "embedder.mpk");

    // A folder that is not a fine-tuned one is refused by name.
    let bad = paca(tmp.path())
        .args(["average", "a", "nowhere", "--out", "x", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("nowhere") && err.contains("meta.json"), "{err}");
}

/// A small, randomly initialised hard patch-to-cluster model (k-means, k = 2) on the shipped
/// ImageNet MobileNetV2 trunk, written to `dir`.
fn hard_kmeans_model(dir: &Path) {
    use paca_fer::backend::Cpu;
    use paca_fer::model::embed::EmbedderKind;
    use paca_fer::model::{Assignment, AttentionKind, ModelConfig, ModelMeta, Vit, save_model};
    let cfg = ModelConfig::new(96)
        .with_d_model(32)
        .with_heads(2)
        .with_depth(2)
        .with_attention(AttentionKind::PatchToCluster {
            clusters: 2,
            assignment: Assignment::Hard,
        });
    let model: Vit<Cpu> = cfg.init(&Default::default()).unwrap();
    save_model(dir, &model, &cfg).unwrap();
    ModelMeta {
        embedder: EmbedderKind::MobileNetV2,
        method: paca_fer::cluster::Method::KMeans.into(),
        k: 2,
        cluster_seed: 0,
        metrics: paca_fer::metrics::compute(&[0, 1], &[0, 1]),
        data: "none (random weights)".into(),
        embedder_weights: Some(imagenet().display().to_string()),
        flip_tta: false,
        zoom_tta: false,
    }
    .save(dir)
    .unwrap();
}

#[test]
fn a_hard_cluster_model_fine_tunes_with_clusters_recomputed_from_its_trunk() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("fer");
    if mini_ferplus(&data, 2).is_none() {
        return;
    }
    let init = tmp.path().join("km");
    hard_kmeans_model(&init);
    let out = paca(tmp.path())
        .args([
            "finetune",
            "--batch-size",
            "8",
            "--warmup-steps",
            "1",
            "--epochs",
            "1",
        ])
        .arg("--init")
        .arg(&init)
        .args(["--out", "ft", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let v = json_of(&out);
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("ft/meta.json")).unwrap()).unwrap();
    assert_eq!(
        (meta["method"].as_str(), meta["k"].as_u64()),
        (Some("kmeans"), Some(2))
    );
    assert_eq!(meta["embedder_weights"], "embedder.mpk");
    // Fine-tuning scored the valid faces with clusters of its trained trunk's features; `eval`
    // clusters the features of the saved trunk on the runtime's path: the same predictions. Had
    // training kept clusters from the starting (ImageNet) trunk, the two would not agree.
    let eval = eval_one_view(tmp.path(), "ft", &data);
    assert_eq!(eval["images"], 16);
    assert_eq!(eval["confusion"], v["metrics"]["confusion"]);
}
