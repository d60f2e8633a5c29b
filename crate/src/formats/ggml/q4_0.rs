//! Q4_0: blocks of 32 weights, one f16 scale `d`, 4-bit quants with an implicit offset of 8.
//! 18 bytes per 32 weights = 4.5 bits per weight.
//!
//! ```text
//! byte 0      2                                   18
//!      +------+-----------------------------------+
//!      |  d   | qs[16]                            |
//!      | f16  | qs[j] = q[j] | q[j + 16] << 4     |
//!      +------+-----------------------------------+
//! x[j] = (q[j] - 8) * d            q in 0..=15
//! ```

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::k_quant_search::fp32_to_fp16;
use super::weighted_search::{legacy_weighted_blocks, make_qx_quants_weighted};
use super::{assert_block_count, c_f32_to_i8, lanes};
use crate::formats::GgmlType;

/// Values per block (`QK4_0`).
pub const QK: usize = 32;

/// ggml's `block_q4_0`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ4_0 {
    /// Scale (delta).
    pub d: f16,
    /// Nibbles: low nibble of byte `j` is value `j`, high nibble is value `j + 16`.
    pub qs: [u8; QK / 2],
}

const _: () = assert!(size_of::<BlockQ4_0>() == 18);
const _: () = assert!(size_of::<BlockQ4_0>() == GgmlType::Q4_0.block_layout().1);
const _: () = assert!(QK == GgmlType::Q4_0.block_layout().0);

/// One block, as ggml's `dequantize_row_q4_0`: `y = (q - 8) * d`.
pub fn dequantize_block(b: &BlockQ4_0, y: &mut [f32; QK]) {
    let d = b.d.to_f32();
    for (j, &q) in b.qs.iter().enumerate() {
        let x0 = (q & 0x0F) as i32 - 8;
        let x1 = (q >> 4) as i32 - 8;
        y[j] = x0 as f32 * d;
        y[j + QK / 2] = x1 as f32 * d;
    }
}

/// Dequantizes `blocks` into `y` (`y.len()` must be `32 * blocks.len()`).
pub fn dequantize_ref(blocks: &[BlockQ4_0], y: &mut [f32]) {
    assert_block_count(y.len(), blocks.len(), QK);
    for (b, out) in blocks.iter().zip(y.chunks_exact_mut(QK)) {
        dequantize_block(b, out.try_into().unwrap());
    }
}

/// One block, as ggml's `quantize_row_q4_0_ref`: `d = max / -8` where `max` is the first value
/// of largest magnitude (sign kept), `q = min(15, (int8)(x / d + 8.5))`.
pub fn quantize_block(x: &[f32; QK]) -> BlockQ4_0 {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0u8; QK / 2];
    for (j, q) in qs.iter_mut().enumerate() {
        let x0 = x[j] * id;
        let x1 = x[j + QK / 2] * id;
        let xi0 = c_f32_to_i8(x0 + 8.5).min(15) as u8;
        let xi1 = c_f32_to_i8(x1 + 8.5).min(15) as u8;
        *q = xi0 | (xi1 << 4);
    }
    BlockQ4_0 { d: f16::from_f32(d), qs }
}

/// Same bytes as [`quantize_block`] for every finite input; this is what
/// [`crate::formats::quantize_row`] uses (it rejects NaN and infinities first, the
/// precondition here). Written to vectorize: lane-wise scans and a branch-free conversion
/// (`ggml::lanes`).
///
/// The conversion, `ggml::lanes::offset_quants`, truncates toward zero like C's `(int8_t)y` and
/// clamps to the quant range (explicit SIMD128 in wasm, plain lanes elsewhere). With a finite `id`, `|x * id| <= 8 * (1 + 2^-20)` (`|x| <= |max|`,
/// `d = max / -8` and `1 / d` each round by at most 2^-22 relative, 2^-21 if `d` is subnormal),
/// so `x * id + 8.5` lies in `(0.49, 16.51)`: truncation gives 0..=16, clamped to 15 as in C.
/// Blocks whose reciprocal scale `id` overflows (a scale below about 2^-128) go to
/// [`quantize_block`], whose conversion handles the infinities and NaNs (`0 * inf`) that then
/// occur.
// Inlined into `formats::quantize_row`'s block loop: a call per block returns the block
// through memory, which cost about a fifth of the time in wasm.
#[inline(always)]
pub fn quantize_block_fast(x: &[f32; QK]) -> BlockQ4_0 {
    let max = lanes::first_abs_max(x);
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    if !id.is_finite() {
        return quantize_block(x);
    }
    let q = lanes::offset_quants::<15>(x, id, 8.5);
    BlockQ4_0 { d: f16::from_f32(d), qs: lanes::pack_nibbles(&q) }
}

/// Quantizes `x` into `blocks` (`x.len()` must be `32 * blocks.len()`). Inputs should be
/// finite (see [`crate::formats::quantize_row`], which checks).
pub fn quantize_ref(x: &[f32], blocks: &mut [BlockQ4_0]) {
    assert_block_count(x.len(), blocks.len(), QK);
    for (b, chunk) in blocks.iter_mut().zip(x.chunks_exact(QK)) {
        *b = quantize_block(chunk.try_into().unwrap());
    }
}

/// ggml's `quantize_row_q4_0_impl`: one row, with the importance of each column (an imatrix
/// entry) when given: per block, the weighted `make_qx_quants` (nmax 8, weights
/// `importance · sqrt(σ² + x²)`, σ² the row's mean square); without, [`quantize_ref`].
pub fn quantize_row_weighted(x: &[f32], importance: Option<&[f32]>, blocks: &mut [BlockQ4_0]) {
    let Some(qw) = importance else { return quantize_ref(x, blocks) };
    assert_block_count(x.len(), blocks.len(), QK);
    legacy_weighted_blocks(x, qw, blocks, |xb: &[f32; QK], w| {
        let mut l = [0i8; QK];
        let d = make_qx_quants_weighted(xb, 8, &mut l, 1, Some(w));
        BlockQ4_0 { d: fp32_to_fp16(d), qs: std::array::from_fn(|j| l[j] as u8 | ((l[j + 16] as u8) << 4)) }
    });
}
