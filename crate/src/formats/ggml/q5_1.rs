//! Q5_1: blocks of 32 weights, an f16 scale `d` and an f16 minimum `m`, 5-bit unsigned quants.
//! The low 4 bits are packed like Q4_1, the fifth bits sit in a 32-bit mask.
//! 24 bytes per 32 weights = 6 bits per weight.
//!
//! ```text
//! byte 0      2      4            8                                      24
//!      +------+------+------------+--------------------------------------+
//!      |  d   |  m   | qh[4]      | qs[16]                               |
//!      | f16  | f16  | bit j of   | qs[j] = lo4(q[j]) | lo4(q[j+16]) << 4 |
//!      |      |      | LE u32 = bit 4 of q[j]                            |
//!      +------+------+------------+--------------------------------------+
//! x[j] = q[j] * d + m              q in 0..=31
//! ```

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::k_quant_search::fp32_to_fp16;
use super::weighted_search::{legacy_weighted_blocks, make_qkx3_quants, pack_q5};
use super::{assert_block_count, c_f32_to_i8, lanes};
use crate::formats::GgmlType;

/// Values per block (`QK5_1`).
pub const QK: usize = 32;

/// ggml's `block_q5_1`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ5_1 {
    /// Scale (delta).
    pub d: f16,
    /// Block minimum (added after scaling).
    pub m: f16,
    /// Fifth bits, as a little-endian u32: bit `j` belongs to value `j`.
    pub qh: [u8; 4],
    /// Low nibbles: byte `j` holds value `j` (low) and value `j + 16` (high).
    pub qs: [u8; QK / 2],
}

const _: () = assert!(size_of::<BlockQ5_1>() == 24);
const _: () = assert!(size_of::<BlockQ5_1>() == GgmlType::Q5_1.block_layout().1);
const _: () = assert!(QK == GgmlType::Q5_1.block_layout().0);

/// One block, as ggml's `dequantize_row_q5_1`: `y = q * d + m` (multiply, then add).
pub fn dequantize_block(b: &BlockQ5_1, y: &mut [f32; QK]) {
    let d = b.d.to_f32();
    let m = b.m.to_f32();
    let qh = u32::from_le_bytes(b.qh);
    for (j, &q) in b.qs.iter().enumerate() {
        let xh_0 = (((qh >> j) << 4) & 0x10) as u8;
        let xh_1 = ((qh >> (j + 12)) & 0x10) as u8;
        let x0 = ((q & 0x0F) | xh_0) as i32;
        let x1 = ((q >> 4) | xh_1) as i32;
        y[j] = x0 as f32 * d + m;
        y[j + QK / 2] = x1 as f32 * d + m;
    }
}

/// Dequantizes `blocks` into `y` (`y.len()` must be `32 * blocks.len()`).
pub fn dequantize_ref(blocks: &[BlockQ5_1], y: &mut [f32]) {
    assert_block_count(y.len(), blocks.len(), QK);
    for (b, out) in blocks.iter().zip(y.chunks_exact_mut(QK)) {
        dequantize_block(b, out.try_into().unwrap());
    }
}

/// One block, as ggml's `quantize_row_q5_1_ref`: `d = (max - min) / 31`, `m = min`,
/// `q = (uint8)((x - min) / d + 0.5)` (no clamp in C: the value never exceeds 31).
pub fn quantize_block(x: &[f32; QK]) -> BlockQ5_1 {
    let mut min = f32::MAX;
    let mut max = -f32::MAX;
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    let d = (max - min) / 31.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0u8; QK / 2];
    let mut qh = 0u32;
    for (j, q) in qs.iter_mut().enumerate() {
        let x0 = (x[j] - min) * id;
        let x1 = (x[j + QK / 2] - min) * id;
        // C's `(uint8_t)f` on x86-64 is the same truncation as `(int8_t)f`, reinterpreted.
        let xi0 = c_f32_to_i8(x0 + 0.5) as u8;
        let xi1 = c_f32_to_i8(x1 + 0.5) as u8;
        *q = (xi0 & 0x0F) | ((xi1 & 0x0F) << 4);
        qh |= (((xi0 & 0x10) >> 4) as u32) << j;
        qh |= (((xi1 & 0x10) >> 4) as u32) << (j + QK / 2);
    }
    BlockQ5_1 { d: f16::from_f32(d), m: f16::from_f32(min), qh: qh.to_le_bytes(), qs }
}

