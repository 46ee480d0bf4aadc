//! The sweep file (`config/sweep.toml`): which (method, k) cells `train --sweep` trains.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::model::Grouping;

/// One cell of the sweep: a patch grouping (clustering method) and its k.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cell {
    /// How patches are grouped (`kmeans`, …, `none` for patch-to-patch, `learned` for soft assignment).
    pub method: Grouping,
    /// Clusters per image (cluster slots for DBSCAN; ignored by `none`).
    pub k: usize,
}

impl Cell {
    /// Folder and file name of the cell: `kmeans-k2`, `agglomerative_average-k4`, `none-k36`.
    pub fn name(&self) -> String {
        self.method.cell_name(self.k)
    }
}

/// A parsed sweep file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// Embedder for every cell.
    pub embedder: String,
    /// The grid's methods.
    pub methods: Vec<Grouping>,
    /// The grid's k values.
    pub ks: Vec<usize>,
    /// Cells beyond the grid.
    #[serde(default)]
    pub extra: Vec<Cell>,
}

impl Sweep {
    /// Reads and validates a sweep file; errors name the file and the offending key.
    pub fn load(path: &Path) -> Result<Sweep, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text, path)
    }

    /// Parses and validates sweep TOML text; `path` is the file named in errors.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Sweep, ConfigError> {
        let sweep: Sweep = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        for c in sweep.cells() {
            if c.k == 0 || c.k > 36 {
                return Err(ConfigError::Value {
                    path: path.to_path_buf(),
                    key: "ks".into(),
                    message: format!("k = {} for {} is not in 1..=36", c.k, c.method),
                });
            }
        }
        Ok(sweep)
    }

    /// Every cell: the grid in (method, k) order, then the extras.
    pub fn cells(&self) -> Vec<Cell> {
        let mut out: Vec<Cell> = self
            .methods
            .iter()
            .flat_map(|m| self.ks.iter().map(move |&k| Cell { method: m.clone(), k }))
            .collect();
        out.extend(self.extra.iter().cloned());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_sweep_is_the_study_grid_plus_extras() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sweep.toml");
        let s = Sweep::load(&p).unwrap();
        let cells = s.cells();
        assert_eq!(cells.len(), 9 + 5);
        assert_eq!(
            cells[0],
            Cell {
                method: "kmeans".parse().unwrap(),
                k: 2
            }
        );
        assert_eq!(
            cells[8],
            Cell {
                method: "spectral".parse().unwrap(),
                k: 8
            }
        );
    }

    #[test]
    fn bad_method_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.toml");
        std::fs::write(&p, "embedder='pixels'\nmethods=['kmean']\nks=[2]\n").unwrap();
        let e = Sweep::load(&p).unwrap_err().to_string();
        assert!(e.contains("kmean") && e.contains("s.toml"), "{e}");
    }
}
