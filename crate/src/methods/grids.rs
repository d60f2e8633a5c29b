//! What GPTQ rounds to: a [`Grid`] sets one group's parameters from the group's current
//! (error-corrected) weights, rounds single weights onto that group's levels, and finally packs
//! the codes and parameters into an existing [`QuantizedTensor`] form, so the result is exactly
//! representable in — and written by — the formats the lab already has.
//!
//! - [`IntGrid`]: the INT sym/asym schemes of [`crate::formats::int`] (per channel or in groups);
//!   parameters, codes and reconstruction are that module's own functions.
//! - [`LegacyGrid`]: the GGUF legacy blocks Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0. A block's `d` (and
//!   `m`) come from ggml's own block quantizer run on the block's current weights, so they are
//!   what `quantize_row_*_ref` would store for those values; each weight is then rounded to the
//!   nearest level `(q − offset)·d` (`q·d + m` for the `_1` types) of the stored f16 scale, and
//!   the blocks are ordinary ggml blocks llama.cpp reads.

use half::f16;

use crate::formats::ggml::{lanes, q4_0, q4_1, q5_0, q5_1, q8_0};
use crate::formats::int::{self, IntTensor, ScaleFit};
use crate::formats::quantized::GgmlTensor;
use crate::formats::{
    GgmlType, Granularity, Mapping, QuantError, QuantScheme, QuantizedTensor, TensorShape, ValueType,
};

/// A quantizer GPTQ can round onto. Groups are runs of [`Grid::group_len`] consecutive columns
/// of a row; each has its own parameters.
pub trait Grid {
    /// One group's parameters.
    type Params: Copy + Send;
    /// Columns per group (divides the row length).
    fn group_len(&self) -> usize;
    /// The parameters of a group whose current weights are `values` (`group_len` of them).
    fn fit(&self, values: &[f32]) -> Self::Params;
    /// The code `w` rounds to in a group with parameters `p`, and the value it decodes to.
    fn round(&self, p: &Self::Params, w: f32) -> (u8, f32);
    /// Packs row-major `codes` and the groups' parameters (row-major, `cols / group_len` per
    /// row) into the format's tensor.
    fn assemble(
        &self,
        shape: TensorShape,
        params: &[Self::Params],
        codes: &[u8],
    ) -> Result<QuantizedTensor, QuantError>;
}

/// An INT scheme of [`crate::formats::int`] with per-channel or per-group parameters.
#[derive(Debug, Clone, Copy)]
pub struct IntGrid {
    scheme: QuantScheme,
    bits: u8,
    symmetric: bool,
    f16_scale: bool,
    group_len: usize,
}

impl IntGrid {
    /// The grid of `scheme` for a `shape` tensor. Per-tensor scales are refused: GPTQ fixes a
    /// group's parameters before it corrects the group's later columns, which one scale shared
    /// by every row cannot follow.
    pub fn new(scheme: &QuantScheme, shape: TensorShape) -> Result<Self, QuantError> {
        let ValueType::Int { bits } = scheme.value else {
            return Err(QuantError::Scheme { scheme: scheme.name(), reason: "not an integer scheme".into() });
        };
        let group_len = match scheme.granularity {
            Granularity::Tensor => {
                return Err(QuantError::Scheme {
                    scheme: scheme.name(),
                    reason: "GPTQ needs per-channel or per-group scales, not one per tensor".into(),
                })
            }
            _ => int::group_len_for(scheme, shape)?,
        };
        Ok(Self {
            scheme: *scheme,
            bits,
            symmetric: scheme.mapping == Mapping::Symmetric,
            f16_scale: matches!(scheme.granularity, Granularity::Group(_)),
            group_len,
        })
    }
}

impl Grid for IntGrid {
    type Params = int::Params;

    fn group_len(&self) -> usize {
        self.group_len
    }

    fn fit(&self, values: &[f32]) -> int::Params {
        int::choose_params(values, self.bits, self.symmetric, self.scheme.range, self.f16_scale)
    }

    fn round(&self, p: &int::Params, w: f32) -> (u8, f32) {
        let code = int::encode(w, *p, self.bits, self.symmetric);
        (code, int::decode(code, *p, self.bits, self.symmetric))
    }

    fn assemble(
        &self,
        shape: TensorShape,
        params: &[int::Params],
        codes: &[u8],
    ) -> Result<QuantizedTensor, QuantError> {
        let saturated_groups = (0..params.len()).filter(|&g| params[g].fit == ScaleFit::Saturated).collect();
        Ok(QuantizedTensor::Int(IntTensor {
            scheme: self.scheme,
            shape,
            bits: self.bits,
            group_len: self.group_len,
            packed: int::pack_codes(codes, self.bits),
            scales: params.iter().map(|p| p.scale).collect(),
            zero_points: if self.symmetric { Vec::new() } else { params.iter().map(|p| p.zero).collect() },
            saturated_groups,
        }))
    }
}

/// The GGUF legacy block types GPTQ can round onto.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyType {
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
}

impl LegacyType {
    pub fn from_ggml(ty: GgmlType) -> Option<Self> {
        Some(match ty {
            GgmlType::Q4_0 => Self::Q4_0,
            GgmlType::Q4_1 => Self::Q4_1,
            GgmlType::Q5_0 => Self::Q5_0,
            GgmlType::Q5_1 => Self::Q5_1,
            GgmlType::Q8_0 => Self::Q8_0,
            _ => return None,
        })
    }

