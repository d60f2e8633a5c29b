//! A tensor quantized as independent row chunks, then put back together byte for byte as
//! [`quantize`] would have made it in one piece: the split a caller runs on several cores.
//!
//! A scheme splits when no quantity spans more than a run of whole rows: every ggml block type
//! (blocks lie within a row), INT with per-channel or group scales, FP8 per channel, and
//! bitsandbytes NF4/FP4 (blocks run over the flattened tensor, so a chunk holds whole blocks;
//! double quantization's nested state spans every block and is computed once, after the
//! chunks). Per-tensor INT and FP8 scales span the whole tensor: [`plan`] gives `None` and the
//! tensor is quantized in one piece.
//!
//! Chunk boundaries depend only on the shape and the scheme, never on the thread count, and
//! each chunk's bytes are exactly the sequential quantizer's bytes for those rows, so the
//! result is the same whatever the number of threads.

use super::bnb::{double_quantize, Bnb4Tensor, BnbAbsmax};
use super::quantized::{quantize, GgmlTensor, QuantizedTensor};
use super::scheme::{Granularity, QuantScheme, ValueType};
use super::tensor::{check_input, QuantError, TensorShape};
use super::{fp8, int};
use std::ops::Range;

/// About this many values per chunk: enough work to amortise scheduling, small enough that
/// a 4096-wide matrix splits into hundreds of chunks for load balance.
const CHUNK_VALUES: usize = 1 << 18;

