//! Finding labelled images on disk in each supported layout.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;

use super::DataError;
use crate::labels::Emotion;

/// Names of split folders recognised in the FER+ layout.
const SPLIT_NAMES: &[&str] = &["train", "valid", "val", "test"];

/// How a dataset is laid out on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Detect from the folder structure.
    Auto,
    /// `<root>/{train,valid,test}/<class>/*.png`.
    FerPlus,
    /// `<root>/<class>/*.jpg` with an optional `labels.csv` that takes precedence over folders.
    AffectNet,
    /// `<root>/<class>/*`.
    ImageFolder,
}

impl FromStr for Layout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Layout::Auto),
            "ferplus" => Ok(Layout::FerPlus),
            "affectnet" => Ok(Layout::AffectNet),
            "imagefolder" => Ok(Layout::ImageFolder),
            other => Err(format!(
                "unknown layout '{other}' (expected auto, ferplus, affectnet or imagefolder)"
            )),
        }
    }
}

/// One labelled image file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Sample {
    /// Path of the image file.
    pub path: PathBuf,
    /// Its emotion label.
    pub label: Emotion,
}

/// A dataset found on disk: its splits (FER+ has `train`/`valid`/`test`; unsplit layouts have one
/// split called `all`), each a sorted list of samples.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Folder the dataset was read from.
    pub root: PathBuf,
    /// The layout it was read as (never `Auto`).
    pub layout: Layout,
    /// Split name → samples, sorted by path for reproducibility.
    pub splits: BTreeMap<String, Vec<Sample>>,
}

/// True for file names with an image extension we decode (png, jpg, jpeg, bmp), hidden files excluded.
pub fn is_image_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.starts_with('.') {
        return false;
    }
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref(),
        Some("png" | "jpg" | "jpeg" | "bmp")
    )
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let io = |source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        out.push(entry.map_err(io)?.path());
    }
    out.sort();
    Ok(out)
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    Ok(read_dir_sorted(dir)?
        .into_iter()
        .filter(|p| {
            p.is_dir()
                && !p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or(".")
                    .starts_with('.')
        })
        .collect())
}

/// Reads `<dir>/<class>/<images>`; every class folder must name an emotion.
fn read_class_folders(dir: &Path) -> Result<Vec<Sample>, DataError> {
    let mut samples = Vec::new();
    for class_dir in subdirs(dir)? {
        let name = class_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let label = Emotion::from_alias(&name).ok_or_else(|| DataError::UnknownClass {
            name: name.clone(),
            path: class_dir.clone(),
        })?;
        for f in read_dir_sorted(&class_dir)? {
            if f.is_file() && is_image_file(&f) {
                samples.push(Sample { path: f, label });
            }
        }
    }
    Ok(samples)
}

impl Dataset {
    /// Finds the dataset at `root` in `layout` (`Auto` detects: split folders → FER+, a `labels.csv`
    /// → AffectNet, class folders → ImageFolder).
    pub fn open(root: &Path, layout: Layout) -> Result<Dataset, DataError> {
        if !root.exists() {
            return Err(DataError::NotFound(root.to_path_buf()));
        }
        if !root.is_dir() {
            return Err(DataError::NotADirectory(root.to_path_buf()));
        }
        let layout = match layout {
            Layout::Auto => detect(root)?,
            l => l,
        };
        let mut splits = BTreeMap::new();
        match layout {
            Layout::FerPlus => {
                for d in subdirs(root)? {
                    let name = d.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                    if SPLIT_NAMES.contains(&name) {
                        let split = if name == "val" { "valid" } else { name };
                        splits.insert(split.to_string(), read_class_folders(&d)?);
                    }
                }
            }
            Layout::AffectNet => {
                let csv = root.join("labels.csv");
                let samples = if csv.is_file() {
                    read_labels_csv(root, &csv)?
                } else {
                    read_class_folders(root)?
                };
                splits.insert("all".to_string(), samples);
            }
            Layout::ImageFolder => {
                splits.insert("all".to_string(), read_class_folders(root)?);
            }
            Layout::Auto => unreachable!("resolved above"),
        }
        splits.retain(|_, v| !v.is_empty());
        if splits.is_empty() {
            return Err(DataError::Empty(root.to_path_buf()));
        }
        for v in splits.values_mut() {
            v.sort();
        }
        Ok(Dataset {
            root: root.to_path_buf(),
            layout,
            splits,
        })
    }

