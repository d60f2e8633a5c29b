//! safetensors checkpoints: read (single file or sharded with `model.safetensors.index.json`)
//! and write.
//!
//! Reading keeps the shard bytes (an mmap natively) and a list of tensors in file order; values
//! are decoded on demand ([`Checkpoint::tensor_f32`]) from F32, F16 or BF16. Other dtypes are an
//! error naming the tensor and the dtype. `config.json` next to the checkpoint is kept as JSON.
//!
//! Writing ([`write_safetensors`] / [`serialize`]) takes plain entries
//! `(name, dtype, shape, bytes)`; [`quantized_entries`] turns a quantized tensor into them. The
//! file's `__metadata__` records the scheme (`quantlab.format`) and the quantlab version.
//!
//! Layout of quantized tensors in safetensors (one tensor `W` of PyTorch shape `[rows, cols]`):
//! - f32 / f16 / bf16: `W` itself with that dtype and shape.
//! - bitsandbytes nf4/fp4: the entries of `formats::bnb::safetensors_entries` (bitsandbytes'
//!   own naming, when that module provides it).
//! - int (`IntTensor`): `W` = the packed codes as U8 (shape `[rows, cols]` for 8 bits; for 2–7
//!   bits the bit stream of `int.rs` — LSB first, rows not byte-aligned — as a 1-D
//!   `[n_bytes]`); `W.scale` = one scale per group, F32 for tensor/channel schemes and F16 for
//!   group-wise ones (they are f16-rounded already, so this is lossless), shape `[1]` (tensor),
//!   `[rows]` (channel) or `[rows, cols / n]` (groups); `W.zero_point` (asymmetric only) = one
//!   U8 per group, unpacked, same shape as the scale; `W.shape` = the original PyTorch shape as
//!   I64.
//! - fp8 (`Fp8Tensor`): `W` = the codes with dtype F8_E4M3 (OCP e4m3fn, PyTorch's
//!   `float8_e4m3fn`) or F8_E5M2 and the original shape; `W.scale` = F32, `[1]` or `[rows]`.
//!   Dequantize as `decode(code) * scale`.
//! - ggml block types (q8_0, q4_k, ...) are not written to safetensors: use GGUF.

use crate::formats::{float, QuantizedTensor};
use ::safetensors::Dtype;
use std::collections::HashMap;

use super::safetensors_stream::{Slot, StreamWriter};
use std::path::{Component, Path, PathBuf};

/// One safetensors entry: name, dtype, shape (PyTorch order), raw little-endian bytes.
pub type Entry = (String, Dtype, Vec<usize>, Vec<u8>);

/// The `__metadata__` key naming the scheme a file was quantized with.
pub const FORMAT_KEY: &str = "quantlab.format";
/// The `__metadata__` key with the quantlab version that wrote the file.
pub const VERSION_KEY: &str = "quantlab.version";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SafetensorsError {
    #[error("cannot open '{path}': {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("'{path}' is not a valid safetensors file: {reason}")]
    Header { path: PathBuf, reason: String },
    #[error("'{path}' is not a valid safetensors index: {reason}")]
    Index { path: PathBuf, reason: String },
    #[error("shard '{shard}' listed in '{index}' (for {n_tensors} tensors, e.g. '{example}') does not exist")]
    MissingShard { index: PathBuf, shard: PathBuf, n_tensors: usize, example: String },
    #[error("tensor '{tensor}' is listed in the index for shard '{shard}' but that shard does not contain it")]
    MissingTensor { tensor: String, shard: PathBuf },
    #[error("tensor '{tensor}' appears in both '{first}' and '{second}'")]
    DuplicateTensor { tensor: String, first: PathBuf, second: PathBuf },
    #[error("tensor '{tensor}' has dtype {dtype}; only F32, F16 and BF16 tensors can be read as values")]
    UnsupportedDtype { tensor: String, dtype: String },
    #[error("'{path}' is not valid JSON: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("cannot write safetensors: {0}")]
    Write(String),
}

