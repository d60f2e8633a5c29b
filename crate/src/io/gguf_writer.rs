//! A GGUF v3 writer whose output llama.cpp's loader accepts.
//!
//! The layout rules are those `gguf_init_from_reader` (ggml/src/gguf.cpp) enforces when it
//! loads a file, and that `gguf_write_out` / `gguf_add_tensor` follow when llama.cpp writes one:
//!
//! - header: `"GGUF"`, u32 version (3), i64 tensor count, i64 KV count; then the KVs in order,
//!   then the tensor infos in order (name, u32 n_dims, i64 ne[n_dims], i32 type, u64 offset).
//! - keys are non-empty and unique ("key %d is empty", "duplicate key"); `general.alignment`,
//!   when present, must be a **u32** ("key '%s' must be of type u32") and a nonzero power of two
//!   ("alignment %zu is not a power of 2"). [`GgufWriter`] writes the key only when the
//!   alignment is not the default 32, as llama.cpp does.
//! - arrays hold scalars or strings: llama.cpp's reader rejects an array whose element type is
//!   ARRAY ("has invalid GGUF type"). Nested arrays are still written (gguf-py reads them, and
//!   our reader round-trips them); [`GgufWriter::llama_cpp_problems`] lists them.
//! - tensor names are shorter than `GGML_MAX_NAME` (64) bytes ("tensor name %d is too long")
//!   and unique; at most `GGML_MAX_DIMS` (4) dims; `ne[0]` is a multiple of the type's block
//!   size ("not a multiple of block size").
//! - the data section starts at the end of the tensor infos padded with zeros to the alignment
//!   (`gr.seek(GGML_PAD(gr.tell(), ctx->alignment))`).
//! - tensor offsets are relative to the data section and must be exactly the running sum of
//!   the previous tensors' sizes each padded to the alignment, in declaration order
//!   (`if (ti.offset != ctx->size) ... "has offset %, expected %"`, then
//!   `ctx->size += GGML_PAD(ggml_nbytes(&ti.t), ctx->alignment)`).
//! - every tensor, the last one included, is followed by zero padding to the alignment
//!   (`write_tensor_data` ends with `pad(alignment)`), so the data section is `ctx->size` bytes
//!   long, which llama.cpp reads in one piece when it loads the blob.
//!
//! Dimensions are rejected when zero (our reader refuses them too, although llama.cpp would
//! accept an empty tensor).

use crate::formats::GgmlType;
use crate::gguf::{MetadataArray, MetadataValue, TensorInfo, DEFAULT_ALIGNMENT, MAX_ALIGNMENT, MAX_DIMS};
use std::collections::HashSet;
use std::io::Write;

/// The GGUF version written (llama.cpp's `GGUF_VERSION`).
pub const GGUF_VERSION: u32 = 3;
/// ggml's `GGML_MAX_NAME`: a tensor name must be shorter than this many bytes.
pub const GGML_MAX_NAME: usize = 64;
/// `general.quantization_version` written by llama.cpp's quantizer (`GGML_QNT_VERSION`).
pub const GGML_QNT_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GgufWriteError {
    #[error("metadata key #{0} is empty (llama.cpp rejects empty keys)")]
    EmptyKey(usize),
    #[error("duplicate metadata key '{0}'")]
    DuplicateKey(String),
    #[error("general.alignment must be a u32 power of two, got {0}")]
    BadAlignment(String),
    #[error("duplicate tensor name '{0}'")]
    DuplicateTensor(String),
    #[error("tensor name '{name}' is {len} bytes; GGUF/ggml allows at most {max}", max = GGML_MAX_NAME - 1)]
    NameTooLong { name: String, len: usize },
    #[error("tensor '{tensor}' has {n_dims} dimensions; GGUF/ggml allows 1 to {MAX_DIMS}")]
    BadDimCount { tensor: String, n_dims: usize },
    #[error("tensor '{tensor}' has an invalid shape {dims:?}: {reason}")]
    BadDims { tensor: String, dims: Vec<u64>, reason: String },
    #[error(
        "tensor '{tensor}' has type {ty} but its row length {row_len} is not a multiple of the {block}-value block"
    )]
    RowNotBlockMultiple { tensor: String, ty: GgmlType, row_len: u64, block: u64 },
    #[error("tensor '{tensor}': expected {expected} bytes of {ty} data, got {got}")]
    WrongDataSize { tensor: String, ty: GgmlType, expected: u64, got: u64 },
    #[error("the data for tensor #{index} was requested but only {count} tensors were declared")]
    NoSuchTensor { index: usize, count: usize },
    #[error("write failed: {0}")]
    Io(String),
    /// The tensor-data callback failed (e.g. a NaN found while quantizing); passed through.
    #[error("{0}")]
    Source(String),
}