    fn ggml(self) -> GgmlType {
        match self {
            Self::Q4_0 => GgmlType::Q4_0,
            Self::Q4_1 => GgmlType::Q4_1,
            Self::Q5_0 => GgmlType::Q5_0,
            Self::Q5_1 => GgmlType::Q5_1,
            Self::Q8_0 => GgmlType::Q8_0,
        }
    }

    /// `(lowest q, highest q, offset)`: a block decodes `q` to `(q − offset)·d` (`+ m` for the
    /// `_1` types).
    fn quant_range(self) -> (i32, i32, i32) {
        match self {
            Self::Q4_0 => (0, 15, 8),
            Self::Q4_1 => (0, 15, 0),
            Self::Q5_0 => (0, 31, 16),
            Self::Q5_1 => (0, 31, 0),
            Self::Q8_0 => (-127, 127, 0),
        }
    }
}

/// One legacy block's stored scale and minimum (`m` is zero for the types without one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockParams {
    d: f16,
    m: Option<f16>,
}

impl BlockParams {
    /// A `_1` type's block (`x = q·d + m`) with parameters chosen elsewhere (HQQ's solver).
    pub(crate) fn with_min(d: f16, m: f16) -> Self {
        Self { d, m: Some(m) }
    }
}

/// A GGUF legacy block type as GPTQ's quantizer (32-value blocks along a row).
#[derive(Debug, Clone, Copy)]
pub struct LegacyGrid {
    ty: LegacyType,
}

/// Values per legacy block (all five types).
const QK: usize = 32;

impl LegacyGrid {
    pub fn new(ty: LegacyType, shape: TensorShape) -> Result<Self, QuantError> {
        if !shape.cols.is_multiple_of(QK) {
            return Err(QuantError::shape(
                &QuantScheme::ggml(ty.ggml()),
                format!("row length {} is not a multiple of the {QK}-value block", shape.cols),
            ));
        }
        Ok(Self { ty })
    }
}

impl Grid for LegacyGrid {
    type Params = BlockParams;

    fn group_len(&self) -> usize {
        QK
    }

    fn fit(&self, values: &[f32]) -> BlockParams {
        let x: &[f32; QK] = values.try_into().expect("one block of values");
        // ggml's reference quantizer decides the stored scale (and minimum) for these values.
        match self.ty {
            LegacyType::Q4_0 => BlockParams { d: q4_0::quantize_block(x).d, m: None },
            LegacyType::Q5_0 => BlockParams { d: q5_0::quantize_block(x).d, m: None },
            LegacyType::Q8_0 => BlockParams { d: q8_0::quantize_block(x).d, m: None },
            LegacyType::Q4_1 => {
                let b = q4_1::quantize_block(x);
                BlockParams { d: b.d, m: Some(b.m) }
            }
            LegacyType::Q5_1 => {
                let b = q5_1::quantize_block(x);
                BlockParams { d: b.d, m: Some(b.m) }
            }
        }
    }

    fn round(&self, p: &BlockParams, w: f32) -> (u8, f32) {
        let (lo, hi, offset) = self.ty.quant_range();
        let d = p.d.to_f32();
        let m = p.m.map_or(0.0, f16::to_f32);
        // The levels are evenly spaced, so the nearest one is the rounded quotient, clamped.
        let q = if d == 0.0 || !d.is_finite() {
            offset.clamp(lo, hi)
        } else {
            (((w - m) / d).round_ties_even() as i32 + offset).clamp(lo, hi)
        };
        // Decoded as ggml's dequantize_row_*: a multiply, then the add of the minimum.
        let value = match p.m {
            None => (q - offset) as f32 * d,
            Some(_) => q as f32 * d + m,
        };
        (q as i8 as u8, value)
    }

    fn assemble(
        &self,
        shape: TensorShape,
        params: &[BlockParams],
        codes: &[u8],
    ) -> Result<QuantizedTensor, QuantError> {
        let ty = self.ty.ggml();
        let mut data = Vec::with_capacity(params.len() * ty.type_size());
        for (p, q) in params.iter().zip(codes.chunks_exact(QK)) {
            let q: &[u8; QK] = q.try_into().expect("one block of codes");
            let m = p.m.unwrap_or(f16::ZERO);
            match self.ty {
                LegacyType::Q4_0 => push(&mut data, q4_0::BlockQ4_0 { d: p.d, qs: lanes::pack_nibbles(q) }),
                LegacyType::Q4_1 => push(&mut data, q4_1::BlockQ4_1 { d: p.d, m, qs: lanes::pack_nibbles(q) }),
                LegacyType::Q5_0 => push(
                    &mut data,
                    q5_0::BlockQ5_0 { d: p.d, qh: lanes::bit4_mask(q).to_le_bytes(), qs: lanes::pack_nibbles(q) },
                ),
                LegacyType::Q5_1 => push(
                    &mut data,
                    q5_1::BlockQ5_1 { d: p.d, m, qh: lanes::bit4_mask(q).to_le_bytes(), qs: lanes::pack_nibbles(q) },
                ),
                LegacyType::Q8_0 => push(&mut data, q8_0::BlockQ8_0 { d: p.d, qs: q.map(|c| c as i8) }),
            }
        }
        Ok(QuantizedTensor::Ggml(GgmlTensor { ty, shape, data }))
    }
}

fn push<B: bytemuck::Pod>(data: &mut Vec<u8>, block: B) {
    data.extend_from_slice(bytemuck::bytes_of(&block));
}