/// A tensor of a checkpoint: where its bytes are and what they hold.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointTensor {
    pub name: String,
    pub dtype: Dtype,
    /// PyTorch order: the last dimension is the contiguous row.
    pub shape: Vec<usize>,
    /// Index into [`Checkpoint::shards`].
    pub shard: usize,
    /// Byte range within the shard file.
    pub start: usize,
    pub end: usize,
}

impl CheckpointTensor {
    pub fn n_elements(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn n_bytes(&self) -> usize {
        self.end - self.start
    }
}

enum ShardData {
    Owned(Vec<u8>),
    #[cfg(not(target_arch = "wasm32"))]
    Mapped(memmap2::Mmap),
}

impl ShardData {
    fn bytes(&self) -> &[u8] {
        match self {
            ShardData::Owned(v) => v,
            #[cfg(not(target_arch = "wasm32"))]
            ShardData::Mapped(m) => m,
        }
    }
}

/// A safetensors checkpoint (one file or several shards).
pub struct Checkpoint {
    /// The shard files, in the order their tensors are listed.
    pub shards: Vec<PathBuf>,
    /// Every tensor, shard by shard, each shard in file order.
    pub tensors: Vec<CheckpointTensor>,
    /// `config.json` from the checkpoint's directory, if there is one.
    pub config: Option<serde_json::Value>,
    /// The first shard's `__metadata__`.
    pub metadata: HashMap<String, String>,
    data: Vec<ShardData>,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("shards", &self.shards)
            .field("tensors", &self.tensors.len())
            .field("config", &self.config.is_some())
            .finish()
    }
}

impl Checkpoint {
    /// Builds a checkpoint from shard contents already in memory (path, bytes), e.g. in the
    /// browser. `config` is passed through.
    pub fn from_shard_bytes(
        shards: Vec<(PathBuf, Vec<u8>)>,
        config: Option<serde_json::Value>,
    ) -> Result<Self, SafetensorsError> {
        let (paths, data): (Vec<_>, Vec<_>) = shards.into_iter().map(|(p, b)| (p, ShardData::Owned(b))).unzip();
        Self::build(paths, data, None, config)
    }

