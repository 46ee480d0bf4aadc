//! Minimal reader/writer for NumPy `.npy` files (format versions 1.0, 2.0 and 3.0), little-endian,
//! C order — enough to exchange patch embeddings (`<f4`, `[images, patches, dim]`) and cluster
//! labels (`<i4`, `[images, patches]`) with Python. Every error names the file, what was found
//! and what was expected.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// The 6-byte magic string that starts every `.npy` file.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Why a `.npy` file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// Opening, reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file does not start with the `.npy` magic string.
    #[error("{path}: not a .npy file (found leading bytes {found:02x?}, expected \\x93NUMPY)")]
    NotNpy {
        /// The file.
        path: PathBuf,
        /// The first bytes found.
        found: Vec<u8>,
    },
    /// Format version other than 1.0, 2.0, 3.0.
    #[error("{path}: .npy format version {major}.{minor}, expected 1.0, 2.0 or 3.0")]
    Version {
        /// The file.
        path: PathBuf,
        /// Major version found.
        major: u8,
        /// Minor version found.
        minor: u8,
    },
    /// The header dictionary could not be parsed.
    #[error(
        "{path}: malformed .npy header ({reason}); expected {{'descr': ..., 'fortran_order': ..., 'shape': (...)}}"
    )]
    Header {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// Element type differs from the one required.
    #[error("{path}: dtype '{found}', expected '{expected}'")]
    Dtype {
        /// The file.
        path: PathBuf,
        /// The `descr` found.
        found: String,
        /// The `descr` required.
        expected: &'static str,
    },
    /// The array is stored in Fortran (column-major) order.
    #[error("{path}: fortran_order True, expected C order (fortran_order False)")]
    FortranOrder {
        /// The file.
        path: PathBuf,
    },
    /// The array's shape differs from the one required.
    #[error("{path}: shape {found:?}, expected {expected}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// Shape found.
        found: Vec<usize>,
        /// Description of the shape required.
        expected: String,
    },
    /// The data section is shorter or longer than the shape says.
    #[error("{path}: data section has {found} bytes, expected {expected} for shape {shape:?}")]
    Size {
        /// The file.
        path: PathBuf,
        /// Bytes present after the header.
        found: u64,
        /// Bytes the shape and dtype need.
        expected: u64,
        /// Shape from the header.
        shape: Vec<usize>,
    },
}

/// Parsed `.npy` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// NumPy type string, e.g. `<f4`.
    pub descr: String,
    /// Whether the data are column-major.
    pub fortran_order: bool,
    /// Array shape (empty for a scalar).
    pub shape: Vec<usize>,
}

/// Patch embeddings of a batch of images, `[images, patches, dim]`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// Number of images.
    pub images: usize,
    /// Patches per image (36 in the study).
    pub patches: usize,
    /// Embedding dimension.
    pub dim: usize,
    /// `images * patches * dim` values.
    pub data: Vec<f32>,
}

/// Reads an `<f4` array `[images, patches, dim]` of patch embeddings.
pub fn read_embeddings(path: &Path) -> Result<Embeddings, NpyError> {
    let (shape, data) = read_f32(path)?;
    if shape.len() != 3 {
        return Err(NpyError::Shape {
            path: path.to_path_buf(),
            found: shape,
            expected: "3 dimensions [images, patches, dim]".into(),
        });
    }
    Ok(Embeddings {
        images: shape[0],
        patches: shape[1],
        dim: shape[2],
        data,
    })
}

/// Reads a C-order `<f4` array of any shape; returns `(shape, data)`.
pub fn read_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>), NpyError> {
    read_typed(path, "<f4", f32::from_le_bytes)
}

/// Reads a C-order `<i4` array of any shape; returns `(shape, data)`.
pub fn read_i32(path: &Path) -> Result<(Vec<usize>, Vec<i32>), NpyError> {
    read_typed(path, "<i4", i32::from_le_bytes)
}

