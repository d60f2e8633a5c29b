//! A quantized tensor of any scheme, and the one entry point that makes it: [`quantize`].
//!
//! Each format family owns its payload type (`int::IntTensor`, `bnb::Bnb4Tensor`,
//! `fp8::Fp8Tensor`, [`GgmlTensor`]); this enum only dispatches, so adding a family means one
//! variant and one arm per method — never a lookup by name.

use super::scheme::{QuantScheme, ValueType};
use super::tensor::group_index;
// Re-exported so `formats::quantized::{QuantError, TensorShape, …}` paths keep working.
pub use super::tensor::{check_finite, check_input, QuantError, TensorShape};
use super::GgmlType;
use super::{bnb, dequantize_row, fp8, int, quantize_row_weighted};

/// A tensor stored in a ggml block type: exactly the bytes a GGUF file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct GgmlTensor {
    pub ty: GgmlType,
    pub shape: TensorShape,
    pub data: Vec<u8>,
}

impl GgmlTensor {
    pub fn quantize(ty: GgmlType, values: &[f32], shape: TensorShape) -> Result<Self, QuantError> {
        Self::quantize_weighted(ty, values, shape, None)
    }

    /// [`Self::quantize`] with an importance per column (an imatrix entry), every row through
    /// [`quantize_row_weighted`]; `None` is plain [`super::quantize_row`].
    pub fn quantize_weighted(
        ty: GgmlType,
        values: &[f32],
        shape: TensorShape,
        importance: Option<&[f32]>,
    ) -> Result<Self, QuantError> {
        let scheme = QuantScheme::ggml(ty);
        let block = ty.block_size();
        if !shape.cols.is_multiple_of(block) {
            return Err(QuantError::shape(
                &scheme,
                format!("row length {} is not a multiple of the {block}-value block", shape.cols),
            ));
        }
        let row_bytes = shape.cols / block * ty.type_size();
        let mut data = vec![0u8; row_bytes * shape.rows];
        for (src, dst) in values.chunks_exact(shape.cols.max(1)).zip(data.chunks_exact_mut(row_bytes.max(1))) {
            quantize_row_weighted(ty, src, importance, dst)?;
        }
        Ok(Self { ty, shape, data })
    }

    pub fn dequantize(&self) -> Result<Vec<f32>, QuantError> {
        let mut out = vec![0f32; self.shape.len()];
        dequantize_row(self.ty, &self.data, &mut out)?;
        Ok(out)
    }
}

/// A quantized tensor of any family.
#[derive(Debug, Clone, PartialEq)]
pub enum QuantizedTensor {
    Int(int::IntTensor),
    Bnb4(bnb::Bnb4Tensor),
    Fp8(fp8::Fp8Tensor),
    Ggml(GgmlTensor),
}

/// Quantizes a row-major `[rows, cols]` tensor with `scheme`. NaN/Inf inputs are an error
/// naming the position; a row length the scheme cannot split is an error, never truncated.
pub fn quantize(scheme: &QuantScheme, values: &[f32], shape: TensorShape) -> Result<QuantizedTensor, QuantError> {
    check_input(scheme, values, shape)?;
    Ok(match scheme.value {
        ValueType::Int { .. } => QuantizedTensor::Int(int::IntTensor::quantize(scheme, values, shape)?),
        ValueType::Nf4 | ValueType::Fp4 => QuantizedTensor::Bnb4(bnb::Bnb4Tensor::quantize(scheme, values, shape)?),
        ValueType::Fp8E4M3 | ValueType::Fp8E5M2 => {
            QuantizedTensor::Fp8(fp8::Fp8Tensor::quantize(scheme, values, shape)?)
        }
        ValueType::Ggml { ty } => QuantizedTensor::Ggml(GgmlTensor::quantize(ty, values, shape)?),
    })
}

impl QuantizedTensor {
    pub fn scheme(&self) -> QuantScheme {
        match self {
            QuantizedTensor::Int(t) => t.scheme,
            QuantizedTensor::Bnb4(t) => t.scheme,
            QuantizedTensor::Fp8(t) => t.scheme,
            QuantizedTensor::Ggml(t) => QuantScheme::ggml(t.ty),
        }
    }

    pub fn shape(&self) -> TensorShape {
        match self {
            QuantizedTensor::Int(t) => t.shape,
            QuantizedTensor::Bnb4(t) => t.shape,
            QuantizedTensor::Fp8(t) => t.shape,
            QuantizedTensor::Ggml(t) => t.shape,
        }
    }

    /// The reconstructed values, row-major like the input.
    pub fn dequantize(&self) -> Result<Vec<f32>, QuantError> {
        match self {
            QuantizedTensor::Int(t) => Ok(t.dequantize()),
            QuantizedTensor::Bnb4(t) => Ok(t.dequantize()),
            QuantizedTensor::Fp8(t) => Ok(t.dequantize()),
            QuantizedTensor::Ggml(t) => t.dequantize(),
        }
    }

