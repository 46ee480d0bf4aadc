//! FER+ annotator votes (`<root>/votes/*_label.csv`): each face's distribution over the eight
//! emotions, used as soft training targets (the FER+ paper's cross-entropy scheme) instead of
//! the majority label alone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::DataError;
use crate::labels::{Emotion, NUM_CLASSES};

/// One face's share of annotator votes per class, in logit order; sums to 1.
pub type VoteDistribution = [f32; NUM_CLASSES];

/// The emotion of each vote column of a FER+ label file, in file order (after the name and the
/// face box); the last two columns, "unknown" and "not a face", belong to no class.
const COLUMNS: [Option<Emotion>; 10] = [
    Some(Emotion::Neutral),
    Some(Emotion::Happy),
    Some(Emotion::Surprise),
    Some(Emotion::Sad),
    Some(Emotion::Anger),
    Some(Emotion::Disgust),
    Some(Emotion::Fear),
    Some(Emotion::Contempt),
    None,
    None,
];

/// Parses one line `name,"(x, y, w, h)",v0,…,v9` into the file name and its vote distribution
/// (`None` when no annotator chose an emotion).
fn parse_line(line: &str) -> Result<Option<(String, VoteDistribution)>, String> {
    let (name, rest) = line
        .split_once(',')
        .ok_or("expected `name,\"(box)\",10 vote counts`")?;
    let rest = match rest.strip_prefix('"') {
        Some(quoted) => quoted
            .split_once("\",")
            .map(|(_, counts)| counts)
            .ok_or("unterminated quoted face box")?,
        None => rest
            .split_once(',')
            .map(|(_, c)| c)
            .ok_or("missing vote counts")?,
    };
    let counts: Vec<&str> = rest.split(',').map(str::trim).collect();
    if counts.len() != COLUMNS.len() {
        return Err(format!(
            "expected {} vote counts, found {}",
            COLUMNS.len(),
            counts.len()
        ));
    }
    let mut dist = [0f32; NUM_CLASSES];
    for (text, column) in counts.iter().zip(COLUMNS) {
        let v: u32 = text
            .parse()
            .map_err(|_| format!("vote count '{text}' is not a whole number"))?;
        if let Some(e) = column {
            dist[e.index()] += v as f32;
        }
    }
    let total: f32 = dist.iter().sum();
    if total == 0.0 {
        return Ok(None);
    }
    dist.iter_mut().for_each(|d| *d /= total);
    Ok(Some((name.trim().to_string(), dist)))
}

/// Reads one FER+ label file into `file name → distribution`; faces with no emotion vote are left out.
pub fn read_votes(path: &Path) -> Result<HashMap<String, VoteDistribution>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut votes = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line) {
            Ok(Some((name, dist))) => {
                votes.insert(name, dist);
            }
            Ok(None) => {}
            Err(message) => {
                return Err(DataError::Csv {
                    path: path.to_path_buf(),
                    line: i + 1,
                    message,
                });
            }
        }
    }
    Ok(votes)
}

/// Reads every `*_label.csv` in a FER+ `votes/` folder (file names are unique across splits).
pub fn read_votes_dir(dir: &Path) -> Result<HashMap<String, VoteDistribution>, DataError> {
    let entries = std::fs::read_dir(dir).map_err(|source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_str().is_some_and(|s| s.ends_with("_label.csv")))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(DataError::Empty(dir.to_path_buf()));
    }
    let mut all = HashMap::new();
    for f in files {
        all.extend(read_votes(&f)?);
    }
    Ok(all)
}

/// The distribution that puts all mass on `label` (for faces without votes).
pub fn one_hot(label: Emotion) -> VoteDistribution {
    let mut d = [0f32; NUM_CLASSES];
    d[label.index()] = 1.0;
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_maps_ferplus_columns_to_logit_order() {
        // neutral 4, surprise 1, sadness 3, anger 2 (out of 10), unknown/NF ignored.
        let (name, d) = parse_line("fer0000000.png,\"(0, 0, 48, 48)\",4,0,1,3,2,0,0,0,1,0")
            .unwrap()
            .unwrap();
        assert_eq!(name, "fer0000000.png");
        let total = 4.0 + 1.0 + 3.0 + 2.0;
        assert_eq!(d[Emotion::Neutral.index()], 4.0 / total);
        assert_eq!(d[Emotion::Surprise.index()], 1.0 / total);
        assert_eq!(d[Emotion::Sad.index()], 3.0 / total);
        assert_eq!(d[Emotion::Anger.index()], 2.0 / total);
        assert_eq!(d[Emotion::Happy.index()], 0.0);
    }

    #[test]
    fn bad_lines_are_errors_and_vote_free_faces_are_skipped() {
        assert!(parse_line("fer1.png,\"(0, 0, 48, 48)\",1,2,3").is_err());
        assert!(parse_line("fer1.png,\"(0, 0, 48, 48)\",1,2,3,x,0,0,0,0,0,0").is_err());
        assert!(parse_line("fer1.png,\"(0, 0, 48, 48,1,2").is_err());
        assert_eq!(
            parse_line("fer1.png,\"(0, 0, 48, 48)\",0,0,0,0,0,0,0,0,3,7").unwrap(),
            None
        );
    }
}
