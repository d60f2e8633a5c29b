//! Q6_K: super-blocks of 256 weights in 16 sub-blocks of 16, 6-bit quants (low 4 bits in `ql`,
//! high 2 bits in `qh`, offset 32) and signed 8-bit sub-block scales scaled by the f16 `d`.
//! 210 bytes per 256 weights = 6.5625 bits per weight.
//!
//! ```text
//! byte 0                128               192            208    210
//!      +----------------+-----------------+--------------+------+
//!      | ql[128]        | qh[64]          | scales[16]   |  d   |
//!      | low 4 bits     | high 2 bits     | i8           | f16  |
//!      +----------------+-----------------+--------------+------+
//! Half h in 0..2 (values 128h..128h+128) uses ql[64h..], qh[32h..], scales[8h..]; l in 0..32:
//!   value 128h +  0 + l: lo4(ql[64h + l])      | ((qh[32h + l] >> 0) & 3) << 4
//!   value 128h + 32 + l: lo4(ql[64h + 32 + l]) | ((qh[32h + l] >> 2) & 3) << 4
//!   value 128h + 64 + l: hi4(ql[64h + l])      | ((qh[32h + l] >> 4) & 3) << 4
//!   value 128h + 96 + l: hi4(ql[64h + 32 + l]) | ((qh[32h + l] >> 6) & 3) << 4
//!   x = (d * scales[value / 16]) * (q - 32)
//! ```

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::k_quant_search::{
    clamp_int, fp32_to_fp16, make_qx_quants, make_qx_quants_fast, nearest_int, sub_mut, GROUP_MAX_EPS,
};
use super::weighted_search::make_qx_quants_weighted;
use super::{assert_block_count, QK_K};
use crate::formats::GgmlType;

/// ggml's `block_q6_K`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ6K {
    /// Low 4 bits of each quant.
    pub ql: [u8; QK_K / 2],
    /// High 2 bits of each quant.
    pub qh: [u8; QK_K / 4],
    /// Signed sub-block scales.
    pub scales: [i8; QK_K / 16],
    /// Super-block scale.
    pub d: f16,
}

const _: () = assert!(size_of::<BlockQ6K>() == 210);
const _: () = assert!(size_of::<BlockQ6K>() == GgmlType::Q6_K.block_layout().1);
const _: () = assert!(QK_K == GgmlType::Q6_K.block_layout().0);

/// One super-block, as ggml's `dequantize_row_q6_K`: `y = d * sc * q` evaluated as
/// `(d * sc) * q`.
pub fn dequantize_block(b: &BlockQ6K, y: &mut [f32; QK_K]) {
    let d = b.d.to_f32();
    for h in 0..2 {
        let ql = &b.ql[64 * h..64 * h + 64];
        let qh = &b.qh[32 * h..32 * h + 32];
        let sc = &b.scales[8 * h..8 * h + 8];
        let y = &mut y[128 * h..128 * h + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i8 - 32;
            let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
            y[l] = d * sc[is] as f32 * q1 as f32;
            y[l + 32] = d * sc[is + 2] as f32 * q2 as f32;
            y[l + 64] = d * sc[is + 4] as f32 * q3 as f32;
            y[l + 96] = d * sc[is + 6] as f32 * q4 as f32;
        }
    }
}

/// Dequantizes `blocks` into `y` (`y.len()` must be `256 * blocks.len()`).
pub fn dequantize_ref(blocks: &[BlockQ6K], y: &mut [f32]) {
    assert_block_count(y.len(), blocks.len(), QK_K);
    for (b, out) in blocks.iter().zip(y.chunks_exact_mut(QK_K)) {
        dequantize_block(b, out.try_into().unwrap());
    }
}

/// One super-block, as ggml's `quantize_row_q6_K_ref`.
///
/// Each sub-block of 16 gets a signed scale from [`make_qx_quants`] (nmax 32, weights x², 19
/// candidate scales). The scales are quantized to i8 against the one of largest magnitude
/// (`iscale = -128 / max_scale`, `d = 1 / iscale` as f16, scales capped at 127) and the quants
/// re-rounded as `nearest_int(x / dl)`, clamped to -32..=31, against the stored scales (a
/// sub-block whose stored scale is 0 keeps the quants of the search). A block whose largest
/// scale is below [`GROUP_MAX_EPS`] is all zeros.
pub fn quantize_block(x: &[f32; QK_K]) -> BlockQ6K {
    quantize_block_with(x, |_, x, nmax, l, rmse| make_qx_quants(x, nmax, l, rmse))
}