    /// Decodes row `row` of the `[rows, cols]` tensor into `out` (`out.len() == cols`), equal
    /// bit for bit to `dequantize()[row*cols..(row+1)*cols]`, without expanding the tensor.
    ///
    /// Panics if `row >= rows` or `out` has the wrong length.
    pub fn dequantize_row(&self, row: usize, out: &mut [f32]) -> Result<(), QuantError> {
        match self {
            QuantizedTensor::Int(t) => t.dequantize_row(row, out),
            QuantizedTensor::Bnb4(t) => t.dequantize_row(row, out),
            QuantizedTensor::Fp8(t) => t.dequantize_row(row, out),
            QuantizedTensor::Ggml(t) => {
                let TensorShape { rows, cols } = t.shape;
                assert!(
                    row < rows && out.len() == cols,
                    "row {row} of a {rows}×{cols} tensor into {} values",
                    out.len()
                );
                let rb = cols / t.ty.block_size() * t.ty.type_size();
                dequantize_row(t.ty, &t.data[row * rb..(row + 1) * rb], out)?;
            }
        }
        Ok(())
    }

    /// Every byte the format stores: codes, scales, zero points, absmax, nested
    /// double-quantization state, codebooks.
    pub fn storage_bytes(&self) -> u64 {
        match self {
            QuantizedTensor::Int(t) => t.storage_bytes(),
            QuantizedTensor::Bnb4(t) => t.storage_bytes(),
            QuantizedTensor::Fp8(t) => t.storage_bytes(),
            QuantizedTensor::Ggml(t) => t.data.len() as u64,
        }
    }

    /// Number of groups: sets of weights sharing every decoding parameter (scale, zero point,
    /// block absmax, ggml block or K-quant sub-block). Groups are contiguous runs of
    /// [`Self::group_len`] weights in row-major order. 0 when not supported (see [`Self::codes`]).
    pub fn n_groups(&self) -> usize {
        match self {
            QuantizedTensor::Int(t) => t.n_groups(),
            QuantizedTensor::Bnb4(t) => t.n_blocks(),
            QuantizedTensor::Fp8(t) => t.n_groups(),
            QuantizedTensor::Ggml(t) => super::ggml::levels::n_groups(t.ty, t.shape.len()).unwrap_or(0),
        }
    }

    /// Weights per group (the last group of a per-tensor scheme is the whole tensor); 0 when
    /// not supported.
    pub fn group_len(&self) -> usize {
        match self {
            QuantizedTensor::Int(t) => t.group_len,
            QuantizedTensor::Bnb4(t) => t.block(),
            QuantizedTensor::Fp8(t) => t.group_len,
            QuantizedTensor::Ggml(t) => super::ggml::levels::group_len(t.ty).unwrap_or(0),
        }
    }

    /// The group of flattened weight `index`.
    pub fn group_of(&self, index: usize) -> usize {
        group_index(index, self.group_len())
    }

    /// The values group `group`'s codes can decode to, ascending, without duplicates: the
    /// levels to overlay on a histogram. Empty when the family/type does not support it yet
    /// (F16/BF16/F32, IQ types).
    pub fn levels(&self, group: usize) -> Vec<f32> {
        match self {
            QuantizedTensor::Int(t) => t.levels(group),
            QuantizedTensor::Bnb4(t) => {
                // Bnb4Tensor::levels is in code order; FP4 decodes codes 0 and 8 to +0 and -0.
                let mut levels = t.levels(group);
                super::int::sort_unique(&mut levels);
                levels
            }
            QuantizedTensor::Fp8(t) => t.levels(group),
            QuantizedTensor::Ggml(t) => super::ggml::levels::levels(t.ty, &t.data, group).unwrap_or_default(),
        }
    }

    /// One code per weight, row-major (the stored integer, FP8 byte or ggml quant; see each
    /// family's docs for its meaning). Empty when not supported (as [`Self::levels`]).
    pub fn codes(&self) -> Vec<u8> {
        match self {
            QuantizedTensor::Int(t) => t.codes(),
            QuantizedTensor::Bnb4(t) => t.codes(),
            QuantizedTensor::Fp8(t) => t.codes(),
            QuantizedTensor::Ggml(t) => super::ggml::levels::codes(t.ty, &t.data).unwrap_or_default(),
        }
    }

    /// Stored bits per weight, counting everything in [`Self::storage_bytes`].
    pub fn bits_per_weight(&self) -> f64 {
        let n = self.shape().len();
        if n == 0 {
            0.0
        } else {
            self.storage_bytes() as f64 * 8.0 / n as f64
        }
    }
}
