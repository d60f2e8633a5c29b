//! Weight formats: one module per family, each with a plain, readable reference implementation.
//!
//! - [`float`]: F32, F16, BF16 (decode and encode) and F64 (decode).
//! - [`ggml`]: ggml's block-quantized formats, one file per type (`ggml/q4_1.rs` is Q4_1's CPU
//!   reference, `ggml/q4_k.rs` is Q4_K's, ...).
//! - [`registry`]: the one table of formats (names, bits per weight, GPU kernel, GGUF type,
//!   fallbacks, the lab's suggestions) everything else reads.
//!
//! The byte-level entry points are [`dequantize_row`] and [`quantize_row`]; they check sizes and
//! dispatch on [`GgmlType`]. Every reference is meant to be bit-identical to ggml's
//! `dequantize_row_*` / `quantize_row_*_ref` (ggml-quants.c); `tests/rust/formats.rs` checks that
//! against golden files made with gguf-py (`scripts/dev/make_ggml_goldens.py`).
//!
//! Blocks are read from byte slices with `bytemuck::pod_read_unaligned`, so `src` needs no
//! particular alignment. The block structs assume a little-endian host (x86, ARM, wasm32).

pub mod bnb;
pub mod chunked;
pub mod float;
pub mod fp8;
pub mod ggml;
pub mod ggml_type;
pub mod int;
pub mod quantized;
pub mod registry;
pub mod saturation;
pub mod scheme;
pub mod tensor;

pub use ggml_type::{GgmlType, TypeIdError, ALL_TYPES};
pub use quantized::{quantize, QuantizedTensor};
pub use saturation::Saturation;
pub use scheme::{Granularity, Mapping, QuantScheme, RangeRule, SchemeError, ValueType};
pub use tensor::{FormatError, QuantError, TensorShape};

/// True if [`dequantize_row`] can decode `ty`: the registry lists it.
pub fn can_dequantize(ty: GgmlType) -> bool {
    registry::ggml_entry(ty).is_some()
}

/// True if [`quantize_row`] can encode `ty`: the registry lists it as producible.
pub fn can_quantize(ty: GgmlType) -> bool {
    registry::ggml_entry(ty).is_some_and(|e| e.support == registry::Support::Quantize)
}

/// Checks that `n_values` is a whole number of blocks and `n_bytes` is their exact size.
fn check_sizes(ty: GgmlType, n_values: usize, n_bytes: usize) -> Result<(), FormatError> {
    let (block, bytes) = ty.block_layout();
    if !n_values.is_multiple_of(block) {
        return Err(FormatError::NotWholeBlocks { ty, n_values, block });
    }
    let expected = n_values / block * bytes;
    if n_bytes != expected {
        return Err(FormatError::WrongByteCount { ty, n_values, expected, got: n_bytes });
    }
    Ok(())
}

/// Decodes `dst.len()` values of type `ty` from `src` (which must hold exactly that many).
///
/// Output is bit-identical to ggml's `dequantize_row_*` for the same bytes (NaN payloads
/// aside). Returns [`FormatError::Unsupported`] for types [`can_dequantize`] rejects.
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), FormatError> {
    use ggml::*;
    use GgmlType::*;
    if !can_dequantize(ty) {
        return Err(FormatError::Unsupported(ty));
    }
    check_sizes(ty, dst.len(), src.len())?;
    match ty {
        F32 => float::decode_f32(src, dst),
        F16 => float::decode_f16(src, dst),
        BF16 => float::decode_bf16(src, dst),
        F64 => float::decode_f64(src, dst),
        Q4_0 => decode_blocks(src, dst, q4_0::dequantize_block),
        Q4_1 => decode_blocks(src, dst, q4_1::dequantize_block),
        Q5_0 => decode_blocks(src, dst, q5_0::dequantize_block),
        Q5_1 => decode_blocks(src, dst, q5_1::dequantize_block),
        Q8_0 => decode_blocks(src, dst, q8_0::dequantize_block),
        Q2_K => decode_blocks(src, dst, q2_k::dequantize_block),
        Q3_K => decode_blocks(src, dst, q3_k::dequantize_block),
        Q4_K => decode_blocks(src, dst, q4_k::dequantize_block),
        Q5_K => decode_blocks(src, dst, q5_k::dequantize_block),
        Q6_K => decode_blocks(src, dst, q6_k::dequantize_block),
        Q8_K => decode_blocks(src, dst, q8_k::dequantize_block),
        IQ4_NL => decode_blocks(src, dst, iq4_nl::dequantize_block),
        IQ4_XS => decode_blocks(src, dst, iq4_xs::dequantize_block),
        MXFP4 => decode_blocks(src, dst, mxfp4::dequantize_block),
        TQ1_0 => decode_blocks(src, dst, tq1_0::dequantize_block),
        TQ2_0 => decode_blocks(src, dst, tq2_0::dequantize_block),
        _ => return Err(FormatError::Unsupported(ty)),
    }
    Ok(())
}