    /// Opens `path`: a `.safetensors` file, a `*.index.json`, or a directory holding
    /// `model.safetensors.index.json`, `model.safetensors` or exactly one `*.safetensors` file.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: &Path) -> Result<Self, SafetensorsError> {
        let open_err = |reason: String| SafetensorsError::Open { path: path.to_path_buf(), reason };
        let meta = std::fs::metadata(path).map_err(|e| open_err(io_reason(&e)))?;
        let file = if meta.is_dir() {
            let index = path.join("model.safetensors.index.json");
            let single = path.join("model.safetensors");
            if index.is_file() {
                index
            } else if single.is_file() {
                single
            } else {
                let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                    .map_err(|e| open_err(io_reason(&e)))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
                    .collect();
                found.sort();
                match found.len() {
                    1 => found.remove(0),
                    0 => return Err(open_err("the directory holds no .safetensors file".into())),
                    n => {
                        return Err(open_err(format!(
                            "the directory holds {n} .safetensors files but no model.safetensors.index.json"
                        )))
                    }
                }
            }
        } else {
            path.to_path_buf()
        };
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let config = read_config(&dir)?;
        if file.extension().is_some_and(|x| x == "json") {
            let (shards, weight_map) = read_index(&file)?;
            let mut data = Vec::with_capacity(shards.len());
            for shard in &shards {
                if !shard.is_file() {
                    let names: Vec<&String> =
                        weight_map.iter().filter(|(_, s)| dir.join(s) == *shard).map(|(n, _)| n).collect();
                    return Err(SafetensorsError::MissingShard {
                        index: file.clone(),
                        shard: shard.clone(),
                        n_tensors: names.len(),
                        example: names.first().map(|s| s.to_string()).unwrap_or_default(),
                    });
                }
                data.push(map_shard(shard)?);
            }
            let expected: Vec<(String, PathBuf)> = weight_map.into_iter().map(|(n, s)| (n, dir.join(s))).collect();
            Self::build(shards, data, Some(expected), config)
        } else {
            let data = vec![map_shard(&file)?];
            Self::build(vec![file], data, None, config)
        }
    }

    fn build(
        shards: Vec<PathBuf>,
        data: Vec<ShardData>,
        expected: Option<Vec<(String, PathBuf)>>,
        config: Option<serde_json::Value>,
    ) -> Result<Self, SafetensorsError> {
        let mut tensors = Vec::new();
        let mut where_: HashMap<String, usize> = HashMap::new();
        let mut metadata = HashMap::new();
        for (i, (path, d)) in shards.iter().zip(&data).enumerate() {
            let bytes = d.bytes();
            let (n, meta) = ::safetensors::SafeTensors::read_metadata(bytes)
                .map_err(|e| SafetensorsError::Header { path: path.clone(), reason: header_reason(&e, bytes.len()) })?;
            if i == 0 {
                metadata = meta.metadata().clone().unwrap_or_default();
            }
            let base = 8 + n;
            for name in meta.offset_keys() {
                let info = meta.info(&name).expect("key from the same metadata");
                if let Some(&j) = where_.get(&name) {
                    return Err(SafetensorsError::DuplicateTensor {
                        tensor: name,
                        first: shards[j].clone(),
                        second: path.clone(),
                    });
                }
                where_.insert(name.clone(), i);
                tensors.push(CheckpointTensor {
                    name,
                    dtype: info.dtype,
                    shape: info.shape.clone(),
                    shard: i,
                    start: base + info.data_offsets.0,
                    end: base + info.data_offsets.1,
                });
            }
        }
        if let Some(expected) = expected {
            for (name, shard) in expected {
                match where_.get(&name) {
                    Some(&i) if shards[i] == shard => {}
                    _ => return Err(SafetensorsError::MissingTensor { tensor: name, shard }),
                }
            }
        }
        Ok(Checkpoint { shards, tensors, config, metadata, data })
    }

    pub fn tensor(&self, name: &str) -> Option<&CheckpointTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The raw bytes of `t` (little-endian, its dtype).
    pub fn raw(&self, t: &CheckpointTensor) -> &[u8] {
        &self.data[t.shard].bytes()[t.start..t.end]
    }

    /// Lets the operating system drop the memory-mapped pages of rows `rows` of `t` (all of it
    /// when `None`) once they have been read: they count in the process's resident memory until
    /// then, and a one-pass reader (`quantize`) will not read them again (if it did, they would
    /// be read from the file anew).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn release(&self, t: &CheckpointTensor, rows: Option<std::ops::Range<usize>>) {
        if let ShardData::Mapped(m) = &self.data[t.shard] {
            let bytes = rows.map_or(0..t.n_bytes(), |r| row_bytes(t, r));
            release_pages(m, t.start + bytes.start..t.start + bytes.end);
        }
    }

    /// The values of `t` as f32 (F32, F16 and BF16 tensors only). The dtype is checked before
    /// the output is allocated, so its size is at most twice the tensor's bytes in the file.
    pub fn tensor_f32(&self, t: &CheckpointTensor) -> Result<Vec<f32>, SafetensorsError> {
        if !matches!(t.dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16) {
            return Err(SafetensorsError::UnsupportedDtype { tensor: t.name.clone(), dtype: t.dtype.to_string() });
        }
        let mut out = vec![0f32; t.n_elements()];
        let rows = t.n_elements() / row_len(t);
        self.rows_f32(t, 0..rows, &mut out)?;
        Ok(out)
    }

    /// Rows `rows` of `t` (rows of its last dimension) as f32 into `out` (F32, F16 and BF16
    /// tensors only): a reader that works a few rows at a time never holds the whole tensor.
    pub fn rows_f32(
        &self,
        t: &CheckpointTensor,
        rows: std::ops::Range<usize>,
        out: &mut [f32],
    ) -> Result<(), SafetensorsError> {
        let raw = &self.raw(t)[row_bytes(t, rows)];
        match t.dtype {
            Dtype::F32 => float::decode_f32(raw, out),
            Dtype::F16 => float::decode_f16(raw, out),
            Dtype::BF16 => float::decode_bf16(raw, out),
            other => {
                return Err(SafetensorsError::UnsupportedDtype { tensor: t.name.clone(), dtype: other.to_string() })
            }
        }
        Ok(())
    }
}