impl From<std::io::Error> for GgufWriteError {
    fn from(e: std::io::Error) -> Self {
        GgufWriteError::Io(e.to_string())
    }
}

/// `GGML_PAD(x, n)` for a power-of-two `n`.
pub const fn pad(x: u64, alignment: u64) -> u64 {
    (x + alignment - 1) & !(alignment - 1)
}

/// A GGUF file being assembled: metadata in order, tensor infos with their offsets.
///
/// Declare everything first ([`GgufWriter::set`], [`GgufWriter::add_tensor`]), then stream the
/// file with [`GgufWriter::write`], which asks for each tensor's bytes in declaration order, so a
/// caller can quantize one tensor at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufWriter {
    metadata: Vec<(String, MetadataValue)>,
    tensors: Vec<TensorInfo>,
    alignment: u64,
    /// Size of the data section so far (sum of padded tensor sizes).
    data_size: u64,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl GgufWriter {
    /// An empty file with the default alignment (32).
    pub fn new() -> Self {
        GgufWriter { metadata: Vec::new(), tensors: Vec::new(), alignment: DEFAULT_ALIGNMENT, data_size: 0 }
    }

    /// Starts from existing metadata (e.g. a source file's, in its order). Keys must be
    /// non-empty and unique; `general.alignment`, if present, sets the alignment.
    pub fn with_metadata(metadata: Vec<(String, MetadataValue)>) -> Result<Self, GgufWriteError> {
        let mut seen = HashSet::new();
        for (i, (k, _)) in metadata.iter().enumerate() {
            if k.is_empty() {
                return Err(GgufWriteError::EmptyKey(i));
            }
            if !seen.insert(k.as_str()) {
                return Err(GgufWriteError::DuplicateKey(k.clone()));
            }
        }
        let mut w = Self::new();
        if let Some((_, v)) = metadata.iter().find(|(k, _)| k == "general.alignment") {
            w.alignment = check_alignment(v)?;
        }
        w.metadata = metadata;
        Ok(w)
    }

    pub fn metadata(&self) -> &[(String, MetadataValue)] {
        &self.metadata
    }

    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Sets `key` to `value`: replaced in place if the key exists (keeping the file order),
    /// appended otherwise. Setting `general.alignment` is allowed only before tensors are added.
    pub fn set(&mut self, key: &str, value: MetadataValue) -> Result<(), GgufWriteError> {
        if key.is_empty() {
            return Err(GgufWriteError::EmptyKey(self.metadata.len()));
        }
        if key == "general.alignment" {
            let a = check_alignment(&value)?;
            if !self.tensors.is_empty() && a != self.alignment {
                return Err(GgufWriteError::BadAlignment("cannot change the alignment after adding tensors".into()));
            }
            self.alignment = a;
        }
        match self.metadata.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => self.metadata.push((key.to_string(), value)),
        }
        Ok(())
    }

    /// Sets the alignment; the `general.alignment` key is written only when it is not 32.
    pub fn set_alignment(&mut self, alignment: u32) -> Result<(), GgufWriteError> {
        if alignment as u64 == DEFAULT_ALIGNMENT {
            check_alignment(&MetadataValue::U32(alignment))?;
            if !self.tensors.is_empty() && self.alignment != DEFAULT_ALIGNMENT {
                return Err(GgufWriteError::BadAlignment("cannot change the alignment after adding tensors".into()));
            }
            self.remove("general.alignment");
            self.alignment = DEFAULT_ALIGNMENT;
            Ok(())
        } else {
            self.set("general.alignment", MetadataValue::U32(alignment))
        }
    }

    /// Removes `key`; returns its value if it was there.
    pub fn remove(&mut self, key: &str) -> Option<MetadataValue> {
        let i = self.metadata.iter().position(|(k, _)| k == key)?;
        if key == "general.alignment" && self.tensors.is_empty() {
            self.alignment = DEFAULT_ALIGNMENT;
        }
        Some(self.metadata.remove(i).1)
    }

    /// Declares a tensor (`dims` in ggml order, row length first) and returns its info with the
    /// offset llama.cpp expects: the previous offset plus the previous size padded to the
    /// alignment (`gguf_add_tensor`).
    pub fn add_tensor(&mut self, name: &str, dims: &[u64], ty: GgmlType) -> Result<&TensorInfo, GgufWriteError> {
        if name.len() >= GGML_MAX_NAME {
            return Err(GgufWriteError::NameTooLong { name: name.to_string(), len: name.len() });
        }
        if self.tensors.iter().any(|t| t.name == name) {
            return Err(GgufWriteError::DuplicateTensor(name.to_string()));
        }
        if dims.is_empty() || dims.len() > MAX_DIMS as usize {
            return Err(GgufWriteError::BadDimCount { tensor: name.to_string(), n_dims: dims.len() });
        }
        let bad = |reason: &str| GgufWriteError::BadDims {
            tensor: name.to_string(),
            dims: dims.to_vec(),
            reason: reason.to_string(),
        };
        if dims.contains(&0) {
            return Err(bad("a dimension is zero"));
        }
        // llama.cpp stores ne as int64 and requires the element count to stay below INT64_MAX.
        let n_elements = dims
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .filter(|&n| n < i64::MAX as u64)
            .ok_or_else(|| bad("the element count overflows"))?;
        let block = ty.block_size() as u64;
        if !dims[0].is_multiple_of(block) {
            return Err(GgufWriteError::RowNotBlockMultiple { tensor: name.to_string(), ty, row_len: dims[0], block });
        }
        let n_bytes = ty.bytes_for(n_elements).ok_or_else(|| bad("the byte size overflows"))?;
        let offset = self.data_size;
        self.data_size = offset
            .checked_add(n_bytes)
            .and_then(|e| e.checked_add(self.alignment - 1))
            .map(|e| e & !(self.alignment - 1))
            .ok_or_else(|| bad("the data section size overflows"))?;
        self.tensors.push(TensorInfo { name: name.to_string(), dims: dims.to_vec(), ty, offset });
        Ok(self.tensors.last().expect("just pushed"))
    }

    /// Things llama.cpp's loader would reject that this writer allows (nested metadata arrays).
    pub fn llama_cpp_problems(&self) -> Vec<String> {
        self.metadata
            .iter()
            .filter(|(_, v)| matches!(v, MetadataValue::Array(MetadataArray::Array(_))))
            .map(|(k, _)| format!("metadata key '{k}' is an array of arrays, which llama.cpp cannot read"))
            .collect()
    }

    /// The header: magic, counts, metadata, tensor infos, zero padding up to the data section.
    pub fn header_bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"GGUF");
        b.extend_from_slice(&GGUF_VERSION.to_le_bytes());
        b.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        b.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            put_str(&mut b, k);
            b.extend_from_slice(&v.value_type().id().to_le_bytes());
            put_value(&mut b, v);
        }
        for t in &self.tensors {
            put_str(&mut b, &t.name);
            b.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                b.extend_from_slice(&d.to_le_bytes());
            }
            b.extend_from_slice(&t.ty.id().to_le_bytes());
            b.extend_from_slice(&t.offset.to_le_bytes());
        }
        b.resize(pad(b.len() as u64, self.alignment) as usize, 0);
        b
    }

    /// Total file size: header (padded) plus the data section.
    pub fn file_len(&self) -> u64 {
        self.header_bytes().len() as u64 + self.data_size
    }

    /// Writes the whole file to `out`. `data(i, info)` returns the bytes of tensor `i` (exactly
    /// `info.n_bytes()` of them); it is called once per tensor, in declaration order. Returns the
    /// number of bytes written.
    pub fn write<W, F, B>(&self, out: &mut W, mut data: F) -> Result<u64, GgufWriteError>
    where
        W: Write,
        F: FnMut(usize, &TensorInfo) -> Result<B, GgufWriteError>,
        B: AsRef<[u8]>,
    {
        let header = self.header_bytes();
        out.write_all(&header)?;
        let mut written = 0u64;
        let zeros = vec![0u8; self.alignment as usize];
        for (i, t) in self.tensors.iter().enumerate() {
            debug_assert_eq!(written, t.offset);
            let bytes = data(i, t)?;
            let bytes = bytes.as_ref();
            let expected = t.n_bytes();
            if bytes.len() as u64 != expected {
                return Err(GgufWriteError::WrongDataSize {
                    tensor: t.name.clone(),
                    ty: t.ty,
                    expected,
                    got: bytes.len() as u64,
                });
            }
            out.write_all(bytes)?;
            let padded = pad(expected, self.alignment);
            out.write_all(&zeros[..(padded - expected) as usize])?;
            written += padded;
        }
        out.flush()?;
        Ok(header.len() as u64 + written)
    }

    /// The whole file in memory, with the tensors' bytes given in declaration order.
    pub fn to_bytes<B: AsRef<[u8]>>(&self, data: &[B]) -> Result<Vec<u8>, GgufWriteError> {
        if data.len() != self.tensors.len() {
            return Err(GgufWriteError::NoSuchTensor { index: data.len(), count: self.tensors.len() });
        }
        let mut out = Vec::with_capacity(self.file_len() as usize);
        self.write(&mut out, |i, _| Ok(data[i].as_ref()))?;
        Ok(out)
    }
}