/// Writes `data` as a C-order `<f4` array of the given shape.
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), NpyError> {
    write_typed(path, "<f4", shape, data, |v: &f32| v.to_le_bytes())
}

/// Writes `data` as a C-order `<i4` array of the given shape.
pub fn write_i32(path: &Path, shape: &[usize], data: &[i32]) -> Result<(), NpyError> {
    write_typed(path, "<i4", shape, data, |v: &i32| v.to_le_bytes())
}

/// Writes per-image cluster labels as `<i4` `[images, patches]` (all images must have
/// `patches` labels).
pub fn write_labels(path: &Path, labels: &[Vec<u32>], patches: usize) -> Result<(), NpyError> {
    let mut flat = Vec::with_capacity(labels.len() * patches);
    for (i, l) in labels.iter().enumerate() {
        if l.len() != patches {
            return Err(NpyError::Shape {
                path: path.to_path_buf(),
                found: vec![i, l.len()],
                expected: format!("{patches} labels for every image (image {i} has {})", l.len()),
            });
        }
        flat.extend(l.iter().map(|&v| i32::try_from(v).unwrap_or(i32::MAX)));
    }
    write_i32(path, &[labels.len(), patches], &flat)
}

/// Reads just the header of a `.npy` file.
pub fn read_header(path: &Path) -> Result<NpyHeader, NpyError> {
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let mut r = BufReader::new(file);
    read_header_from(path, &mut r).map(|(h, _)| h)
}

/// Wraps an I/O error with the file it concerns.
fn io_err(path: &Path, source: std::io::Error) -> NpyError {
    NpyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Parses magic, version and header dict; returns the header and its total byte length.
fn read_header_from(path: &Path, r: &mut impl Read) -> Result<(NpyHeader, u64), NpyError> {
    let mut pre = [0u8; 8];
    let mut got = 0;
    while got < 8 {
        let k = r.read(&mut pre[got..]).map_err(|e| io_err(path, e))?;
        if k == 0 {
            break;
        }
        got += k;
    }
    if got < 8 || &pre[..6] != MAGIC {
        return Err(NpyError::NotNpy {
            path: path.to_path_buf(),
            found: pre[..got.min(6)].to_vec(),
        });
    }
    let (major, minor) = (pre[6], pre[7]);
    let len_bytes = match (major, minor) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        _ => {
            return Err(NpyError::Version {
                path: path.to_path_buf(),
                major,
                minor,
            });
        }
    };
    let mut lb = [0u8; 4];
    r.read_exact(&mut lb[..len_bytes]).map_err(|_| NpyError::Header {
        path: path.to_path_buf(),
        reason: "file ends inside the header length".into(),
    })?;
    let hlen = u32::from_le_bytes(lb) as usize;
    // Grow with the bytes actually present: a forged length must not allocate gigabytes.
    let mut hbytes = Vec::with_capacity(hlen.min(1 << 16));
    let read = r
        .take(hlen as u64)
        .read_to_end(&mut hbytes)
        .map_err(|e| io_err(path, e))?;
    if read < hlen {
        return Err(NpyError::Header {
            path: path.to_path_buf(),
            reason: format!("file ends inside the {hlen}-byte header"),
        });
    }
    let text = String::from_utf8(hbytes).map_err(|_| NpyError::Header {
        path: path.to_path_buf(),
        reason: "header is not valid UTF-8/ASCII".into(),
    })?;
    let header = parse_header(&text).map_err(|reason| NpyError::Header {
        path: path.to_path_buf(),
        reason,
    })?;
    Ok((header, (8 + len_bytes + hlen) as u64))
}