/// The length of `t`'s rows (its last dimension; 1 for a scalar).
fn row_len(t: &CheckpointTensor) -> usize {
    t.shape.last().copied().unwrap_or(1).max(1)
}

/// Where rows `rows` of `t` lie within its bytes.
fn row_bytes(t: &CheckpointTensor, rows: std::ops::Range<usize>) -> std::ops::Range<usize> {
    let row = row_len(t) * t.dtype.bitsize() / 8;
    rows.start * row..rows.end * row
}

#[cfg(not(target_arch = "wasm32"))]
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        _ => e.to_string(),
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn map_shard(path: &Path) -> Result<ShardData, SafetensorsError> {
    let open_err = |reason: String| SafetensorsError::Open { path: path.to_path_buf(), reason };
    let file = std::fs::File::open(path).map_err(|e| open_err(io_reason(&e)))?;
    let len = file.metadata().map_err(|e| open_err(e.to_string()))?.len();
    if len == 0 {
        return Err(SafetensorsError::Header { path: path.to_path_buf(), reason: "the file is empty".into() });
    }
    // SAFETY: read-only map; see `cli::map_file` for the truncation caveat shared by all
    // mmap-based loaders.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| open_err(e.to_string()))?;
    Ok(ShardData::Mapped(map))
}

/// Drops the resident pages of `range` in the read-only file map `m` (see
/// [`Checkpoint::release`]); a failure only means they stay resident.
#[cfg(not(target_arch = "wasm32"))]
pub fn release_pages(m: &memmap2::Mmap, range: std::ops::Range<usize>) {
    if range.end <= m.len() && !range.is_empty() {
        // SAFETY: a read-only, shared file map: MADV_DONTNEED drops clean page-cache pages from
        // this process's page tables, and the next read, if any, faults them in from the file
        // again, so no byte anyone can read changes.
        let _ = unsafe { m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, range.start, range.len()) };
    }
}

/// `config.json` in `dir`, if present.
#[cfg(not(target_arch = "wasm32"))]
fn read_config(dir: &Path) -> Result<Option<serde_json::Value>, SafetensorsError> {
    let path = dir.join("config.json");
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read(&path).map_err(|e| SafetensorsError::Open { path: path.clone(), reason: e.to_string() })?;
    serde_json::from_slice(&text).map(Some).map_err(|e| SafetensorsError::Config { path, reason: e.to_string() })
}

/// A parsed index: the distinct shard paths and the weight map (tensor name, shard file name).
pub type IndexParts = (Vec<PathBuf>, Vec<(String, String)>);

/// Reads and parses the index at `path` (see [`parse_index`]).
#[cfg(not(target_arch = "wasm32"))]
fn read_index(path: &Path) -> Result<IndexParts, SafetensorsError> {
    let text =
        std::fs::read(path).map_err(|e| SafetensorsError::Open { path: path.to_path_buf(), reason: io_reason(&e) })?;
    parse_index(&text, path)
}

