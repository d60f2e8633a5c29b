//! The GGUF header reader.
//!
//! Untrusted input: every length and count is checked against the bytes that remain before
//! anything is allocated for it (an array of `n` u32 needs `4n` bytes, a string array at least
//! `8n`), all offset arithmetic is checked, and nested arrays are limited in depth, so a corrupt
//! or hostile file gives an error, never a panic or a giant allocation.

use super::cursor::Cursor;
use super::error::GgufError;
use super::metadata::{MetadataArray, MetadataValue, ValueType};
use crate::formats::GgmlType;
use std::collections::HashSet;

/// Data-section alignment when the file has no `general.alignment`.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// The largest `general.alignment` accepted. The alignment sizes padding buffers, so a hostile
/// 2^31 would ask for gigabytes of zeros; real files use 32 (a few use 64).
pub const MAX_ALIGNMENT: u32 = 1 << 16;
/// ggml's `GGML_MAX_DIMS`.
pub const MAX_DIMS: u32 = 4;

/// A parsed GGUF header. Tensor bytes are not copied; see [`GgufFile::tensor_data`].
#[derive(Debug, Clone, PartialEq)]
pub struct GgufFile {
    pub version: u32,
    /// Key/value pairs in file order (keys are unique).
    pub metadata: Vec<(String, MetadataValue)>,
    /// Tensor infos in file order (names are unique).
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Absolute file offset of the data section (tensor offsets are relative to it).
    pub data_offset: u64,
    pub file_len: u64,
}

/// One tensor's entry in the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` is the contiguous row length (PyTorch shape reversed).
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Offset relative to the data section.
    pub offset: u64,
}

/// Where the data section starts: accepts a `&GgufFile` or a plain `data_offset`.
pub trait DataStart {
    fn data_start(&self) -> u64;
}

impl DataStart for u64 {
    fn data_start(&self) -> u64 {
        *self
    }
}

impl DataStart for &GgufFile {
    fn data_start(&self) -> u64 {
        self.data_offset
    }
}

impl TensorInfo {
    /// Product of the dims (saturating; parsed tensors are checked not to overflow).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().fold(1u64, |a, &d| a.saturating_mul(d))
    }

    /// Stored size in bytes. Exact for parsed tensors (whole blocks, no overflow).
    pub fn n_bytes(&self) -> u64 {
        let (block, size) = self.ty.block_layout();
        self.n_elements().div_ceil(block as u64).saturating_mul(size as u64)
    }

    /// Absolute file offset of the first byte (saturating).
    pub fn absolute_offset(&self, data: impl DataStart) -> u64 {
        data.data_start().saturating_add(self.offset)
    }

    /// Values per row (`dims[0]`); 1 for a 0-dimensional tensor.
    pub fn row_len(&self) -> u64 {
        self.dims.first().copied().unwrap_or(1)
    }

    pub fn n_rows(&self) -> u64 {
        self.n_elements() / self.row_len().max(1)
    }

    /// Stored bits per weight of the tensor's type (scales and minimums included).
    pub fn bits_per_weight(&self) -> f64 {
        self.ty.bits_per_weight()
    }

    /// The PyTorch-order shape (`dims` reversed).
    pub fn torch_shape(&self) -> Vec<u64> {
        self.dims.iter().rev().copied().collect()
    }
}

