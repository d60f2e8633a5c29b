//! llama.cpp's importance-matrix files, as `llama-imatrix` writes them and `llama-quantize`
//! reads them (read in llama-cpp-python 0.3.36's `tools/imatrix/imatrix.cpp`,
//! `common/imatrix-loader.cpp` and `tools/quantize/quantize.cpp`).
//!
//! **GGUF** (written here, and read): `general.type = "imatrix"`, `imatrix.datasets` (array of
//! strings), `imatrix.chunk_count` and `imatrix.chunk_size` (u32); per weight matrix (its GGUF
//! name, e.g. `blk.0.attn_q.weight`) two F32 tensors: `<name>.in_sum2` (dims `[n_cols, n_mat]`,
//! Σx² per input column) and `<name>.counts` (dims `[1, n_mat]`, rows summed). `n_mat` is 1 for a
//! plain matrix (more for expert stacks). The importance llama-quantize uses is
//! `in_sum2 / counts` per matrix, or 1 where a count is 0.
//!
//! **Legacy `.dat`** (read only): `i32 n_entries`, then per entry `i32 len, name[len], i32 ncall,
//! i32 nval, f32 values[nval]` (values already `mean · ncall`), then optionally `i32 chunk_count,
//! i32 len, dataset[len]`. The importance is `values / ncall` (the values as they are when
//! `ncall` is 0).

use super::gguf_writer::{GgufWriteError, GgufWriter};
use crate::calib::{CalibRun, LinearInput, SumSquares};
use crate::formats::GgmlType;
use crate::gguf::{GgufError, GgufFile, MetadataArray, MetadataValue};

pub const KEY_TYPE: &str = "general.type";
pub const KEY_DATASETS: &str = "imatrix.datasets";
pub const KEY_CHUNK_COUNT: &str = "imatrix.chunk_count";
pub const KEY_CHUNK_SIZE: &str = "imatrix.chunk_size";
const SUMS: &str = ".in_sum2";
const COUNTS: &str = ".counts";

/// The statistics of one weight matrix (or stack of `counts.len()` matrices).
#[derive(Debug, Clone, PartialEq)]
pub struct ImatrixEntry {
    /// The weight tensor's name (`blk.0.attn_q.weight`).
    pub name: String,
    /// Σx² per input column, `counts.len()` matrices one after the other.
    pub sums: Vec<f32>,
    /// Rows summed per matrix (legacy files: `[ncall]`, and `sums` already hold means × ncall).
    pub counts: Vec<f32>,
}

/// Which file layout an [`Imatrix`] came from (how `sums` and `counts` combine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImatrixLayout {
    Gguf,
    LegacyDat,
}

/// A whole importance-matrix file.
#[derive(Debug, Clone, PartialEq)]
pub struct Imatrix {
    pub layout: ImatrixLayout,
    pub datasets: Vec<String>,
    pub chunk_count: u32,
    /// Tokens per chunk (0 in legacy files, which do not record it).
    pub chunk_size: u32,
    pub entries: Vec<ImatrixEntry>,
}