    /// The samples of `split`, or an error listing the splits present.
    pub fn split(&self, split: &str) -> Result<&[Sample], DataError> {
        let key = if split == "val" { "valid" } else { split };
        self.splits
            .get(key)
            .map(|v| v.as_slice())
            .ok_or_else(|| DataError::NoSplit {
                root: self.root.clone(),
                split: split.to_string(),
                available: self.splits.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }

    /// Per-split, per-class counts (all eight classes listed, zeros included).
    pub fn counts(&self) -> BTreeMap<String, BTreeMap<String, usize>> {
        self.splits
            .iter()
            .map(|(split, samples)| {
                let mut per: BTreeMap<String, usize> =
                    Emotion::ALL.iter().map(|e| (e.name().to_string(), 0)).collect();
                for s in samples {
                    *per.entry(s.label.name().to_string()).or_default() += 1;
                }
                (split.clone(), per)
            })
            .collect()
    }
}

fn detect(root: &Path) -> Result<Layout, DataError> {
    let dirs = subdirs(root)?;
    let has_split = dirs
        .iter()
        .any(|d| SPLIT_NAMES.contains(&d.file_name().and_then(|n| n.to_str()).unwrap_or_default()));
    if has_split {
        Ok(Layout::FerPlus)
    } else if root.join("labels.csv").is_file() {
        Ok(Layout::AffectNet)
    } else {
        Ok(Layout::ImageFolder)
    }
}

/// Reads AffectNet-Kaggle `labels.csv`: a header naming a path column (`pth`, `path`, `file`, `image`)
/// and a label column (`label`, `expression`, `emotion`); paths are relative to `root`.
fn read_labels_csv(root: &Path, csv: &Path) -> Result<Vec<Sample>, DataError> {
    let text = fs::read_to_string(csv).map_err(|source| DataError::Io {
        path: csv.to_path_buf(),
        source,
    })?;
    let mut lines = text.lines().enumerate();
    let err = |line: usize, message: String| DataError::Csv {
        path: csv.to_path_buf(),
        line,
        message,
    };
    let (_, header) = lines
        .next()
        .ok_or_else(|| err(1, "empty file (expected a header row)".into()))?;
    let cols: Vec<String> = split_csv(header)
        .into_iter()
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    let find = |names: &[&str]| cols.iter().position(|c| names.contains(&c.as_str()));
    let pcol = find(&["pth", "path", "file", "filename", "image"]).ok_or_else(|| {
        err(
            1,
            format!("no path column in header {cols:?} (expected pth, path, file or image)"),
        )
    })?;
    let lcol = find(&["label", "expression", "emotion", "class"]).ok_or_else(|| {
        err(
            1,
            format!("no label column in header {cols:?} (expected label, expression or emotion)"),
        )
    })?;
    let mut out = Vec::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let f = split_csv(line);
        let (Some(p), Some(l)) = (f.get(pcol), f.get(lcol)) else {
            return Err(err(
                i + 1,
                format!("expected at least {} columns", pcol.max(lcol) + 1),
            ));
        };
        let label = Emotion::from_alias(l).ok_or_else(|| DataError::UnknownClass {
            name: l.trim().to_string(),
            path: csv.to_path_buf(),
        })?;
        let path = root.join(p.trim());
        if is_image_file(&path) {
            out.push(Sample { path, label });
        }
    }
    Ok(out)
}

/// Splits one CSV line on commas, honouring double quotes.
fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_split_honours_quotes() {
        assert_eq!(split_csv(r#"a,"(0, 0)",b"#), vec!["a", "(0, 0)", "b"]);
    }

    #[test]
    fn image_extensions() {
        assert!(is_image_file(Path::new("a/b.PNG")));
        assert!(is_image_file(Path::new("a/b.jpeg")));
        assert!(!is_image_file(Path::new("a/labels.csv")));
        assert!(!is_image_file(Path::new("a/.hidden.png")));
    }
}
