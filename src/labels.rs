//! The eight canonical emotion classes (AffectNet's and FER+'s) and the aliases datasets use for them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One of the eight emotion classes, in the canonical (alphabetical) order used for logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Emotion {
    /// Anger ("angry").
    Anger,
    /// Contempt.
    Contempt,
    /// Disgust ("disgusted").
    Disgust,
    /// Fear ("fearful", "scared").
    Fear,
    /// Happiness ("happiness", "happy", "joy").
    Happy,
    /// Neutral.
    Neutral,
    /// Sadness ("sadness", "sad").
    Sad,
    /// Surprise ("surprised").
    Surprise,
}

/// Number of emotion classes: the width of every logit vector.
pub const NUM_CLASSES: usize = 8;

/// Index of the largest score (the first one on ties; 0 for an empty slice): the predicted class.
pub fn argmax(scores: &[f32]) -> usize {
    (0..scores.len()).fold(0, |b, c| if scores[c] > scores[b] { c } else { b })
}

impl Emotion {
    /// All classes in logit order.
    pub const ALL: [Emotion; NUM_CLASSES] = [
        Emotion::Anger,
        Emotion::Contempt,
        Emotion::Disgust,
        Emotion::Fear,
        Emotion::Happy,
        Emotion::Neutral,
        Emotion::Sad,
        Emotion::Surprise,
    ];

    /// Position of this class in the logit vector.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Class at logit position `i`, if `i < 8`.
    pub fn from_index(i: usize) -> Option<Emotion> {
        Self::ALL.get(i).copied()
    }

    /// Canonical lowercase name (the FER+ folder name).
    pub fn name(self) -> &'static str {
        match self {
            Emotion::Anger => "anger",
            Emotion::Contempt => "contempt",
            Emotion::Disgust => "disgust",
            Emotion::Fear => "fear",
            Emotion::Happy => "happy",
            Emotion::Neutral => "neutral",
            Emotion::Sad => "sad",
            Emotion::Surprise => "surprise",
        }
    }

    /// Parses a dataset's class name, accepting the usual aliases; `None` if it is no emotion we know.
    pub fn from_alias(raw: &str) -> Option<Emotion> {
        let s = raw.trim().to_ascii_lowercase();
        let e = match s.as_str() {
            "anger" | "angry" | "0_anger" => Emotion::Anger,
            "contempt" | "contemptuous" => Emotion::Contempt,
            "disgust" | "disgusted" | "disgusting" => Emotion::Disgust,
            "fear" | "fearful" | "scared" | "afraid" => Emotion::Fear,
            "happy" | "happiness" | "joy" | "happily" => Emotion::Happy,
            "neutral" | "neutrality" | "calm" => Emotion::Neutral,
            "sad" | "sadness" | "sorrow" => Emotion::Sad,
            "surprise" | "surprised" | "suprise" => Emotion::Surprise,
            _ => return None,
        };
        Some(e)
    }
}

impl fmt::Display for Emotion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for a class name that maps onto none of the eight emotions.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown emotion class '{0}' (expected one of anger, contempt, disgust, fear, happy, neutral, sad, surprise or an alias such as angry, happiness, sadness)"
)]
pub struct UnknownEmotion(pub String);

impl FromStr for Emotion {
    type Err = UnknownEmotion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Emotion::from_alias(s).ok_or_else(|| UnknownEmotion(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_map_to_canonical_classes() {
        assert_eq!(Emotion::from_alias("Angry"), Some(Emotion::Anger));
        assert_eq!(Emotion::from_alias("happiness"), Some(Emotion::Happy));
        assert_eq!(Emotion::from_alias(" SADNESS "), Some(Emotion::Sad));
        assert_eq!(Emotion::from_alias("unknown"), None);
        assert_eq!(Emotion::from_alias("not-a-face"), None);
    }

    #[test]
    fn index_round_trips_in_alphabetical_order() {
        for (i, e) in Emotion::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
            assert_eq!(Emotion::from_index(i), Some(*e));
            assert_eq!(e.name().parse::<Emotion>().unwrap(), *e);
        }
        let mut names: Vec<_> = Emotion::ALL.iter().map(|e| e.name()).collect();
        let sorted = {
            let mut s = names.clone();
            s.sort();
            s
        };
        assert_eq!(names, sorted);
        names.dedup();
        assert_eq!(names.len(), NUM_CLASSES);
        assert_eq!(Emotion::from_index(8), None);
    }
}
