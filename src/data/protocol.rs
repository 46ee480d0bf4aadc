//! The study's protocol for unsplit data: a balanced subsample of N images per class, then a
//! stratified train/test split, both from one seed.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::Sample;
use crate::labels::Emotion;

/// Takes up to `per_class` samples of each class (all of a smaller class, with a warning) and splits
/// each class `test_fraction` / rest into (train, test); deterministic for a seed, sorted by path.
pub fn balanced_split(
    samples: &[Sample],
    per_class: usize,
    test_fraction: f64,
    seed: u64,
) -> (Vec<Sample>, Vec<Sample>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for class in Emotion::ALL {
        let mut of_class: Vec<&Sample> = samples.iter().filter(|s| s.label == class).collect();
        if of_class.is_empty() {
            continue;
        }
        of_class.sort();
        of_class.shuffle(&mut rng);
        if of_class.len() < per_class {
            log::warn!(
                "class {class} has {} images, fewer than the {per_class} asked for: using all",
                of_class.len()
            );
        }
        of_class.truncate(per_class);
        let n_test = ((of_class.len() as f64) * test_fraction).round() as usize;
        let (te, tr) = of_class.split_at(n_test.min(of_class.len()));
        test.extend(te.iter().map(|s| (*s).clone()));
        train.extend(tr.iter().map(|s| (*s).clone()));
    }
    train.sort();
    test.sort();
    (train, test)
}