/// Why an imatrix file cannot be read or written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImatrixError {
    #[error("not an imatrix file: {0}")]
    Gguf(GgufError),
    #[error("not an imatrix file: general.type is {found:?}, expected \"imatrix\"")]
    WrongType { found: Option<String> },
    #[error("imatrix metadata '{key}' is missing or has the wrong type")]
    BadMetadata { key: &'static str },
    #[error("imatrix tensor '{tensor}': {reason}")]
    BadTensor { tensor: String, reason: String },
    #[error("the imatrix file holds no entries")]
    Empty,
    #[error("legacy imatrix file: {reason} at byte {offset}")]
    BadLegacy { offset: usize, reason: String },
    #[error("imatrix entry '{name}' has {got} values, the tensor has rows of {want}")]
    WrongLength { name: String, want: usize, got: usize },
    #[error(transparent)]
    Write(#[from] GgufWriteError),
}

impl Imatrix {
    /// The imatrix `llama-imatrix` writes for the sums of a calibration run (`run`, over the
    /// texts `datasets`): per `blk.*` weight matrix, Σx² of its input per column and the rows
    /// summed, sorted by name. The classifier is left out, as llama-imatrix does without
    /// `--process-output`; `tied`: the model's classifier is its token embedding.
    pub fn from_sums(sums: &SumSquares, tied: bool, datasets: Vec<String>, run: &CalibRun) -> Imatrix {
        let mut entries: Vec<ImatrixEntry> = sums
            .inputs
            .iter()
            .filter(|(input, _)| **input != LinearInput::Classifier)
            .flat_map(|(input, s)| {
                let col_sums: Vec<f32> = s.sum_sq.iter().map(|&v| v as f32).collect();
                input.tensor_names(tied).into_iter().map(move |name| ImatrixEntry {
                    name,
                    sums: col_sums.clone(),
                    counts: vec![s.rows as f32],
                })
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Imatrix {
            layout: ImatrixLayout::Gguf,
            datasets,
            chunk_count: run.chunks as u32,
            chunk_size: run.chunk as u32,
            entries,
        }
    }

    /// The entry of weight tensor `name`.
    pub fn entry(&self, name: &str) -> Option<&ImatrixEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The per-column importance llama-quantize uses for tensor `name` with rows of `n_cols`
    /// (only single matrices: `n_cols` must be the entry's whole length): `in_sum2 / counts`, 1
    /// where the count is 0; legacy files: `values / ncall`. `None` when there is no entry.
    pub fn importance(&self, name: &str, n_cols: usize) -> Result<Option<Vec<f32>>, ImatrixError> {
        let Some(e) = self.entry(name) else { return Ok(None) };
        if e.sums.len() != n_cols || e.counts.len() != 1 {
            return Err(ImatrixError::WrongLength { name: name.into(), want: n_cols, got: e.sums.len() });
        }
        let count = e.counts[0];
        Ok(Some(match self.layout {
            ImatrixLayout::Gguf if count > 0.0 => e.sums.iter().map(|s| s / count).collect(),
            ImatrixLayout::Gguf => vec![1.0; n_cols],
            ImatrixLayout::LegacyDat if count > 0.0 => e.sums.iter().map(|s| s / count).collect(),
            ImatrixLayout::LegacyDat => e.sums.clone(),
        }))
    }

    /// Reads a GGUF imatrix, or a legacy `.dat` one (a file that is not GGUF).
    pub fn from_bytes(bytes: &[u8]) -> Result<Imatrix, ImatrixError> {
        if bytes.starts_with(b"GGUF") {
            read_gguf(bytes)
        } else {
            read_legacy(bytes)
        }
    }

    /// The GGUF file llama-imatrix writes (entries in the order given).
    pub fn to_gguf(&self) -> Result<Vec<u8>, ImatrixError> {
        let mut w = GgufWriter::new();
        w.set(KEY_TYPE, MetadataValue::String("imatrix".into()))?;
        w.set(KEY_DATASETS, MetadataValue::Array(MetadataArray::String(self.datasets.clone())))?;
        w.set(KEY_CHUNK_COUNT, MetadataValue::U32(self.chunk_count))?;
        w.set(KEY_CHUNK_SIZE, MetadataValue::U32(self.chunk_size))?;
        let mut data: Vec<Vec<u8>> = Vec::new();
        for e in &self.entries {
            let n_mat = e.counts.len() as u64;
            if n_mat == 0 || !(e.sums.len() as u64).is_multiple_of(n_mat) {
                return Err(ImatrixError::BadTensor {
                    tensor: e.name.clone(),
                    reason: format!("{} sums for {n_mat} counts", e.sums.len()),
                });
            }
            w.add_tensor(&format!("{}{SUMS}", e.name), &[e.sums.len() as u64 / n_mat, n_mat], GgmlType::F32)?;
            w.add_tensor(&format!("{}{COUNTS}", e.name), &[1, n_mat], GgmlType::F32)?;
            data.push(e.sums.iter().flat_map(|v| v.to_le_bytes()).collect());
            data.push(e.counts.iter().flat_map(|v| v.to_le_bytes()).collect());
        }
        Ok(w.to_bytes(&data)?)
    }
}

fn read_gguf(bytes: &[u8]) -> Result<Imatrix, ImatrixError> {
    let g = GgufFile::parse(bytes, bytes.len() as u64).map_err(ImatrixError::Gguf)?;
    let ty = g.get_str(KEY_TYPE);
    if ty != Some("imatrix") {
        return Err(ImatrixError::WrongType { found: ty.map(str::to_string) });
    }
    let datasets = match g.get_array(KEY_DATASETS) {
        Some(MetadataArray::String(v)) => v.clone(),
        _ => return Err(ImatrixError::BadMetadata { key: KEY_DATASETS }),
    };
    let u32_of = |key: &'static str| match g.get(key) {
        Some(MetadataValue::U32(v)) => Ok(*v),
        _ => Err(ImatrixError::BadMetadata { key }),
    };
    let (chunk_count, chunk_size) = (u32_of(KEY_CHUNK_COUNT)?, u32_of(KEY_CHUNK_SIZE)?);
    let f32s = |name: &str| -> Result<(Vec<u64>, Vec<f32>), ImatrixError> {
        let bad = |reason: String| ImatrixError::BadTensor { tensor: name.to_string(), reason };
        let t = g.tensor(name).ok_or_else(|| bad("missing".into()))?;
        if t.ty != GgmlType::F32 {
            return Err(bad(format!("type {} (F32 expected)", t.ty)));
        }
        let raw = g.tensor_data(bytes, t).map_err(|e| bad(e.to_string()))?;
        Ok((t.dims.clone(), raw.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect()))
    };
    let mut entries = Vec::new();
    for t in &g.tensors {
        if let Some(name) = t.name.strip_suffix(SUMS) {
            let (sum_dims, sums) = f32s(&t.name)?;
            let (count_dims, counts) = f32s(&format!("{name}{COUNTS}"))?;
            let n_mat = sum_dims.get(1).copied().unwrap_or(1);
            if count_dims.iter().product::<u64>() != n_mat || counts.is_empty() {
                return Err(ImatrixError::BadTensor {
                    tensor: format!("{name}{COUNTS}"),
                    reason: format!("dims {count_dims:?} for in_sum2 dims {sum_dims:?}"),
                });
            }
            entries.push(ImatrixEntry { name: name.to_string(), sums, counts });
        } else if let Some(name) = t.name.strip_suffix(COUNTS) {
            if g.tensor(&format!("{name}{SUMS}")).is_none() {
                return Err(ImatrixError::BadTensor { tensor: t.name.clone(), reason: "no matching in_sum2".into() });
            }
        } else {
            return Err(ImatrixError::BadTensor {
                tensor: t.name.clone(),
                reason: "neither .in_sum2 nor .counts".into(),
            });
        }
    }
    if entries.is_empty() {
        return Err(ImatrixError::Empty);
    }
    Ok(Imatrix { layout: ImatrixLayout::Gguf, datasets, chunk_count, chunk_size, entries })
}

/// A little-endian reader over the legacy file that names the offset of what is missing.
struct Legacy<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Legacy<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], ImatrixError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(ImatrixError::BadLegacy {
                offset: self.at,
                reason: format!("{what}: {n} bytes needed, {} left", self.bytes.len() - self.at),
            });
        };
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn i32(&mut self, what: &str) -> Result<i32, ImatrixError> {
        Ok(i32::from_le_bytes(self.take(4, what)?.try_into().expect("4 bytes")))
    }

    fn len(&mut self, what: &str, min: i32) -> Result<usize, ImatrixError> {
        let at = self.at;
        let n = self.i32(what)?;
        if n < min {
            return Err(ImatrixError::BadLegacy { offset: at, reason: format!("{what} is {n}") });
        }
        Ok(n as usize)
    }
}

fn read_legacy(bytes: &[u8]) -> Result<Imatrix, ImatrixError> {
    let mut r = Legacy { bytes, at: 0 };
    let n_entries = r.len("entry count", 1)?;
    let mut entries = Vec::new();
    for _ in 0..n_entries {
        let len = r.len("name length", 0)?;
        let name = String::from_utf8_lossy(r.take(len, "name")?).into_owned();
        let ncall = r.i32("call count")?;
        let nval = r.len("value count", 1)?;
        let raw = r.take(nval.saturating_mul(4), "values")?;
        let sums = raw.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
        entries.push(ImatrixEntry { name, sums, counts: vec![ncall as f32] });
    }
    let (mut chunk_count, mut datasets) = (0, Vec::new());
    if r.at < bytes.len() {
        chunk_count = r.i32("chunk count")?.max(0) as u32;
        let len = r.len("dataset length", 0)?;
        if len > 0 {
            datasets.push(String::from_utf8_lossy(r.take(len, "dataset")?).into_owned());
        }
    }
    Ok(Imatrix { layout: ImatrixLayout::LegacyDat, datasets, chunk_count, chunk_size: 0, entries })
}
