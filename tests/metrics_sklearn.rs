//! Metrics against scikit-learn's outputs (fixture made by scripts/make_metrics_fixtures.py).

use paca_fer::labels::Emotion;
use paca_fer::metrics::compute;

#[test]
fn metrics_match_scikit_learn() {
    let text = include_str!("fixtures/metrics/cases.json");
    let cases: Vec<serde_json::Value> = serde_json::from_str(text).unwrap();
    assert!(cases.len() >= 5);
    for (i, c) in cases.iter().enumerate() {
        let vec = |k: &str| -> Vec<usize> {
            c[k].as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect()
        };
        let m = compute(&vec("truth"), &vec("pred"));
        assert!(
            (m.accuracy - c["accuracy"].as_f64().unwrap()).abs() < 1e-12,
            "case {i} accuracy"
        );
        assert!(
            (m.macro_f1 - c["macro_f1"].as_f64().unwrap()).abs() < 1e-12,
            "case {i} macro-F1"
        );
        let confusion: Vec<Vec<u64>> = serde_json::from_value(c["confusion"].clone()).unwrap();
        assert_eq!(m.confusion, confusion, "case {i} confusion");
        let recall = c["recall"].as_object().unwrap();
        assert_eq!(m.per_class.len(), recall.len(), "case {i} classes with support");
        for (cls, r) in recall {
            let name = Emotion::from_index(cls.parse().unwrap()).unwrap().name();
            assert!(
                (m.per_class[name] - r.as_f64().unwrap()).abs() < 1e-12,
                "case {i} recall {name}"
            );
        }
    }
}
