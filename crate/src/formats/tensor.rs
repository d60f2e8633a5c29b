//! The types and checks every format family shares: [`TensorShape`], the errors
//! ([`FormatError`], [`QuantError`]) and the input checks each quantizer runs first.
//!
//! A leaf of `formats`: it uses only the scheme and the ggml type list, so the families
//! (`int`, `bnb`, `fp8`, `ggml`) and the dispatching [`super::quantized`] can all use it
//! without depending on each other.

use serde::Serialize;

use super::ggml_type::GgmlType;
use super::scheme::QuantScheme;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormatError {
    #[error("{0} is not supported yet by this operation (see formats::can_dequantize / can_quantize)")]
    Unsupported(GgmlType),
    #[error("{ty}: {n_values} values are not a whole number of {block}-value blocks")]
    NotWholeBlocks { ty: GgmlType, n_values: usize, block: usize },
    #[error("{ty}: expected {expected} bytes for {n_values} values, got {got}")]
    WrongByteCount { ty: GgmlType, n_values: usize, expected: usize, got: usize },
    /// Quantizer input holds a NaN or an infinity at `index` (the first such position).
    #[error("input value {index} is NaN or infinite; quantizers accept finite values only")]
    NonFinite { index: usize },
    /// An importance vector (imatrix entry) whose length is not the row's.
    #[error("{got} importance values for a row of {n_values}")]
    ImportanceLength { n_values: usize, got: usize },
    /// An importance value that is negative, NaN or infinite (at `index`, the first such).
    #[error("importance value {index} is negative, NaN or infinite")]
    BadImportance { index: usize },
}

/// A weight matrix `[rows, cols]`, row-major: `cols` is the row length (ggml's dims[0], the
/// input dimension of a linear layer), `rows` the number of output channels. 1-D tensors are
/// one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TensorShape {
    pub rows: usize,
    pub cols: usize,
}

impl TensorShape {
    pub fn new(rows: usize, cols: usize) -> Self {
        Self { rows, cols }
    }

    pub fn len(&self) -> usize {
        self.rows * self.cols
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuantError {
    #[error("value at row {row}, column {col} is {value}; quantizers accept finite values only")]
    NonFinite { row: usize, col: usize, value: f32 },
    #[error("{scheme}: {reason}")]
    Shape { scheme: String, reason: String },
    #[error("tensor has {got} values but its shape {rows}×{cols} needs {expected}")]
    LengthMismatch { rows: usize, cols: usize, expected: usize, got: usize },
    #[error("invalid scheme {scheme}: {reason}")]
    Scheme { scheme: String, reason: String },
    #[error(transparent)]
    Format(#[from] FormatError),
}

impl QuantError {
    pub(crate) fn shape(scheme: &QuantScheme, reason: impl Into<String>) -> Self {
        QuantError::Shape { scheme: scheme.name(), reason: reason.into() }
    }
}

/// The group of flattened weight `index` when groups are contiguous runs of `group_len`
/// weights; a `group_len` of 0 means one group (a per-tensor scale, or not supported).
pub(crate) fn group_index(index: usize, group_len: usize) -> usize {
    index.checked_div(group_len).unwrap_or(0)
}

/// Refuses NaN/Inf before any quantizer runs, naming the first bad position.
pub fn check_finite(values: &[f32], shape: TensorShape) -> Result<(), QuantError> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => {
            Err(QuantError::NonFinite { row: i / shape.cols.max(1), col: i % shape.cols.max(1), value: values[i] })
        }
    }
}

/// The checks every quantizer makes before it runs: a valid scheme, exactly as many values as
/// the shape holds, and all of them finite. Each family's `quantize` calls it, so calling a
/// family directly is as safe as going through [`quantize`].
pub fn check_input(scheme: &QuantScheme, values: &[f32], shape: TensorShape) -> Result<(), QuantError> {
    scheme.validate().map_err(|reason| QuantError::Scheme { scheme: scheme.name(), reason })?;
    if values.len() != shape.len() {
        return Err(QuantError::LengthMismatch {
            rows: shape.rows,
            cols: shape.cols,
            expected: shape.len(),
            got: values.len(),
        });
    }
    check_finite(values, shape)
}
