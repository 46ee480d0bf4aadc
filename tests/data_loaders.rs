//! Dataset loaders on real FER+ data and on generated folders, including bad input.

mod common;

use std::collections::HashSet;

use paca_fer::data::{DataError, Dataset, Layout, balanced_split, load_faces};
use paca_fer::labels::Emotion;

#[test]
fn ferplus_counts_match_the_published_split() {
    let Some(root) = common::ferplus() else { return };
    let ds = Dataset::open(&root, Layout::Auto).unwrap();
    assert_eq!(ds.layout, Layout::FerPlus);
    assert_eq!(ds.split("train").unwrap().len(), 25_045);
    assert_eq!(ds.split("valid").unwrap().len(), 3_191);
    let counts = ds.counts();
    let train = &counts["train"];
    let expected = [
        ("anger", 2098),
        ("contempt", 120),
        ("disgust", 116),
        ("fear", 536),
        ("happy", 7284),
        ("neutral", 8733),
        ("sad", 3022),
        ("surprise", 3136),
    ];
    for (class, n) in expected {
        assert_eq!(train[class], n, "train/{class}");
    }
    assert!(matches!(ds.split("test"), Err(DataError::NoSplit { .. })));
}

#[test]
fn balanced_split_is_exact_disjoint_and_seeded() {
    let dir = tempfile::tempdir().unwrap();
    common::make_image_folder(
        dir.path(),
        &[("angry", 30), ("happiness", 50), ("sad", 12), ("neutral", 20)],
    );
    let ds = Dataset::open(dir.path(), Layout::Auto).unwrap();
    assert_eq!(ds.layout, Layout::ImageFolder);
    let all = ds.split("all").unwrap();
    assert_eq!(all.len(), 112);

    let (train, test) = balanced_split(all, 20, 0.25, 7);
    let count = |v: &[paca_fer::data::Sample], e: Emotion| v.iter().filter(|s| s.label == e).count();
    // 20 per class (sad has only 12: all of them), 25 % of each class held out.
    for (e, tr, te) in [
        (Emotion::Anger, 15, 5),
        (Emotion::Happy, 15, 5),
        (Emotion::Sad, 9, 3),
        (Emotion::Neutral, 15, 5),
    ] {
        assert_eq!(count(&train, e), tr, "train {e}");
        assert_eq!(count(&test, e), te, "test {e}");
    }
    let train_paths: HashSet<_> = train.iter().map(|s| &s.path).collect();
    assert!(
        test.iter().all(|s| !train_paths.contains(&s.path)),
        "an image is in both splits"
    );

    let (train2, test2) = balanced_split(all, 20, 0.25, 7);
    assert_eq!(
        (train.clone(), test.clone()),
        (train2, test2),
        "same seed must give the same split"
    );
    let (train3, _) = balanced_split(all, 20, 0.25, 8);
    assert_ne!(train, train3, "another seed should give another split");
}

#[test]
fn affectnet_labels_csv_takes_precedence_over_folders() {
    let dir = tempfile::tempdir().unwrap();
    common::make_image_folder(dir.path(), &[("anger", 2), ("happy", 2)]);
    std::fs::write(
        dir.path().join("labels.csv"),
        ",pth,label,relFCs\n0,anger/img_0000.png,surprise,0.8\n1,anger/img_0001.png,anger,0.9\n2,happy/img_0000.png,happy,0.7\n",
    )
    .unwrap();
    let ds = Dataset::open(dir.path(), Layout::Auto).unwrap();
    assert_eq!(ds.layout, Layout::AffectNet);
    let all = ds.split("all").unwrap();
    assert_eq!(all.len(), 3);
    let relabelled = all
        .iter()
        .find(|s| s.path.ends_with("anger/img_0000.png"))
        .unwrap();
    assert_eq!(relabelled.label, Emotion::Surprise);
}

#[test]
fn unknown_class_folder_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    common::make_image_folder(dir.path(), &[("happy", 1), ("bored", 1)]);
    let err = Dataset::open(dir.path(), Layout::Auto).unwrap_err();
    assert!(
        matches!(&err, DataError::UnknownClass { name, .. } if name == "bored"),
        "{err}"
    );
    assert!(err.to_string().contains("bored"));
}

#[test]
fn empty_and_missing_paths_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Dataset::open(dir.path(), Layout::Auto),
        Err(DataError::Empty(_))
    ));
    let missing = dir.path().join("nope");
    let err = Dataset::open(&missing, Layout::Auto).unwrap_err();
    assert!(matches!(err, DataError::NotFound(_)));
    assert!(err.to_string().contains("nope"));
}

#[test]
fn truncated_png_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    common::make_image_folder(dir.path(), &[("fear", 3)]);
    let victim = dir.path().join("fear/img_0001.png");
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() / 2]).unwrap();
    let ds = Dataset::open(dir.path(), Layout::Auto).unwrap();
    let (faces, report) = load_faces(ds.split("all").unwrap(), 96);
    assert_eq!(faces.len(), 2);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].0, victim);
    assert!(
        faces
            .iter()
            .all(|(img, e)| img.dimensions() == (96, 96) && *e == Emotion::Fear)
    );
}

#[test]
fn ferplus_vote_distributions_agree_with_the_majority_label_folders() {
    // Every FER+ face's folder is its majority vote: the vote distribution read from
    // votes/*_label.csv must peak at that class whenever its peak is unique.
    let Some(root) = common::ferplus() else { return };
    let votes = paca_fer::data::read_votes_dir(&root.join("votes")).unwrap();
    let ds = Dataset::open(&root, Layout::FerPlus).unwrap();
    let (mut checked, mut listed) = (0, 0);
    for split in ["train", "valid"] {
        for s in ds.split(split).unwrap() {
            let name = s.path.file_name().unwrap().to_str().unwrap();
            let Some(d) = votes.get(name) else { continue };
            listed += 1;
            assert!((d.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{name}: {d:?}");
            let peak = d.iter().cloned().fold(0.0f32, f32::max);
            if d.iter().filter(|&&v| v == peak).count() == 1 {
                assert_eq!(
                    paca_fer::labels::argmax(d),
                    s.label.index(),
                    "{name} in {split}/{}: {d:?}",
                    s.label.name()
                );
                checked += 1;
            }
        }
    }
    assert_eq!(listed, 25_045 + 3_191, "every FER+ face has votes");
    assert!(checked > 25_000, "only {checked} faces had a unique majority");
}

#[test]
fn a_malformed_vote_file_is_reported_with_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("train_label.csv");
    std::fs::write(
        &f,
        "fer1.png,\"(0, 0, 48, 48)\",4,0,0,1,3,2,0,0,0,0\nfer2.png,\"(0, 0, 48, 48)\",4,0,x\n",
    )
    .unwrap();
    match paca_fer::data::read_votes_dir(tmp.path()) {
        Err(DataError::Csv { path, line, .. }) => {
            assert_eq!(path, f);
            assert_eq!(line, 2);
        }
        other => panic!("expected a CSV error on line 2, got {other:?}"),
    }
    assert!(matches!(
        paca_fer::data::read_votes_dir(&tmp.path().join("none")),
        Err(DataError::Io { .. })
    ));
}