/// Parses the Python-literal header dictionary.
fn parse_header(text: &str) -> Result<NpyHeader, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    p.ws();
    p.expect(b'{')?;
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    loop {
        p.ws();
        if p.eat(b'}') {
            break;
        }
        let key = p.string()?;
        p.ws();
        p.expect(b':')?;
        p.ws();
        match key.as_str() {
            "descr" => descr = Some(p.string()?),
            "fortran_order" => fortran = Some(p.boolean()?),
            "shape" => shape = Some(p.tuple()?),
            other => return Err(format!("unexpected key '{other}'")),
        }
        p.ws();
        if !p.eat(b',') {
            p.ws();
            p.expect(b'}')?;
            break;
        }
    }
    Ok(NpyHeader {
        descr: descr.ok_or("missing 'descr'")?,
        fortran_order: fortran.ok_or("missing 'fortran_order'")?,
        shape: shape.ok_or("missing 'shape'")?,
    })
}

/// Cursor over the header text (a Python dict literal).
struct Parser<'a> {
    /// Header bytes.
    s: &'a [u8],
    /// Current position.
    i: usize,
}

impl Parser<'_> {
    /// Skips whitespace.
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    /// Consumes `c` if it is next.
    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    /// Consumes `c` or fails naming what was found.
    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!(
                "expected '{}' at byte {}, found {}",
                c as char,
                self.i,
                self.s
                    .get(self.i)
                    .map_or("end of header".to_string(), |b| format!("'{}'", *b as char))
            ))
        }
    }
    /// A single- or double-quoted string.
    fn string(&mut self) -> Result<String, String> {
        let q = match self.s.get(self.i) {
            Some(&q @ (b'\'' | b'"')) => q,
            _ => return Err(format!("expected a quoted string at byte {}", self.i)),
        };
        self.i += 1;
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i] != q {
            self.i += 1;
        }
        if self.i >= self.s.len() {
            return Err("unterminated string".into());
        }
        let v = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        self.i += 1;
        Ok(v)
    }
    /// `True` or `False`.
    fn boolean(&mut self) -> Result<bool, String> {
        let rest = &self.s[self.i..];
        if rest.starts_with(b"True") {
            self.i += 4;
            Ok(true)
        } else if rest.starts_with(b"False") {
            self.i += 5;
            Ok(false)
        } else {
            Err(format!("expected True or False at byte {}", self.i))
        }
    }
    /// A tuple of non-negative integers, e.g. `(5, 36, 2048)` or `(3,)`.
    fn tuple(&mut self) -> Result<Vec<usize>, String> {
        self.expect(b'(')?;
        let mut out = Vec::new();
        loop {
            self.ws();
            if self.eat(b')') {
                return Ok(out);
            }
            let start = self.i;
            while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                self.i += 1;
            }
            // numpy may write Python longs as "3L" in old files
            let digits = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
            let v: usize = digits
                .parse()
                .map_err(|_| format!("expected a non-negative integer in shape at byte {start}"))?;
            self.eat(b'L');
            out.push(v);
            self.ws();
            if !self.eat(b',') {
                self.ws();
                self.expect(b')')?;
                return Ok(out);
            }
        }
    }
}

/// Reads a C-order array whose `descr` must equal `want` (4-byte elements).
fn read_typed<T>(
    path: &Path,
    want: &'static str,
    conv: impl Fn([u8; 4]) -> T,
) -> Result<(Vec<usize>, Vec<T>), NpyError> {
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let file_len = file.metadata().map_err(|e| io_err(path, e))?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    read_typed_from(path, &mut r, file_len, want, conv)
}

/// Parses an in-memory `<f4` `.npy` file; `name` is the file named in errors.
pub fn parse_f32(bytes: &[u8], name: &Path) -> Result<(Vec<usize>, Vec<f32>), NpyError> {
    read_typed_from(
        name,
        &mut std::io::Cursor::new(bytes),
        bytes.len() as u64,
        "<f4",
        f32::from_le_bytes,
    )
}