fn check_alignment(v: &MetadataValue) -> Result<u64, GgufWriteError> {
    match v {
        MetadataValue::U32(a) if *a > MAX_ALIGNMENT => {
            Err(GgufWriteError::BadAlignment(format!("{a} (above the limit of {MAX_ALIGNMENT})")))
        }
        MetadataValue::U32(a) if a.is_power_of_two() => Ok(u64::from(*a)),
        MetadataValue::U32(a) => Err(GgufWriteError::BadAlignment(format!("{a} (not a power of two)"))),
        other => Err(GgufWriteError::BadAlignment(format!("a {} (llama.cpp requires u32)", other.type_name()))),
    }
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as u64).to_le_bytes());
    b.extend_from_slice(s.as_bytes());
}

fn put_value(b: &mut Vec<u8>, v: &MetadataValue) {
    use MetadataValue as M;
    match v {
        M::U8(x) => b.extend_from_slice(&x.to_le_bytes()),
        M::I8(x) => b.extend_from_slice(&x.to_le_bytes()),
        M::U16(x) => b.extend_from_slice(&x.to_le_bytes()),
        M::I16(x) => b.extend_from_slice(&x.to_le_bytes()),
        M::U32(x) => b.extend_from_slice(&x.to_le_bytes()),
        M::I32(x) => b.extend_from_slice(&x.to_le_bytes()),
        M::F32(x) => b.extend_from_slice(&x.to_le_bytes()),
        M::U64(x) => b.extend_from_slice(&x.to_le_bytes()),
        M::I64(x) => b.extend_from_slice(&x.to_le_bytes()),
        M::F64(x) => b.extend_from_slice(&x.to_le_bytes()),
        M::Bool(x) => b.push(u8::from(*x)),
        M::String(s) => put_str(b, s),
        M::Array(a) => put_array(b, a),
    }
}

