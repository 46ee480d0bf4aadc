//! How a model groups an image's 36 patch tokens into the keys and values its attention reads:
//! every patch on its own (the patch-to-patch control), a learned soft assignment, or a hard
//! per-image clustering. One enum for the sweep file, the config, a model folder's `meta.json`
//! and the results tables; it reads and prints as the names users type (`none`, `learned`,
//! `kmeans`, `agglomerative:average`, …).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::config::{Assignment, AttentionKind};
use crate::cluster::Method;

/// Patches per image (the 6 × 6 grid): the key count of patch-to-patch attention.
const PATCHES: usize = crate::cluster::PATCHES;

/// How attention's keys and values are formed from an image's patches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Grouping {
    /// Plain patch-to-patch attention, every patch its own key (`none`; the study's control, and
    /// the shipped default model's grouping).
    #[default]
    PatchToPatch,
    /// Soft assignment learned with the model (`learned`; PaCa-ViT's clustering head).
    Learned,
    /// Hard per-image clustering of the patch embeddings by `Method` (patch-to-cluster attention).
    Clustered(Method),
}

/// Why a grouping name could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not a patch grouping: expected none (patch-to-patch), learned (soft assignment), kmeans, agglomerative[:ward|average|complete], spectral[:rbf[=GAMMA]|nn[=N]], gmm or dbscan[:eps=E][,min_samples=M]"
)]
pub struct ParseGroupingError(pub String);

impl Grouping {
    /// The clustering method when the grouping is a hard per-image clustering.
    pub fn method(&self) -> Option<&Method> {
        match self {
            Grouping::Clustered(m) => Some(m),
            _ => None,
        }
    }

    /// Whether each image's patches must be clustered before the model runs.
    pub fn is_clustered(&self) -> bool {
        matches!(self, Grouping::Clustered(_))
    }

    /// Key/value slots the model's attention has for a requested `k`: 36 for patch-to-patch.
    pub fn slots(&self, k: usize) -> usize {
        match self {
            Grouping::PatchToPatch => PATCHES,
            _ => k,
        }
    }

    /// The attention this grouping trains, with `clusters` key/value slots.
    pub fn attention(&self, clusters: usize) -> AttentionKind {
        match self {
            Grouping::PatchToPatch => AttentionKind::PatchToPatch,
            Grouping::Learned => AttentionKind::PatchToCluster {
                clusters,
                assignment: Assignment::Soft,
            },
            Grouping::Clustered(_) => AttentionKind::PatchToCluster {
                clusters,
                assignment: Assignment::Hard,
            },
        }
    }

    /// Name of a sweep cell of this grouping at `k`, usable as a folder name: `kmeans-k2`,
    /// `agglomerative_average-k4`, `none-k36`.
    pub fn cell_name(&self, k: usize) -> String {
        format!("{}-k{k}", self.to_string().replace(':', "_"))
    }

    /// The family name without parameters (`kmeans`, `spectral`, `none`, …), for grouping rows.
    pub fn family(&self) -> &'static str {
        match self {
            Grouping::PatchToPatch => "none",
            Grouping::Learned => "learned",
            Grouping::Clustered(m) => m.family(),
        }
    }
}

impl fmt::Display for Grouping {
    /// Prints the shortest name that parses back to the same grouping: a method with its default
    /// parameters prints as its family (`agglomerative`, not `agglomerative:ward`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grouping::Clustered(m) if m.family().parse::<Method>().as_ref() != Ok(m) => write!(f, "{m}"),
            g => f.write_str(g.family()),
        }
    }
}

impl FromStr for Grouping {
    type Err = ParseGroupingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Grouping::PatchToPatch),
            "learned" => Ok(Grouping::Learned),
            other => other
                .parse()
                .map(Grouping::Clustered)
                .map_err(|_| ParseGroupingError(s.to_string())),
        }
    }
}

impl TryFrom<String> for Grouping {
    type Error = ParseGroupingError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Grouping> for String {
    fn from(g: Grouping) -> String {
        g.to_string()
    }
}

impl From<Method> for Grouping {
    fn from(m: Method) -> Self {
        Grouping::Clustered(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Linkage;

    #[test]
    fn names_round_trip_in_their_shortest_form() {
        for (typed, printed) in [
            ("none", "none"),
            ("learned", "learned"),
            ("kmeans", "kmeans"),
            ("k-means", "kmeans"),
            ("agglomerative", "agglomerative"),
            ("agglomerative:ward", "agglomerative"),
            ("agglomerative:average", "agglomerative:average"),
            ("spectral", "spectral"),
            ("spectral:rbf", "spectral"),
            ("spectral:nn=5", "spectral:nn=5"),
            ("gmm", "gmm"),
            ("dbscan", "dbscan"),
            ("dbscan:eps=0.5", "dbscan:eps=0.5,min_samples=3"),
        ] {
            let g: Grouping = typed.parse().unwrap();
            assert_eq!(g.to_string(), printed, "{typed}");
            assert_eq!(printed.parse::<Grouping>().unwrap(), g, "{printed}");
        }
    }

    #[test]
    fn serde_uses_the_names() {
        let g = Grouping::Clustered(Method::Agglomerative(Linkage::Average));
        let json = serde_json::to_string(&g).unwrap();
        assert_eq!(json, "\"agglomerative:average\"");
        assert_eq!(
            serde_json::from_str::<Grouping>("\"none\"").unwrap(),
            Grouping::PatchToPatch
        );
        let e = serde_json::from_str::<Grouping>("\"kmean\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("'kmean' is not a patch grouping"), "{e}");
    }

    #[test]
    fn slots_and_attention_follow_the_kind() {
        assert_eq!(Grouping::PatchToPatch.slots(4), 36);
        assert_eq!(Grouping::Learned.slots(4), 4);
        assert_eq!(Grouping::PatchToPatch.attention(36), AttentionKind::PatchToPatch);
        assert_eq!(
            Grouping::Learned.attention(8),
            AttentionKind::PatchToCluster {
                clusters: 8,
                assignment: Assignment::Soft
            }
        );
        let km = Grouping::Clustered(Method::KMeans);
        assert!(km.is_clustered() && !Grouping::Learned.is_clustered());
        assert_eq!(km.method(), Some(&Method::KMeans));
        assert_eq!(
            km.attention(2),
            AttentionKind::PatchToCluster {
                clusters: 2,
                assignment: Assignment::Hard
            }
        );
    }
}