/// Reads header and data of a `total_len`-byte `.npy` stream.
fn read_typed_from<T>(
    path: &Path,
    r: &mut impl Read,
    file_len: u64,
    want: &'static str,
    conv: impl Fn([u8; 4]) -> T,
) -> Result<(Vec<usize>, Vec<T>), NpyError> {
    let (h, hbytes) = read_header_from(path, r)?;
    if h.descr != want {
        return Err(NpyError::Dtype {
            path: path.to_path_buf(),
            found: h.descr,
            expected: want,
        });
    }
    if h.fortran_order {
        return Err(NpyError::FortranOrder {
            path: path.to_path_buf(),
        });
    }
    let count = h
        .shape
        .iter()
        .try_fold(1usize, |a, &s| a.checked_mul(s))
        .ok_or_else(|| NpyError::Header {
            path: path.to_path_buf(),
            reason: format!("shape {:?} overflows the address space", h.shape),
        })?;
    let expected = (count as u64).saturating_mul(4);
    let found = file_len.saturating_sub(hbytes);
    if found != expected {
        return Err(NpyError::Size {
            path: path.to_path_buf(),
            found,
            expected,
            shape: h.shape,
        });
    }
    let mut out = Vec::with_capacity(count);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = count * 4;
    while left > 0 {
        let take = left.min(buf.len());
        r.read_exact(&mut buf[..take]).map_err(|e| io_err(path, e))?;
        out.extend(
            buf[..take]
                .chunks_exact(4)
                .map(|c| conv([c[0], c[1], c[2], c[3]])),
        );
        left -= take;
    }
    Ok((h.shape, out))
}

