//! Q8_0: blocks of 32 weights, one f16 scale `d`, signed 8-bit quants.
//! 34 bytes per 32 weights = 8.5 bits per weight.
//!
//! ```text
//! byte 0      2                                   34
//!      +------+-----------------------------------+
//!      |  d   | qs[32]: i8                        |
//!      | f16  |                                   |
//!      +------+-----------------------------------+
//! x[j] = qs[j] * d                 qs in -127..=127
//! ```

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::{assert_block_count, c_f32_to_i8, lanes};
use crate::formats::GgmlType;

/// Values per block (`QK8_0`).
pub const QK: usize = 32;

/// ggml's `block_q8_0`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ8_0 {
    /// Scale (delta).
    pub d: f16,
    /// Quants.
    pub qs: [i8; QK],
}

const _: () = assert!(size_of::<BlockQ8_0>() == 34);
const _: () = assert!(size_of::<BlockQ8_0>() == GgmlType::Q8_0.block_layout().1);
const _: () = assert!(QK == GgmlType::Q8_0.block_layout().0);

/// One block, as ggml's `dequantize_row_q8_0`: `y = q * d`.
pub fn dequantize_block(b: &BlockQ8_0, y: &mut [f32; QK]) {
    let d = b.d.to_f32();
    for (out, &q) in y.iter_mut().zip(&b.qs) {
        *out = q as f32 * d;
    }
}

/// Dequantizes `blocks` into `y` (`y.len()` must be `32 * blocks.len()`).
pub fn dequantize_ref(blocks: &[BlockQ8_0], y: &mut [f32]) {
    assert_block_count(y.len(), blocks.len(), QK);
    for (b, out) in blocks.iter().zip(y.chunks_exact_mut(QK)) {
        dequantize_block(b, out.try_into().unwrap());
    }
}

/// One block, as ggml's `quantize_row_q8_0_ref`: `d = amax / 127`,
/// `q = roundf(x / d)` (round half away from zero; `f32::round` is the same).
pub fn quantize_block(x: &[f32; QK]) -> BlockQ8_0 {
    let mut amax = 0.0f32;
    for &v in x {
        amax = amax.max(v.abs());
    }
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0i8; QK];
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = c_f32_to_i8((v * id).round());
    }
    BlockQ8_0 { d: f16::from_f32(d), qs }
}

/// Same bytes as [`quantize_block`] for every finite input; this is what
/// [`crate::formats::quantize_row`] uses (it rejects NaN and infinities first, the
/// precondition here). Written to vectorize: a lane-wise `amax` (`ggml::lanes::abs_max`)
/// and `roundf` done in integer-and-compare steps instead of a libm call
/// (`ggml::lanes::rounded_quants`; explicit SIMD128 in wasm).
///
/// With a finite `id`, `|x * id| <= 127 * (1 + 2^-20)` (`|x| <= amax`, and `amax / 127`,
/// `1 / d`, `x * id` each round by at most 2^-22 relative, 2^-21 if `d` is subnormal), so
/// `roundf` gives -127..=127 and clamping `y` to `[-127, 127]` first changes nothing. Then
/// `t = trunc(y)`, `f = y - t` is exact (Sterbenz), and `roundf(y) = t + (f >= 0.5) -
/// (f <= -0.5)` (halves away from zero). Blocks whose `id` overflows (`amax` below about
/// 2^-121) go to [`quantize_block`].
// Inlined into `formats::quantize_row`'s block loop: a call per block returns the block
// through memory, which cost about a fifth of the time in wasm.
#[inline(always)]
pub fn quantize_block_fast(x: &[f32; QK]) -> BlockQ8_0 {
    let amax = lanes::abs_max(x);
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    if !id.is_finite() {
        return quantize_block(x);
    }
    BlockQ8_0 { d: f16::from_f32(d), qs: lanes::rounded_quants(x, id) }
}

/// Quantizes `x` into `blocks` (`x.len()` must be `32 * blocks.len()`). Inputs should be
/// finite (see [`crate::formats::quantize_row`], which checks).
pub fn quantize_ref(x: &[f32], blocks: &mut [BlockQ8_0]) {
    assert_block_count(x.len(), blocks.len(), QK);
    for (b, chunk) in blocks.iter_mut().zip(x.chunks_exact(QK)) {
        *b = quantize_block(chunk.try_into().unwrap());
    }
}