/// The row ranges `shape` is cut into for `scheme`, or `None` when the scheme's scales span
/// the whole tensor (or the tensor is one chunk anyway).
pub fn plan(scheme: &QuantScheme, shape: TensorShape) -> Option<Vec<Range<usize>>> {
    let splits = match scheme.value {
        ValueType::Ggml { .. } => true,
        ValueType::Int { .. } => scheme.granularity != Granularity::Tensor,
        ValueType::Fp8E4M3 | ValueType::Fp8E5M2 => scheme.granularity == Granularity::Channel,
        ValueType::Nf4 | ValueType::Fp4 => true,
    };
    if !splits || shape.cols == 0 || shape.rows < 2 {
        return None;
    }
    // Each chunk but the last must end on a byte of packed codes (INT packs 2..7-bit codes as
    // one bit stream, NF4 two per byte) and, for bitsandbytes, on a block boundary.
    let unit = match scheme.value {
        ValueType::Nf4 | ValueType::Fp4 => lcm(2, scheme.group_size().unwrap_or(64) as usize),
        _ => 8,
    };
    let step = unit / gcd(unit, shape.cols);
    let rows = CHUNK_VALUES.div_ceil(shape.cols).next_multiple_of(step);
    if rows >= shape.rows {
        return None;
    }
    Some((0..shape.rows).step_by(rows).map(|r| r..(r + rows).min(shape.rows)).collect())
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn lcm(a: usize, b: usize) -> usize {
    a / gcd(a, b) * b
}

/// The scheme a chunk is quantized with: bitsandbytes chunks keep plain absmax (the nested
/// state is made once over every block, in [`merge`]).
fn chunk_scheme(scheme: &QuantScheme) -> QuantScheme {
    match scheme.value {
        ValueType::Nf4 | ValueType::Fp4 => QuantScheme { double_quant: None, ..*scheme },
        _ => *scheme,
    }
}

/// The values of rows `first_row..` (`part.len() / cols` of them) of a tensor, quantized on
/// their own: a part for [`merge`]. An error names the tensor's row, not the chunk's.
pub fn quantize_chunk(
    scheme: &QuantScheme,
    part: &[f32],
    cols: usize,
    first_row: usize,
) -> Result<QuantizedTensor, QuantError> {
    quantize(&chunk_scheme(scheme), part, TensorShape::new(part.len() / cols.max(1), cols)).map_err(|e| match e {
        QuantError::NonFinite { row, col, value } => QuantError::NonFinite { row: row + first_row, col, value },
        e => e,
    })
}

/// The parts of [`plan`]'s chunks, in order, joined into the tensor [`quantize`] makes.
pub fn merge(scheme: &QuantScheme, shape: TensorShape, parts: Vec<QuantizedTensor>) -> QuantizedTensor {
    // Each family's buffers grow once, to their final size: a doubling Vec would hold up to
    // twice the tensor's output for a moment.
    let mut parts = parts.into_iter();
    let first = parts.next().expect("a plan has at least one chunk");
    match first {
        QuantizedTensor::Ggml(mut t) => {
            let parts: Vec<QuantizedTensor> = parts.collect();
            t.data.reserve_exact(parts.iter().map(|p| p.storage_bytes() as usize).sum());
            for p in parts {
                let QuantizedTensor::Ggml(p) = p else { unreachable!("one scheme, one family") };
                t.data.extend_from_slice(&p.data);
            }
            QuantizedTensor::Ggml(GgmlTensor { shape, ..t })
        }
        QuantizedTensor::Int(mut t) => {
            let parts: Vec<QuantizedTensor> = parts.collect();
            let sum = |f: fn(&int::IntTensor) -> usize| -> usize {
                parts.iter().map(|p| if let QuantizedTensor::Int(p) = p { f(p) } else { 0 }).sum()
            };
            t.packed.reserve_exact(sum(|p| p.packed.len()));
            t.scales.reserve_exact(sum(|p| p.scales.len()));
            t.zero_points.reserve_exact(sum(|p| p.zero_points.len()));
            for p in parts {
                let QuantizedTensor::Int(p) = p else { unreachable!("one scheme, one family") };
                let before = t.scales.len();
                t.packed.extend_from_slice(&p.packed);
                t.scales.extend_from_slice(&p.scales);
                t.zero_points.extend_from_slice(&p.zero_points);
                t.saturated_groups.extend(p.saturated_groups.iter().map(|g| g + before));
            }
            QuantizedTensor::Int(int::IntTensor { shape, ..t })
        }
        QuantizedTensor::Fp8(mut t) => {
            let parts: Vec<QuantizedTensor> = parts.collect();
            t.data.reserve_exact(parts.iter().map(|p| p.shape().len()).sum());
            for p in parts {
                let QuantizedTensor::Fp8(p) = p else { unreachable!("one scheme, one family") };
                t.data.extend_from_slice(&p.data);
                t.scales.extend_from_slice(&p.scales);
            }
            QuantizedTensor::Fp8(fp8::Fp8Tensor { shape, ..t })
        }
        QuantizedTensor::Bnb4(mut t) => {
            let mut absmax = plain(t.absmax);
            let parts: Vec<QuantizedTensor> = parts.collect();
            t.packed.reserve_exact(parts.iter().map(|p| p.shape().len().div_ceil(2)).sum());
            for p in parts {
                let QuantizedTensor::Bnb4(p) = p else { unreachable!("one scheme, one family") };
                t.packed.extend_from_slice(&p.packed);
                absmax.extend(plain(p.absmax));
            }
            let absmax = match scheme.double_quant {
                None => BnbAbsmax::Plain(absmax),
                Some(nb) => BnbAbsmax::Nested(double_quantize(&absmax, nb as usize)),
            };
            QuantizedTensor::Bnb4(Bnb4Tensor { scheme: *scheme, shape, packed: t.packed, absmax })
        }
    }
}

fn plain(a: BnbAbsmax) -> Vec<f32> {
    match a {
        BnbAbsmax::Plain(v) => v,
        BnbAbsmax::Nested(_) => unreachable!("chunks are quantized without double quantization"),
    }
}

/// [`quantize`] chunk by chunk, in order (what a parallel caller does on several cores, each
/// chunk's values decoded on their own): the same tensor.
pub fn quantize_in_chunks(
    scheme: &QuantScheme,
    values: &[f32],
    shape: TensorShape,
) -> Result<QuantizedTensor, QuantError> {
    let Some(chunks) = plan(scheme, shape) else { return quantize(scheme, values, shape) };
    check_input(scheme, values, shape)?;
    let part = |rows: &Range<usize>| &values[rows.start * shape.cols..rows.end * shape.cols];
    let parts = chunks.iter().map(|rows| quantize_chunk(scheme, part(rows), shape.cols, rows.start));
    Ok(merge(scheme, shape, parts.collect::<Result<Vec<_>, _>>()?))
}