/// Same bytes as [`quantize_block`], with the candidate-parallel search
/// ([`make_qx_quants_fast`]); this is what [`crate::formats::quantize_row`] uses.
pub fn quantize_block_fast(x: &[f32; QK_K]) -> BlockQ6K {
    quantize_block_with(x, |_, x, nmax, l, rmse| make_qx_quants_fast(x, nmax, l, rmse))
}

/// One super-block as ggml's `quantize_row_q6_K_impl` with `quant_weights`: [`quantize_block`]
/// with each sub-block's search weighted by the importance `qw` itself (not x²).
pub fn quantize_block_weighted(x: &[f32; QK_K], qw: &[f32; QK_K]) -> BlockQ6K {
    quantize_block_with(x, |ib, x, nmax, l, rmse| {
        make_qx_quants_weighted(x, nmax, l, rmse, Some(qw[16 * ib..16 * ib + 16].try_into().unwrap()))
    })
}

/// ggml's `quantize_row_q6_K_impl`: one row with the importance of each column (an imatrix
/// entry) when given ([`quantize_block_weighted`]); without, [`quantize_ref`].
pub fn quantize_row_weighted(x: &[f32], importance: Option<&[f32]>, blocks: &mut [BlockQ6K]) {
    let Some(qw) = importance else { return quantize_ref(x, blocks) };
    super::weighted_search::super_blocks(x, qw, blocks, quantize_block_weighted);
}

#[inline(always)]
#[allow(clippy::needless_range_loop)] // index loops mirror the C code
fn quantize_block_with(
    x: &[f32; QK_K],
    search: impl Fn(usize, &[f32; 16], i32, &mut [i8; 16], i32) -> f32,
) -> BlockQ6K {
    let mut l = [0i8; QK_K];
    let mut scales = [0.0f32; QK_K / 16];
    let mut b = BlockQ6K { ql: [0; QK_K / 2], qh: [0; QK_K / 4], scales: [0; QK_K / 16], d: f16::ZERO };

    let mut max_scale = 0.0f32;
    let mut max_abs_scale = 0.0f32;
    for ib in 0..QK_K / 16 {
        let scale = search(ib, x[16 * ib..16 * ib + 16].try_into().unwrap(), 32, sub_mut::<_, 16>(&mut l, ib), 1);
        scales[ib] = scale;
        let abs_scale = scale.abs();
        if abs_scale > max_abs_scale {
            max_abs_scale = abs_scale;
            max_scale = scale;
        }
    }

    if max_abs_scale < GROUP_MAX_EPS {
        b.d = fp32_to_fp16(0.0);
        return b;
    }

    let iscale = -128.0 / max_scale;
    b.d = fp32_to_fp16(1.0 / iscale);
    for ib in 0..QK_K / 16 {
        // C: `int8_t = MIN(127, nearest_int(...))` (wraps to 8 bits).
        b.scales[ib] = nearest_int(iscale * scales[ib]).min(127) as i8;
    }

    let d_all = b.d.to_f32();
    for j in 0..QK_K / 16 {
        let d = d_all * b.scales[j] as f32;
        if d == 0.0 {
            continue;
        }
        for ii in 0..16 {
            let q = nearest_int(x[16 * j + ii] / d);
            l[16 * j + ii] = (clamp_int(q, -32, 31) + 32) as i8;
        }
    }

    for h in 0..2 {
        let l = &l[128 * h..128 * h + 128];
        let ql = &mut b.ql[64 * h..64 * h + 64];
        for i in 0..32 {
            let q1 = l[i] as u8 & 0xF;
            let q2 = l[i + 32] as u8 & 0xF;
            let q3 = l[i + 64] as u8 & 0xF;
            let q4 = l[i + 96] as u8 & 0xF;
            ql[i] = q1 | (q3 << 4);
            ql[i + 32] = q2 | (q4 << 4);
        }
        let qh = &mut b.qh[32 * h..32 * h + 32];
        for i in 0..32 {
            let hi = |v: i8| (v >> 4) as u8;
            qh[i] = hi(l[i]) | (hi(l[i + 32]) << 2) | (hi(l[i + 64]) << 4) | (hi(l[i + 96]) << 6);
        }
    }
    b
}

/// Quantizes `x` into `blocks` (`x.len()` must be `256 * blocks.len()`). Inputs should be
/// finite (see [`crate::formats::quantize_row`], which checks).
pub fn quantize_ref(x: &[f32], blocks: &mut [BlockQ6K]) {
    assert_block_count(x.len(), blocks.len(), QK_K);
    for (b, chunk) in blocks.iter_mut().zip(x.chunks_exact(QK_K)) {
        *b = quantize_block(chunk.try_into().unwrap());
    }
}
