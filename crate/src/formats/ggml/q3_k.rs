//! Q3_K: super-blocks of 256 weights in 16 sub-blocks of 16, 3-bit quants (2 low bits in `qs`,
//! the high bit in `hmask`) and 6-bit signed sub-block scales scaled by the f16 `d`.
//! 110 bytes per 256 weights = 3.4375 bits per weight.
//!
//! ```text
//! byte 0             32                      96            108    110
//!      +-------------+-----------------------+-------------+------+
//!      | hmask[32]   | qs[64]: low 2 bits    | scales[12]  |  d   |
//!      | high bits   | (like Q2_K)           | 16 x 6 bits | f16  |
//!      +-------------+-----------------------+-------------+------+
//! Value v = 128h + 32k + l (h in 0..2, k in 0..4, l in 0..32):
//!   lo2  = (qs[32h + l] >> 2k) & 3
//!   high = hmask[l] bit (4h + k)
//!   q    = lo2 - (high ? 0 : 4)                 in -4..=3
//! Sub-block scale i (v / 16), 6 bits, stored with an offset of 32:
//!   low 4 bits  = i < 8 ? scales[i] & 15 : scales[i - 8] >> 4
//!   high 2 bits = (scales[8 + i % 4] >> (2 * (i / 4))) & 3
//!   x = (d * (scale_i - 32)) * q
//! ```

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::k_quant_search::{clamp_int, fp32_to_fp16, make_q3_quants, nearest_int, sub_mut};
use super::weighted_search::make_qx_quants_weighted;
use super::{assert_block_count, QK_K};
use crate::formats::GgmlType;

/// ggml's `block_q3_K`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ3K {
    /// High bit of each quant.
    pub hmask: [u8; QK_K / 8],
    /// Low 2 bits of each quant.
    pub qs: [u8; QK_K / 4],
    /// Sixteen 6-bit scales, packed.
    pub scales: [u8; 12],
    /// Super-block scale.
    pub d: f16,
}

const _: () = assert!(size_of::<BlockQ3K>() == 110);
const _: () = assert!(size_of::<BlockQ3K>() == GgmlType::Q3_K.block_layout().1);
const _: () = assert!(QK_K == GgmlType::Q3_K.block_layout().0);

/// The sixteen 6-bit scales of a Q3_K block, each minus 32 (ggml's `kmask` shuffle).
pub fn unpack_scales(scales: &[u8; 12]) -> [i8; 16] {
    let mut out = [0i8; 16];
    for (i, s) in out.iter_mut().enumerate() {
        let low = if i < 8 { scales[i] & 0xF } else { scales[i - 8] >> 4 };
        let high = (scales[8 + i % 4] >> (2 * (i / 4))) & 3;
        *s = (low | (high << 4)) as i8 - 32;
    }
    out
}

/// One super-block, as ggml's `dequantize_row_q3_K`: `y = dl * q` with
/// `dl = d * (scale - 32)`.
pub fn dequantize_block(b: &BlockQ3K, y: &mut [f32; QK_K]) {
    let d_all = b.d.to_f32();
    let scales = unpack_scales(&b.scales);
    let mut out = 0;
    let mut is = 0;
    let mut m = 1u8;
    for q in b.qs.chunks_exact(32) {
        for shift in [0, 2, 4, 6] {
            for offset in [0, 16] {
                let dl = d_all * scales[is] as i32 as f32;
                is += 1;
                let hmask = &b.hmask[offset..offset + 16];
                for (&ql, &hm) in q[offset..offset + 16].iter().zip(hmask) {
                    let lo = ((ql >> shift) & 3) as i32;
                    let hi = if hm & m != 0 { 0 } else { 4 };
                    y[out] = dl * (lo - hi) as f32;
                    out += 1;
                }
            }
            m <<= 1;
        }
    }
}

/// Dequantizes `blocks` into `y` (`y.len()` must be `256 * blocks.len()`).
pub fn dequantize_ref(blocks: &[BlockQ3K], y: &mut [f32]) {
    assert_block_count(y.len(), blocks.len(), QK_K);
    for (b, out) in blocks.iter().zip(y.chunks_exact_mut(QK_K)) {
        dequantize_block(b, out.try_into().unwrap());
    }
}

/// One super-block, as ggml's `quantize_row_q3_K_ref`.
///
/// Each sub-block of 16 gets a signed scale from [`make_q3_quants`] (nmax 4, with the
/// coordinate-descent refinement). The scales are quantized to 6 bits against the one of
/// largest magnitude (`iscale = -32 / max_scale`, `d = 1 / iscale` as f16), and the quants
/// re-rounded as `nearest_int(x / dl)`, clamped to -4..=3, against the stored scales. A
/// sub-block whose stored scale is 0 keeps the quants of the search.
#[allow(clippy::needless_range_loop)] // index loops mirror the C code
pub fn quantize_block(x: &[f32; QK_K]) -> BlockQ3K {
    let mut l = [0i8; QK_K];
    let mut scales = [0.0f32; QK_K / 16];
    let mut b = BlockQ3K { hmask: [0; QK_K / 8], qs: [0; QK_K / 4], scales: [0; 12], d: f16::ZERO };

    let mut max_scale = 0.0f32;
    let mut amax = 0.0f32;
    for j in 0..QK_K / 16 {
        scales[j] = make_q3_quants(x[16 * j..16 * j + 16].try_into().unwrap(), 4, sub_mut::<_, 16>(&mut l, j), true);
        let scale = scales[j].abs();
        if scale > amax {
            amax = scale;
            max_scale = scales[j];
        }
    }

    if max_scale != 0.0 {
        let iscale = -32.0 / max_scale;
        for j in 0..QK_K / 16 {
            // C: `int8_t l = nearest_int(...)` (wraps), then clamped in int and stored back.
            let q = nearest_int(iscale * scales[j]) as i8 as i32;
            pack_scale(&mut b.scales, j, (clamp_int(q, -32, 31) + 32) as u8);
        }
        b.d = fp32_to_fp16(1.0 / iscale);
    } else {
        b.d = fp32_to_fp16(0.0);
    }

    finish_block(x, &mut l, &mut b);
    b
}