/// Encodes `src` as type `ty` into `dst` (which must be exactly `ty.bytes_for(src.len())` long).
///
/// Output is byte-identical to ggml's `quantize_row_*_ref` (and, for F16/BF16, to
/// `GGML_FP32_TO_FP16` / `GGML_FP32_TO_BF16`). Inputs must be finite: the first NaN or infinity
/// is reported as [`FormatError::NonFinite`] and nothing is written. Finite inputs can still
/// give infinite f16 scales when they exceed the f16 range (e.g. a Q4_1 block minimum below
/// -65504): that is what ggml stores too.
pub fn quantize_row(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), FormatError> {
    use ggml::*;
    use GgmlType::*;
    if !can_quantize(ty) {
        return Err(FormatError::Unsupported(ty));
    }
    check_sizes(ty, src.len(), dst.len())?;
    if let Some(index) = ggml::first_non_finite(src) {
        return Err(FormatError::NonFinite { index });
    }
    match ty {
        F32 => float::encode_f32(src, dst),
        F16 => float::encode_f16(src, dst),
        BF16 => float::encode_bf16(src, dst),
        // The fast paths give the same bytes as the plain references (tests/rust/fast_quant.rs,
        // tests/wasm/formats.test.ts); in wasm their per-value work is explicit SIMD128.
        Q4_0 => encode_blocks(src, dst, q4_0::quantize_block_fast),
        Q4_1 => encode_blocks(src, dst, q4_1::quantize_block_fast),
        Q5_0 => encode_blocks(src, dst, q5_0::quantize_block_fast),
        Q5_1 => encode_blocks(src, dst, q5_1::quantize_block_fast),
        Q8_0 => encode_blocks(src, dst, q8_0::quantize_block_fast),
        Q2_K => encode_blocks(src, dst, q2_k::quantize_block),
        Q3_K => encode_blocks(src, dst, q3_k::quantize_block),
        Q4_K => encode_blocks(src, dst, q4_k::quantize_block),
        Q5_K => encode_blocks(src, dst, q5_k::quantize_block),
        Q6_K => encode_blocks(src, dst, q6_k::quantize_block_fast),
        IQ4_NL => encode_blocks(src, dst, iq4_nl::quantize_block),
        _ => return Err(FormatError::Unsupported(ty)),
    }
    Ok(())
}

/// True if [`quantize_row_weighted`] uses an importance for `ty` (the weighted searches of
/// llama.cpp's `quantize_row_*_impl`); types it quantizes without one (Q8_0, the floats) and
/// types it refuses are false.
pub fn uses_importance(ty: GgmlType) -> bool {
    use GgmlType::*;
    matches!(ty, Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q2_K | Q3_K | Q4_K | Q5_K | Q6_K) && can_quantize(ty)
}

