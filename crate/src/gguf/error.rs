//! Errors of the GGUF reader, worded for the person who picked the file.

use crate::formats::{GgmlType, TypeIdError};

/// Everything that can be wrong with a GGUF file (or with the prefix of it we were given).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GgufError {
    #[error("empty file (0 bytes), not a GGUF file")]
    Empty,

    #[error("not a GGUF file (magic is '{found}', expected 'GGUF')")]
    BadMagic { found: String },

    #[error("big-endian GGUF files are not supported (the version field reads {raw:#010x}, i.e. version {swapped} byte-swapped); convert the model on a little-endian machine")]
    BigEndian { raw: u32, swapped: u32 },

    #[error("GGUF version 1 is not supported (pre-release format from 2023 with 32-bit lengths); re-convert the model with a current llama.cpp")]
    Version1,

    #[error("unsupported GGUF version {0} (this reader understands versions 2 and 3)")]
    UnsupportedVersion(u32),

    /// The bytes ran out: either the prefix we were handed (`available < file_len`: read more
    /// and retry, see [`GgufError::needed_bytes`]) or the file itself.
    #[error("{}", truncated_message(context, *needed, *available, *file_len))]
    Truncated {
        context: String,
        /// Prefix length that would let the reader get past this point (may exceed `file_len`).
        needed: u64,
        /// Bytes the reader had (the prefix length).
        available: u64,
        file_len: u64,
    },

    #[error("file is truncated: tensor '{tensor}' needs bytes {start}..{end} but the file has {file_len} bytes")]
    TensorOutOfBounds { tensor: String, start: u64, end: u64, file_len: u64 },

    #[error("inconsistent GGUF header: {0}")]
    Inconsistent(String),

    #[error("invalid UTF-8 in {0}")]
    InvalidUtf8(String),

    #[error("metadata key '{key}' has unknown value type id {id} (known ids are 0–12)")]
    UnknownValueType { key: String, id: u32 },

    #[error("duplicate metadata key '{0}'")]
    DuplicateKey(String),

    #[error("duplicate tensor name '{0}'")]
    DuplicateTensor(String),

    #[error("tensor '{tensor}' has {n_dims} dimensions; GGUF/ggml allows at most 4")]
    TooManyDims { tensor: String, n_dims: u32 },

    #[error("tensor '{tensor}' has an invalid shape {dims:?}: {reason}")]
    BadDims { tensor: String, dims: Vec<u64>, reason: String },

    #[error("tensor '{tensor}': {source}")]
    TensorType { tensor: String, source: TypeIdError },

    #[error(
        "tensor '{tensor}' has type {ty} but its row length {row_len} is not a multiple of the {block}-value block"
    )]
    RowNotBlockMultiple { tensor: String, ty: GgmlType, row_len: u64, block: u64 },

    #[error("bad general.alignment: {0}")]
    BadAlignment(String),

    #[error("tensor '{tensor}' has offset {offset}, which is not a multiple of the alignment {alignment}")]
    Misaligned { tensor: String, offset: u64, alignment: u64 },

    #[error("tensors '{first}' (bytes {first_start}..{first_end}) and '{second}' (bytes {second_start}..{second_end}) overlap")]
    Overlap { first: String, first_start: u64, first_end: u64, second: String, second_start: u64, second_end: u64 },

    #[error("tensor '{tensor}' does not belong to this file or the buffer is not the whole file: {reason}")]
    BadTensorRequest { tensor: String, reason: String },
}

fn truncated_message(context: &str, needed: u64, available: u64, file_len: u64) -> String {
    if available < file_len && needed <= file_len {
        format!(
            "truncated header read: {context} needs the first {needed} bytes but only {available} of the file's {file_len} bytes were read (read more and retry)"
        )
    } else {
        format!(
            "file is truncated or corrupt: {context} needs the first {needed} bytes but the file has {file_len} bytes"
        )
    }
}

impl GgufError {
    /// True when the data ran out: the header did not fit in the prefix, or the file itself
    /// is shorter than its header or tensors claim.
    pub fn is_truncated(&self) -> bool {
        matches!(self, GgufError::Truncated { .. } | GgufError::TensorOutOfBounds { .. })
    }

    /// The retry hint for callers that read a growing prefix: `Some(n)` if reading the first
    /// `n` bytes (`n <= file_len`) lets the parse get further; `None` if more bytes cannot help
    /// (any other error, or the file itself is too short).
    pub fn needed_bytes(&self) -> Option<u64> {
        match self {
            GgufError::Truncated { needed, available, file_len, .. } if available < file_len && needed <= file_len => {
                Some(*needed)
            }
            _ => None,
        }
    }
}