/// Stores the 6-bit scale `q` (0..=63) of sub-block `j`: low nibble in bytes 0..8, the top two
/// bits in bytes 8..12.
fn pack_scale(scales: &mut [u8; 12], j: usize, q: u8) {
    if j < 8 {
        scales[j] = q & 0xF;
    } else {
        scales[j - 8] |= (q & 0xF) << 4;
    }
    scales[j % 4 + 8] |= (q >> 4) << (2 * (j / 4));
}

/// With `b.d` and `b.scales` set: re-rounds the quants against the stored scales (a sub-block
/// whose stored scale is 0 keeps `l` from the search) and packs them into `hmask` and `qs`.
#[allow(clippy::needless_range_loop)] // index loops mirror the C code
fn finish_block(x: &[f32; QK_K], l: &mut [i8; QK_K], b: &mut BlockQ3K) {
    let d_all = b.d.to_f32();
    for j in 0..QK_K / 16 {
        let low = if j < 8 { b.scales[j] & 0xF } else { b.scales[j - 8] >> 4 };
        let sc = (low | (((b.scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) as i32 - 32;
        let d = d_all * sc as f32;
        if d == 0.0 {
            continue;
        }
        for ii in 0..16 {
            let q = nearest_int(x[16 * j + ii] / d);
            l[16 * j + ii] = (clamp_int(q, -4, 3) + 4) as i8;
        }
    }

    // The high bit of value j goes to bit j / 32 of hmask[j % 32].
    // (Written without a branch: whether L > 3 is unpredictable on real data.)
    for (j, lj) in l.iter_mut().enumerate() {
        let high = (*lj > 3) as u8;
        b.hmask[j % 32] |= high << (j / 32);
        *lj -= 4 * high as i8;
    }
    for (h, qs) in b.qs.chunks_exact_mut(32).enumerate() {
        let l = &l[128 * h..128 * h + 128];
        for (i, q) in qs.iter_mut().enumerate() {
            *q = (l[i] | (l[i + 32] << 2) | (l[i + 64] << 4) | (l[i + 96] << 6)) as u8;
        }
    }
}

/// One super-block as ggml's `quantize_row_q3_K_impl` with `quant_weights`: each sub-block's
/// scale from the weighted `make_qx_quants` (nmax 4, weights `qw · sqrt(σ² + x²)` with
/// `σ² = 2 Σx² / 256` over the super-block), the 16 scales themselves quantized to 6 bits by
/// `make_qx_quants` (nmax 32) weighted by each sub-block's summed weights, then
/// [`quantize_block`]'s re-rounding and packing.
#[allow(clippy::needless_range_loop)] // index loops mirror the C code
pub fn quantize_block_weighted(x: &[f32; QK_K], qw: &[f32; QK_K]) -> BlockQ3K {
    let mut l = [0i8; QK_K];
    let mut scales = [0.0f32; QK_K / 16];
    let mut sw = [0.0f32; QK_K / 16];
    let mut sumx2 = 0.0f32;
    for &v in x {
        sumx2 += v * v;
    }
    let sigma2 = 2.0 * sumx2 / QK_K as f32;
    for j in 0..QK_K / 16 {
        let xs: &[f32; 16] = x[16 * j..16 * j + 16].try_into().unwrap();
        let weight: [f32; 16] = std::array::from_fn(|i| qw[16 * j + i] * (sigma2 + xs[i] * xs[i]).sqrt());
        let mut sumw = 0.0f32;
        for &w in &weight {
            sumw += w;
        }
        sw[j] = sumw;
        scales[j] = make_qx_quants_weighted(xs, 4, sub_mut::<_, 16>(&mut l, j), 1, Some(&weight));
    }
    let mut b = BlockQ3K { hmask: [0; QK_K / 8], qs: [0; QK_K / 4], scales: [0; 12], d: f16::ZERO };
    let mut ls = [0i8; QK_K / 16];
    let d_block = make_qx_quants_weighted(&scales, 32, &mut ls, 1, Some(&sw));
    for (j, &q) in ls.iter().enumerate() {
        pack_scale(&mut b.scales, j, q as u8);
    }
    b.d = fp32_to_fp16(d_block);
    finish_block(x, &mut l, &mut b);
    b
}

/// ggml's `quantize_row_q3_K_impl`: one row with the importance of each column (an imatrix
/// entry) when given ([`quantize_block_weighted`]); without, [`quantize_ref`].
pub fn quantize_row_weighted(x: &[f32], importance: Option<&[f32]>, blocks: &mut [BlockQ3K]) {
    let Some(qw) = importance else { return quantize_ref(x, blocks) };
    super::weighted_search::super_blocks(x, qw, blocks, quantize_block_weighted);
}

/// Quantizes `x` into `blocks` (`x.len()` must be `256 * blocks.len()`). Inputs should be
/// finite (see [`crate::formats::quantize_row`], which checks).
pub fn quantize_ref(x: &[f32], blocks: &mut [BlockQ3K]) {
    assert_block_count(x.len(), blocks.len(), QK_K);
    for (b, chunk) in blocks.iter_mut().zip(x.chunks_exact(QK_K)) {
        *b = quantize_block(chunk.try_into().unwrap());
    }
}
