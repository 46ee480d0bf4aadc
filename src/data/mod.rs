//! Datasets: find labelled face images in the supported layouts (FER+, AffectNet Kaggle, generic
//! ImageFolder), apply the study's balanced protocol, and decode images into 96×96 RGB faces.

mod layout;
mod load;
mod protocol;
mod votes;

pub use layout::{Dataset, Layout, Sample, is_image_file};
pub use load::{LoadReport, MAX_IMAGE_SIDE, decode_face, decode_image, decode_limits, load_face, load_faces};
pub use protocol::balanced_split;
pub use votes::{VoteDistribution, one_hot, read_votes, read_votes_dir};

use std::path::PathBuf;

/// Error finding or reading a dataset; each names the path and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The dataset root does not exist.
    #[error("dataset path {0} does not exist")]
    NotFound(PathBuf),
    /// The dataset root is a file.
    #[error("dataset path {0} is not a directory (expected a folder of class folders)")]
    NotADirectory(PathBuf),
    /// No images were found where the layout expects them.
    #[error(
        "no images found under {0} (expected <class>/*.png|jpg folders, optionally under train/valid/test)"
    )]
    Empty(PathBuf),
    /// A class folder or label names no known emotion.
    #[error(
        "unknown class '{name}' at {path} (expected anger, contempt, disgust, fear, happy, neutral, sad, surprise or an alias such as angry, happiness, sadness)"
    )]
    UnknownClass {
        /// The class name found.
        name: String,
        /// Where it was found.
        path: PathBuf,
    },
    /// labels.csv is malformed.
    #[error("{path}, line {line}: {message}")]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        message: String,
    },
    /// A directory could not be listed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// An image could not be decoded.
    #[error("cannot decode image {path}: {message}")]
    Decode {
        /// The image file.
        path: PathBuf,
        /// Decoder message.
        message: String,
    },
    /// A split was asked for that the dataset does not have.
    #[error("dataset {root} has no split '{split}' (it has: {available})")]
    NoSplit {
        /// Dataset root.
        root: PathBuf,
        /// Requested split.
        split: String,
        /// Splits present.
        available: String,
    },
}