/// Encodes one row of `src` as type `ty` into `dst` as llama-quantize does with an importance
/// matrix entry: `importance` holds one value per column (`in_sum2 / counts` of the imatrix
/// file) and is used as ggml's `quantize_<type>` uses `quant_weights` (the weighted searches of
/// `quantize_row_*_impl`, byte-identical to ggml-quants.c). Types whose ggml quantizer ignores
/// the importance (Q8_0, F16, BF16, F32), and `importance: None`, are [`quantize_row`]; other
/// types with an importance are [`FormatError::Unsupported`] (never silently unweighted).
pub fn quantize_row_weighted(
    ty: GgmlType,
    src: &[f32],
    importance: Option<&[f32]>,
    dst: &mut [u8],
) -> Result<(), FormatError> {
    use ggml::*;
    use GgmlType::*;
    let Some(qw) = importance else { return quantize_row(ty, src, dst) };
    if !can_quantize(ty) {
        return Err(FormatError::Unsupported(ty));
    }
    check_sizes(ty, src.len(), dst.len())?;
    if qw.len() != src.len() {
        return Err(FormatError::ImportanceLength { n_values: src.len(), got: qw.len() });
    }
    if let Some(index) = ggml::first_non_finite(src) {
        return Err(FormatError::NonFinite { index });
    }
    if let Some(index) = qw.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
        return Err(FormatError::BadImportance { index });
    }
    match ty {
        Q4_0 => encode_weighted(src, qw, dst, q4_0::quantize_row_weighted),
        Q4_1 => encode_weighted(src, qw, dst, q4_1::quantize_row_weighted),
        Q5_0 => encode_weighted(src, qw, dst, q5_0::quantize_row_weighted),
        Q5_1 => encode_weighted(src, qw, dst, q5_1::quantize_row_weighted),
        Q2_K => encode_weighted(src, qw, dst, q2_k::quantize_row_weighted),
        Q3_K => encode_weighted(src, qw, dst, q3_k::quantize_row_weighted),
        Q4_K => encode_weighted(src, qw, dst, q4_k::quantize_row_weighted),
        Q5_K => encode_weighted(src, qw, dst, q5_k::quantize_row_weighted),
        Q6_K => encode_weighted(src, qw, dst, q6_k::quantize_row_weighted),
        Q8_0 | F32 | F16 | BF16 => return quantize_row(ty, src, dst),
        _ => return Err(FormatError::Unsupported(ty)),
    }
    Ok(())
}

/// One row through a type's weighted row quantizer into unaligned bytes. Sizes are pre-checked.
fn encode_weighted<B: bytemuck::Pod + bytemuck::Zeroable>(
    src: &[f32],
    qw: &[f32],
    dst: &mut [u8],
    quantize: fn(&[f32], Option<&[f32]>, &mut [B]),
) {
    let mut blocks = vec![B::zeroed(); dst.len() / std::mem::size_of::<B>()];
    quantize(src, Some(qw), &mut blocks);
    dst.copy_from_slice(bytemuck::cast_slice(&blocks));
}

/// Decodes whole blocks of `B` (each `N` values) from unaligned bytes. Sizes are pre-checked.
fn decode_blocks<B: bytemuck::Pod, const N: usize>(
    src: &[u8],
    dst: &mut [f32],
    dequantize_block: fn(&B, &mut [f32; N]),
) {
    let size = std::mem::size_of::<B>();
    for (bytes, out) in src.chunks_exact(size).zip(dst.chunks_exact_mut(N)) {
        let block: B = bytemuck::pod_read_unaligned(bytes);
        dequantize_block(&block, out.try_into().expect("chunk of N values"));
    }
}

/// Encodes whole blocks of `N` values as `B` into unaligned bytes. Sizes are pre-checked.
fn encode_blocks<B: bytemuck::Pod, const N: usize>(src: &[f32], dst: &mut [u8], quantize_block: fn(&[f32; N]) -> B) {
    let size = std::mem::size_of::<B>();
    for (x, bytes) in src.chunks_exact(N).zip(dst.chunks_exact_mut(size)) {
        let block = quantize_block(x.try_into().expect("chunk of N values"));
        bytes.copy_from_slice(bytemuck::bytes_of(&block));
    }
}