/// Parses the contents `text` of the index at `path`: the distinct shard paths (sorted, each
/// next to the index) and the weight map (name, shard file name). Public for the fuzzer.
pub fn parse_index(text: &[u8], path: &Path) -> Result<IndexParts, SafetensorsError> {
    let bad = |reason: String| SafetensorsError::Index { path: path.to_path_buf(), reason };
    let v: serde_json::Value = serde_json::from_slice(text).map_err(|e| bad(format!("bad JSON: {e}")))?;
    let map = v
        .get("weight_map")
        .ok_or_else(|| bad("no \"weight_map\" object".into()))?
        .as_object()
        .ok_or_else(|| bad("\"weight_map\" is not an object".into()))?;
    if map.is_empty() {
        return Err(bad("\"weight_map\" is empty".into()));
    }
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut weight_map = Vec::with_capacity(map.len());
    let mut shards: Vec<PathBuf> = Vec::new();
    for (name, file) in map {
        let file = file.as_str().ok_or_else(|| bad(format!("the shard of '{name}' is not a string")))?;
        // One plain file name: no directory part (a subfolder, "..", an absolute path), so every
        // shard is a file next to the index.
        let mut parts = Path::new(file).components();
        let plain = matches!((parts.next(), parts.next()), (Some(Component::Normal(n)), None) if n == file);
        if !plain || file.contains("..") {
            return Err(bad(format!("the shard '{file}' of '{name}' is not a file name next to the index")));
        }
        shards.push(dir.join(file));
        weight_map.push((name.clone(), file.to_string()));
    }
    // Sorted, then deduplicated: linear in the entries (a search per entry was quadratic in a
    // hostile index naming a distinct shard per tensor).
    shards.sort();
    shards.dedup();
    Ok((shards, weight_map))
}

/// A safetensors header error in words, with a hint for the common case of a cut-off file.
fn header_reason(e: &::safetensors::SafeTensorError, file_len: usize) -> String {
    use ::safetensors::SafeTensorError as E;
    match e {
        E::HeaderTooSmall => format!("only {file_len} bytes, shorter than the 8-byte header length"),
        E::InvalidHeaderLength => {
            format!("the header length runs past the end of the {file_len}-byte file (truncated?)")
        }
        E::MetadataIncompleteBuffer => {
            "the tensor data does not end where the file ends (truncated, or trailing bytes)".into()
        }
        E::HeaderTooLarge => "the header length is impossibly large (corrupt header)".into(),
        other => format!("corrupt header: {other}"),
    }
}

/// Standard `__metadata__` for a file quantized with `format`.
pub fn quantlab_metadata(format: &str) -> HashMap<String, String> {
    HashMap::from([
        (FORMAT_KEY.to_string(), format.to_string()),
        (VERSION_KEY.to_string(), env!("CARGO_PKG_VERSION").to_string()),
    ])
}

/// Bytes one element of `dtype` takes, for the byte-size check.
fn bits(dtype: Dtype) -> usize {
    dtype.bitsize()
}

/// Checks names and sizes, naming the offending entry.
fn check_entries(entries: &[Entry]) -> Result<(), SafetensorsError> {
    let mut seen = std::collections::HashSet::new();
    for (name, dtype, shape, data) in entries {
        if name.is_empty() || name == "__metadata__" {
            return Err(SafetensorsError::Write(format!("invalid tensor name '{name}'")));
        }
        if !seen.insert(name.as_str()) {
            return Err(SafetensorsError::Write(format!("duplicate tensor name '{name}'")));
        }
        let n: Option<usize> = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let expected = n.and_then(|n| n.checked_mul(bits(*dtype))).map(|b| b.div_ceil(8));
        if expected != Some(data.len()) {
            return Err(SafetensorsError::Write(format!(
                "tensor '{name}' ({dtype} {shape:?}) needs {} bytes but has {}",
                expected.map_or("too many".into(), |e| e.to_string()),
                data.len()
            )));
        }
    }
    Ok(())
}

/// The safetensors file for `entries` (in their order) with `metadata` as `__metadata__`, keys
/// sorted: the same entries give the same bytes in every process (the `safetensors` crate's
/// serializer writes the metadata in `HashMap` order, which is not).
pub fn serialize(entries: &[Entry], metadata: HashMap<String, String>) -> Result<Vec<u8>, SafetensorsError> {
    check_entries(entries)?;
    let plan =
        entries.iter().map(|(name, dtype, shape, _)| Slot { name: name.clone(), dtype: *dtype, shape: shape.clone() });
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = StreamWriter::begin(&mut out, plan.collect(), metadata)?;
    for (name, dtype, shape, data) in entries {
        w.write(name, *dtype, shape, data)?;
    }
    w.finish()?;
    Ok(out.into_inner())
}