impl GgufFile {
    /// Parses the header from `prefix`, the first bytes of a file of `file_len` bytes (the whole
    /// file is fine too). If the header does not fit in `prefix`, the error
    /// [`is_truncated`](GgufError::is_truncated) and [`needed_bytes`](GgufError::needed_bytes)
    /// says how much to read before retrying. Tensor bounds are checked against `file_len`.
    /// A `file_len` smaller than the prefix is taken to be the prefix length.
    pub fn parse(prefix: &[u8], file_len: u64) -> Result<GgufFile, GgufError> {
        let file_len = file_len.max(prefix.len() as u64);
        if file_len == 0 {
            return Err(GgufError::Empty);
        }
        let mut c = Cursor { buf: prefix, pos: 0, file_len };
        if file_len < 4 {
            return Err(GgufError::BadMagic { found: escape_bytes(prefix) });
        }
        let magic = c.take(4, &|| "the 4-byte magic".into())?;
        if magic != b"GGUF" {
            return Err(GgufError::BadMagic { found: escape_bytes(magic) });
        }
        let version = c.u32(&|| "the version field".into())?;
        match version {
            2 | 3 => {}
            1 => return Err(GgufError::Version1),
            v if matches!(v.swap_bytes(), 1..=3) => {
                return Err(GgufError::BigEndian { raw: v, swapped: v.swap_bytes() })
            }
            v => return Err(GgufError::UnsupportedVersion(v)),
        }
        let n_tensors = c.u64(&|| "the tensor count".into())?;
        let n_kv = c.u64(&|| "the metadata count".into())?;

        // Each key/value needs at least 8 (key length) + 4 (type) + 1 bytes.
        c.ensure_count(n_kv, 13, &|| format!("the header's {n_kv} metadata entries"))?;
        let mut metadata = Vec::with_capacity(c.as_usize(n_kv)?);
        let mut keys = HashSet::new();
        for i in 0..n_kv {
            let key = c.string(&|| format!("metadata key #{i}"))?;
            let type_id = c.u32(&|| format!("the type of metadata key '{key}'"))?;
            let ty = ValueType::from_id(type_id)
                .ok_or_else(|| GgufError::UnknownValueType { key: key.clone(), id: type_id })?;
            let value = c.value(ty, &key)?;
            if !keys.insert(key.clone()) {
                return Err(GgufError::DuplicateKey(key));
            }
            metadata.push((key, value));
        }
        let alignment = alignment_of(&metadata)?;

        // Each tensor info needs at least 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset).
        c.ensure_count(n_tensors, 24, &|| format!("the header's {n_tensors} tensor infos"))?;
        let mut tensors = Vec::with_capacity(c.as_usize(n_tensors)?);
        for i in 0..n_tensors {
            tensors.push(tensor_info(&mut c, i, alignment)?);
        }
        let mut names = HashSet::new();
        for t in &tensors {
            if !names.insert(t.name.as_str()) {
                return Err(GgufError::DuplicateTensor(t.name.clone()));
            }
        }

        let header_end = c.pos as u64;
        let data_offset = header_end
            .checked_next_multiple_of(alignment)
            .ok_or_else(|| GgufError::Inconsistent("data offset overflows".into()))?;
        check_tensor_layout(&tensors, data_offset, file_len)?;
        Ok(GgufFile { version, metadata, tensors, alignment, data_offset, file_len })
    }

    pub fn get(&self, key: &str) -> Option<&MetadataValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }

    /// Any integer type holding a non-negative value.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key)?.as_u64()
    }

    /// Floats, or integers converted.
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key)?.as_f64()
    }

    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key)?.as_bool()
    }

    pub fn get_array(&self, key: &str) -> Option<&MetadataArray> {
        self.get(key)?.as_array()
    }

    /// `general.architecture`, e.g. "llama".
    pub fn architecture(&self) -> Option<&str> {
        self.get_str("general.architecture")
    }

    /// `<architecture>.<suffix>`, e.g. `arch_get("attention.head_count")`.
    pub fn arch_get(&self, suffix: &str) -> Option<&MetadataValue> {
        self.get(&format!("{}.{suffix}", self.architecture()?))
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The bytes of tensor `t` within `file`, the whole file (or any prefix covering the tensor).
    pub fn tensor_data<'a>(&self, file: &'a [u8], t: &TensorInfo) -> Result<&'a [u8], GgufError> {
        let bad = |reason: String| GgufError::BadTensorRequest { tensor: t.name.clone(), reason };
        let n_bytes =
            t.ty.bytes_for(t.n_elements())
                .ok_or_else(|| bad(format!("{:?} is not a whole number of blocks", t.dims)))?;
        let start = self.data_offset.checked_add(t.offset).ok_or_else(|| bad("offset overflows".into()))?;
        let end = start.checked_add(n_bytes).ok_or_else(|| bad("size overflows".into()))?;
        let out_of_bounds =
            || GgufError::TensorOutOfBounds { tensor: t.name.clone(), start, end, file_len: file.len() as u64 };
        let (s, e) = (usize::try_from(start), usize::try_from(end));
        match (s, e) {
            (Ok(s), Ok(e)) => file.get(s..e).ok_or_else(out_of_bounds),
            _ => Err(out_of_bounds()),
        }
    }
}