/// Same bytes as [`quantize_block`] for every finite input; this is what
/// [`crate::formats::quantize_row`] uses (it rejects NaN and infinities first, the
/// precondition here). Written to vectorize: lane-wise scans and a branch-free conversion
/// (`ggml::lanes`).
///
/// The conversion, `ggml::lanes::min_quants`, truncates toward zero like C's `(int8_t)y` and
/// clamps to the quant range (explicit SIMD128 in wasm, plain lanes elsewhere). With a finite `id` and a finite range `max - min`, `0 <= x - min <= max - min`
/// (rounding is monotone), so `(x - min) * id <= 31 * (1 + 2^-20)` and `+ 0.5` lies in
/// `[0.5, 31.51)`: truncation gives 0..=31, as the unclamped C code gets.
/// Blocks whose reciprocal scale `id` overflows (a scale below about 2^-128) go to
/// [`quantize_block`], whose conversion handles the infinities and NaNs (`0 * inf`) that then
/// occur.
// Inlined into `formats::quantize_row`'s block loop: a call per block returns the block
// through memory, which cost about a fifth of the time in wasm.
#[inline(always)]
pub fn quantize_block_fast(x: &[f32; QK]) -> BlockQ5_1 {
    let (min, max) = lanes::min_max(x);
    let d = (max - min) / 31.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    if !id.is_finite() || !(max - min).is_finite() {
        return quantize_block(x);
    }
    // C has no clamp; by the bound above, the clamp to 31 changes nothing.
    let q = lanes::min_quants::<31>(x, min, id);
    BlockQ5_1 {
        d: f16::from_f32(d),
        m: f16::from_f32(min),
        qh: lanes::bit4_mask(&q).to_le_bytes(),
        qs: lanes::pack_nibbles(&q),
    }
}

/// Quantizes `x` into `blocks` (`x.len()` must be `32 * blocks.len()`). Inputs should be
/// finite (see [`crate::formats::quantize_row`], which checks).
pub fn quantize_ref(x: &[f32], blocks: &mut [BlockQ5_1]) {
    assert_block_count(x.len(), blocks.len(), QK);
    for (b, chunk) in blocks.iter_mut().zip(x.chunks_exact(QK)) {
        *b = quantize_block(chunk.try_into().unwrap());
    }
}

/// ggml's `quantize_row_q5_1_impl`: one row, with the importance of each column (an imatrix
/// entry) when given: per block, `make_qkx3_quants` (nmax 31, 37 candidate scales from
/// `rmin = -0.9`, `rdelta = 0.05`, weights `importance · sqrt(σ² + x²)`); without, [`quantize_ref`].
pub fn quantize_row_weighted(x: &[f32], importance: Option<&[f32]>, blocks: &mut [BlockQ5_1]) {
    let Some(qw) = importance else { return quantize_ref(x, blocks) };
    assert_block_count(x.len(), blocks.len(), QK);
    legacy_weighted_blocks(x, qw, blocks, |xb: &[f32; QK], w| {
        let mut l = [0u8; QK];
        let (d, min) = make_qkx3_quants(xb, 31, w, &mut l, -0.9, 0.05, 36, false);
        let (qs, qh) = pack_q5(&l);
        BlockQ5_1 { d: fp32_to_fp16(d), m: fp32_to_fp16(-min), qh, qs }
    });
}