/// Writes a C-order array of 4-byte elements with the given `descr`.
fn write_typed<T>(
    path: &Path,
    descr: &str,
    shape: &[usize],
    data: &[T],
    conv: impl Fn(&T) -> [u8; 4],
) -> Result<(), NpyError> {
    let count = shape.iter().try_fold(1usize, |a, &s| a.checked_mul(s));
    if count != Some(data.len()) {
        return Err(NpyError::Shape {
            path: path.to_path_buf(),
            found: shape.to_vec(),
            expected: format!("a shape with {} elements (the data length)", data.len()),
        });
    }
    let shape_txt = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
        ),
    };
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_txt}, }}");
    // total header (magic + version + length + dict + padding + '\n') is a multiple of 64
    let (version, len_bytes) = if dict.len() + 1 + 10 <= u16::MAX as usize {
        (1u8, 2usize)
    } else {
        (2u8, 4usize)
    };
    let unpadded = 8 + len_bytes + dict.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    let hlen = dict.len() + pad + 1;
    let mut head = Vec::with_capacity(8 + len_bytes + hlen);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&[version, 0]);
    if len_bytes == 2 {
        head.extend_from_slice(&(hlen as u16).to_le_bytes());
    } else {
        head.extend_from_slice(&(hlen as u32).to_le_bytes());
    }
    head.extend_from_slice(dict.as_bytes());
    head.extend(std::iter::repeat_n(b' ', pad));
    head.push(b'\n');
    // Whole or not at all: a cache read by another process (a sweep's shards on one file system)
    // never sees a half-written array.
    crate::files::write_atomic_with(path, |w| {
        w.write_all(&head)?;
        for v in data {
            w.write_all(&conv(v))?;
        }
        Ok(())
    })
    .map_err(|e| io_err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).expect("write test file");
        p
    }

    /// A hand-built header of the given version around `dict`, then `data`.
    fn npy_bytes(major: u8, dict: &str, data: &[u8]) -> Vec<u8> {
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&[major, 0]);
        let h = format!("{dict}\n");
        if major == 1 {
            v.extend_from_slice(&(h.len() as u16).to_le_bytes());
        } else {
            v.extend_from_slice(&(h.len() as u32).to_le_bytes());
        }
        v.extend_from_slice(h.as_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn round_trip_f32_and_i32() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("x.npy");
        let data: Vec<f32> = (0..2 * 3 * 5).map(|i| i as f32 * 0.5 - 3.0).collect();
        write_f32(&p, &[2, 3, 5], &data).expect("write");
        let bytes = std::fs::read(&p).expect("read back");
        let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0, "header padded to 64 bytes");
        let e = read_embeddings(&p).expect("read");
        assert_eq!((e.images, e.patches, e.dim), (2, 3, 5));
        assert_eq!(e.data, data);
        let q = dir.path().join("l.npy");
        write_labels(&q, &[vec![0, 1, 2], vec![2, 2, 0]], 3).expect("write labels");
        let (shape, l) = read_i32(&q).expect("read labels");
        assert_eq!(shape, vec![2, 3]);
        assert_eq!(l, vec![0, 1, 2, 2, 2, 0]);
        // 1-d shape uses the (n,) tuple form
        write_i32(&q, &[3], &[1, 2, 3]).expect("write 1-d");
        assert_eq!(read_header(&q).expect("header").shape, vec![3]);
    }

    #[test]
    fn reads_v2_and_v3_headers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        for major in [2u8, 3] {
            let b = npy_bytes(
                major,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 2), }",
                &data,
            );
            let p = raw_file(dir.path(), &format!("v{major}.npy"), &b);
            let e = read_embeddings(&p).expect("v2/v3 readable");
            assert_eq!(e.data, vec![1.5, -2.0]);
        }
    }

    #[test]
    fn malformed_files_name_file_found_and_expected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f4 = |n: usize| vec![0u8; 4 * n];
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("magic.npy", b"NOTNUMPYxxxx".to_vec(), "not a .npy file"),
            ("short.npy", b"\x93NU".to_vec(), "not a .npy file"),
            (
                "version.npy",
                {
                    let mut b = npy_bytes(1, "{}", &[]);
                    b[6] = 9;
                    b
                },
                "version 9.0, expected 1.0, 2.0 or 3.0",
            ),
            (
                "dtype.npy",
                npy_bytes(
                    1,
                    "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 1), }",
                    &f4(2),
                ),
                "dtype '<f8', expected '<f4'",
            ),
            (
                "bigendian.npy",
                npy_bytes(
                    1,
                    "{'descr': '>f4', 'fortran_order': False, 'shape': (1, 1, 1), }",
                    &f4(1),
                ),
                "dtype '>f4', expected '<f4'",
            ),
            (
                "fortran.npy",
                npy_bytes(
                    1,
                    "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 1, 2), }",
                    &f4(4),
                ),
                "fortran_order True, expected C order",
            ),
            (
                "truncated.npy",
                npy_bytes(
                    1,
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }",
                    &f4(23),
                ),
                "data section has 92 bytes, expected 96",
            ),
            (
                "shape2d.npy",
                npy_bytes(
                    1,
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                    &f4(6),
                ),
                "shape [2, 3], expected 3 dimensions",
            ),
            (
                "nokey.npy",
                npy_bytes(1, "{'descr': '<f4', 'shape': (1,), }", &f4(1)),
                "missing 'fortran_order'",
            ),
            (
                "garbage.npy",
                npy_bytes(
                    1,
                    "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }",
                    &f4(1),
                ),
                "expected True or False",
            ),
            (
                "badshape.npy",
                npy_bytes(
                    1,
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (1, -3), }",
                    &f4(1),
                ),
                "non-negative integer",
            ),
            (
                "cut_header.npy",
                npy_bytes(
                    1,
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
                    &[],
                )[..20]
                    .to_vec(),
                "file ends inside the",
            ),
        ];
        for (name, bytes, want) in cases {
            let p = raw_file(dir.path(), name, &bytes);
            let err = read_embeddings(&p).expect_err(name).to_string();
            assert!(err.contains(name), "{err} should name the file");
            assert!(err.contains(want), "{name}: '{err}' should contain '{want}'");
        }
        let missing = dir.path().join("missing.npy");
        let err = read_embeddings(&missing).expect_err("missing").to_string();
        assert!(err.contains("missing.npy"), "{err}");
        // writing with a shape that does not match the data
        let err = write_f32(&dir.path().join("w.npy"), &[2, 2], &[1.0; 3])
            .expect_err("mismatch")
            .to_string();
        assert!(err.contains("[2, 2]") && err.contains("3 elements"), "{err}");
    }
}