/// An array body: element type id, u64 count, elements.
fn put_array(b: &mut Vec<u8>, a: &MetadataArray) {
    use MetadataArray as A;
    b.extend_from_slice(&a.element_type().id().to_le_bytes());
    b.extend_from_slice(&(a.len() as u64).to_le_bytes());
    macro_rules! le {
        ($v:expr) => {
            for x in $v {
                b.extend_from_slice(&x.to_le_bytes());
            }
        };
    }
    match a {
        A::U8(v) => b.extend_from_slice(v),
        A::I8(v) => le!(v),
        A::U16(v) => le!(v),
        A::I16(v) => le!(v),
        A::U32(v) => le!(v),
        A::I32(v) => le!(v),
        A::F32(v) => le!(v),
        A::U64(v) => le!(v),
        A::I64(v) => le!(v),
        A::F64(v) => le!(v),
        A::Bool(v) => b.extend(v.iter().map(|&x| u8::from(x))),
        A::String(v) => v.iter().for_each(|s| put_str(b, s)),
        A::Array(v) => v.iter().for_each(|inner| put_array(b, inner)),
    }
}

/// llama.cpp's `llama_ftype` (`general.file_type`) for a file whose weights are mostly `ty`
/// (include/llama.h). The K-quant ftypes come in _S/_M/_L mixes; a file with every weight in one
/// K type is closest to the `_S` ("small") mix, whose default type that is (llama-quant.cpp maps
/// Q3_K_S/Q4_K_S/Q5_K_S to `default_type` Q3_K/Q4_K/Q5_K), so those are used. None for types no
/// ftype names.
pub fn llama_ftype(ty: GgmlType) -> Option<u32> {
    use GgmlType::*;
    Some(match ty {
        F32 => 0,   // LLAMA_FTYPE_ALL_F32
        F16 => 1,   // LLAMA_FTYPE_MOSTLY_F16
        Q4_0 => 2,  // LLAMA_FTYPE_MOSTLY_Q4_0
        Q4_1 => 3,  // LLAMA_FTYPE_MOSTLY_Q4_1
        Q8_0 => 7,  // LLAMA_FTYPE_MOSTLY_Q8_0
        Q5_0 => 8,  // LLAMA_FTYPE_MOSTLY_Q5_0
        Q5_1 => 9,  // LLAMA_FTYPE_MOSTLY_Q5_1
        Q2_K => 10, // LLAMA_FTYPE_MOSTLY_Q2_K
        Q3_K => 11, // LLAMA_FTYPE_MOSTLY_Q3_K_S
        Q4_K => 14, // LLAMA_FTYPE_MOSTLY_Q4_K_S
        Q5_K => 16, // LLAMA_FTYPE_MOSTLY_Q5_K_S
        Q6_K => 18, // LLAMA_FTYPE_MOSTLY_Q6_K
        IQ4_NL => 25,
        IQ4_XS => 30,
        BF16 => 32, // LLAMA_FTYPE_MOSTLY_BF16
        TQ1_0 => 36,
        TQ2_0 => 37,
        _ => return None,
    })
}