/// Writes `entries` to `path`: the bytes of [`serialize`].
#[cfg(not(target_arch = "wasm32"))]
pub fn write_safetensors(
    path: &Path,
    entries: &[Entry],
    metadata: HashMap<String, String>,
) -> Result<(), SafetensorsError> {
    let bytes = serialize(entries, metadata)?;
    std::fs::write(path, bytes).map_err(|e| SafetensorsError::Write(format!("{}: {e}", path.display())))
}

/// The safetensors dtype of a float ggml type.
pub fn float_dtype(ty: crate::formats::GgmlType) -> Option<Dtype> {
    match ty {
        crate::formats::GgmlType::F32 => Some(Dtype::F32),
        crate::formats::GgmlType::F16 => Some(Dtype::F16),
        crate::formats::GgmlType::BF16 => Some(Dtype::BF16),
        _ => None,
    }
}

/// The entries storing quantized tensor `q` under `name`; `shape` is the PyTorch shape of the
/// original tensor (its product must equal `q.shape().len()`).
pub fn quantized_entries(name: &str, q: &QuantizedTensor, shape: &[usize]) -> Result<Vec<Entry>, SafetensorsError> {
    match q {
        QuantizedTensor::Ggml(t) => match float_dtype(t.ty) {
            Some(dtype) => Ok(vec![(name.to_string(), dtype, shape.to_vec(), t.data.clone())]),
            None => Err(SafetensorsError::Write(format!(
                "{} is a ggml block type; write it to a .gguf file",
                t.ty.name().to_lowercase()
            ))),
        },
        QuantizedTensor::Int(t) => {
            let (rows, cols) = (t.shape.rows, t.shape.cols);
            let codes_shape = if t.bits == 8 { vec![rows, cols] } else { vec![t.packed.len()] };
            let scale_shape = group_shape(&t.scheme, rows, cols, t.scales.len());
            let group_wise = matches!(t.scheme.granularity, crate::formats::Granularity::Group(_));
            let (dtype, scale_bytes) = if group_wise {
                (Dtype::F16, t.scales.iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect())
            } else {
                (Dtype::F32, t.scales.iter().flat_map(|x| x.to_le_bytes()).collect())
            };
            let mut out = vec![
                (name.to_string(), Dtype::U8, codes_shape, t.packed.clone()),
                (format!("{name}.scale"), dtype, scale_shape.clone(), scale_bytes),
            ];
            if !t.zero_points.is_empty() {
                out.push((format!("{name}.zero_point"), Dtype::U8, scale_shape, t.zero_points.clone()));
            }
            let dims: Vec<u8> = shape.iter().flat_map(|&d| (d as i64).to_le_bytes()).collect();
            out.push((format!("{name}.shape"), Dtype::I64, vec![shape.len()], dims));
            Ok(out)
        }
        QuantizedTensor::Fp8(t) => {
            let dtype = match t.scheme.value {
                crate::formats::ValueType::Fp8E4M3 => Dtype::F8_E4M3,
                _ => Dtype::F8_E5M2,
            };
            let scale_shape = group_shape(&t.scheme, t.shape.rows, t.shape.cols, t.scales.len());
            Ok(vec![
                (name.to_string(), dtype, shape.to_vec(), t.data.clone()),
                (
                    format!("{name}.scale"),
                    Dtype::F32,
                    scale_shape,
                    t.scales.iter().flat_map(|x| x.to_le_bytes()).collect(),
                ),
            ])
        }
        // The exact layout transformers writes for bitsandbytes 4-bit weights.
        QuantizedTensor::Bnb4(t) => Ok(crate::formats::bnb::safetensors_entries(name, t)),
    }
}

/// The shape of a per-group parameter tensor: `[1]`, `[rows]` or `[rows, groups per row]`.
pub(crate) fn group_shape(scheme: &crate::formats::QuantScheme, rows: usize, cols: usize, n: usize) -> Vec<usize> {
    use crate::formats::Granularity;
    match scheme.granularity {
        Granularity::Tensor => vec![n],
        Granularity::Channel => vec![rows],
        Granularity::Group(g) if rows * (cols / g as usize) == n => vec![rows, cols / g as usize],
        Granularity::Group(_) => vec![n],
    }
}