/// Tensor info `i`: name, n_dims, dims, type, offset, with the shape checks that need only
/// the info itself (dims nonzero, no overflow, whole blocks per row, aligned offset).
fn tensor_info(c: &mut Cursor, i: u64, alignment: u64) -> Result<TensorInfo, GgufError> {
    let name = c.string(&|| format!("the name of tensor #{i}"))?;
    let ctx = &|| format!("the info of tensor '{name}'");
    let n_dims = c.u32(ctx)?;
    if n_dims > MAX_DIMS {
        return Err(GgufError::TooManyDims { tensor: name, n_dims });
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        dims.push(c.u64(ctx)?);
    }
    let type_id = c.u32(ctx)?;
    let offset = c.u64(ctx)?;
    let ty = GgmlType::from_id(type_id).map_err(|source| GgufError::TensorType { tensor: name.clone(), source })?;
    let bad = |reason: &str| GgufError::BadDims { tensor: name.clone(), dims: dims.clone(), reason: reason.into() };
    if dims.contains(&0) {
        return Err(bad("a dimension is zero"));
    }
    let n_elements = dims
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= i64::MAX as u64)
        .ok_or_else(|| bad("the element count overflows"))?;
    let block = ty.block_size() as u64;
    let row_len = dims.first().copied().unwrap_or(1);
    if row_len % block != 0 {
        return Err(GgufError::RowNotBlockMultiple { tensor: name, ty, row_len, block });
    }
    if ty.bytes_for(n_elements).is_none() {
        return Err(bad("the byte size overflows"));
    }
    if offset % alignment != 0 {
        return Err(GgufError::Misaligned { tensor: name, offset, alignment });
    }
    Ok(TensorInfo { name, dims, ty, offset })
}

/// `general.alignment`: must be a u32 that is a nonzero power of two, at most [`MAX_ALIGNMENT`].
fn alignment_of(metadata: &[(String, MetadataValue)]) -> Result<u64, GgufError> {
    match metadata.iter().find(|(k, _)| k == "general.alignment") {
        None => Ok(DEFAULT_ALIGNMENT),
        Some((_, MetadataValue::U32(a))) if *a > MAX_ALIGNMENT => {
            Err(GgufError::BadAlignment(format!("{a} is above the limit of {MAX_ALIGNMENT} (MAX_ALIGNMENT)")))
        }
        Some((_, MetadataValue::U32(a))) if a.is_power_of_two() => Ok(u64::from(*a)),
        Some((_, MetadataValue::U32(a))) => Err(GgufError::BadAlignment(format!("{a} is not a nonzero power of two"))),
        Some((_, v)) => Err(GgufError::BadAlignment(format!("it must be a u32, found {}", v.type_name()))),
    }
}

/// Bounds (against `file_len`) and overlap of the tensors' byte ranges.
fn check_tensor_layout(tensors: &[TensorInfo], data_offset: u64, file_len: u64) -> Result<(), GgufError> {
    let mut ranges = Vec::with_capacity(tensors.len());
    for t in tensors {
        // Sizes were checked in `tensor_info`; the arithmetic is checked again for the offsets.
        let start = data_offset.checked_add(t.offset);
        let end = start.and_then(|s| s.checked_add(t.n_bytes()));
        match (start, end) {
            (Some(start), Some(end)) if end <= file_len => ranges.push((start, end, t)),
            _ => {
                return Err(GgufError::TensorOutOfBounds {
                    tensor: t.name.clone(),
                    start: start.unwrap_or(u64::MAX),
                    end: end.unwrap_or(u64::MAX),
                    file_len,
                })
            }
        }
    }
    ranges.sort_by_key(|&(start, end, _)| (start, end));
    for w in ranges.windows(2) {
        let ((s1, e1, a), (s2, e2, b)) = (w[0], w[1]);
        if e1 > s2 {
            return Err(GgufError::Overlap {
                first: a.name.clone(),
                first_start: s1,
                first_end: e1,
                second: b.name.clone(),
                second_start: s2,
                second_end: e2,
            });
        }
    }
    Ok(())
}

/// Shows 4 bytes the way a person would recognise them: `PK\x03\x04`.
fn escape_bytes(b: &[u8]) -> String {
    b.iter().flat_map(|&c| std::ascii::escape_default(c)).map(char::from).collect()
}
