//! Q4_K: super-blocks of 256 weights in 8 sub-blocks of 32, 4-bit quants, and a 6-bit scale
//! and 6-bit minimum per sub-block, scaled by the f16 `d` and `dmin` of the super-block.
//! 144 bytes per 256 weights = 4.5 bits per weight.
//!
//! ```text
//! byte 0      2      4             16                                 144
//!      +------+------+-------------+----------------------------------+
//!      |  d   | dmin | scales[12]  | qs[128]                          |
//!      | f16  | f16  | 8 scales +  | for chunk c in 0..4 (32 bytes):  |
//!      |      |      | 8 mins,     |   lo nibbles = sub-block 2c      |
//!      |      |      | 6 bits each |   hi nibbles = sub-block 2c + 1  |
//!      +------+------+-------------+----------------------------------+
//! The 12 scale bytes (also used by Q5_K), for sub-block j (scale S_j, min M_j):
//!   byte 0..4 : S_0..S_3 low 6 bits | top 2 bits = S_4..S_7 bits 4-5
//!   byte 4..8 : M_0..M_3 low 6 bits | top 2 bits = M_4..M_7 bits 4-5
//!   byte 8..12: lo4 = S_4..S_7 bits 0-3, hi4 = M_4..M_7 bits 0-3
//! x = (d * S_j) * q - (dmin * M_j)
//! ```

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::k_quant_search::{clamp_int, fp32_to_fp16, make_qkx2_quants, make_qkx2_quants_fast, nearest_int, sub_mut};
use super::weighted_search::{make_qkx3_quants, make_qp_quants};
use super::{assert_block_count, QK_K};
use crate::formats::GgmlType;

/// Bytes of packed 6-bit scales and minimums (`K_SCALE_SIZE`).
pub const K_SCALE_SIZE: usize = 12;

/// ggml's `block_q4_K`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ4K {
    /// Super-block scale for the sub-block scales.
    pub d: f16,
    /// Super-block scale for the sub-block minimums.
    pub dmin: f16,
    /// Eight 6-bit scales and eight 6-bit minimums, packed (see [`get_scale_min_k4`]).
    pub scales: [u8; K_SCALE_SIZE],
    /// 4-bit quants.
    pub qs: [u8; QK_K / 2],
}

const _: () = assert!(size_of::<BlockQ4K>() == 144);
const _: () = assert!(size_of::<BlockQ4K>() == GgmlType::Q4_K.block_layout().1);
const _: () = assert!(QK_K == GgmlType::Q4_K.block_layout().0);

/// Scale and minimum of sub-block `j` (0..8), as ggml's `get_scale_min_k4`.
pub fn get_scale_min_k4(j: usize, q: &[u8; K_SCALE_SIZE]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        let d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        let m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        (d, m)
    }
}

/// One super-block, as ggml's `dequantize_row_q4_K`: `y = d1 * q - m1` with
/// `d1 = d * scale`, `m1 = dmin * min`.
pub fn dequantize_block(b: &BlockQ4K, y: &mut [f32; QK_K]) {
    let d = b.d.to_f32();
    let min = b.dmin.to_f32();
    for (c, (q, out)) in b.qs.chunks_exact(32).zip(y.chunks_exact_mut(64)).enumerate() {
        let (sc1, m1) = get_scale_min_k4(2 * c, &b.scales);
        let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
        let (sc2, m2) = get_scale_min_k4(2 * c + 1, &b.scales);
        let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
        for l in 0..32 {
            out[l] = d1 * (q[l] & 0xF) as f32 - m1;
            out[l + 32] = d2 * (q[l] >> 4) as f32 - m2;
        }
    }
}

/// Dequantizes `blocks` into `y` (`y.len()` must be `256 * blocks.len()`).
pub fn dequantize_ref(blocks: &[BlockQ4K], y: &mut [f32]) {
    assert_block_count(y.len(), blocks.len(), QK_K);
    for (b, out) in blocks.iter().zip(y.chunks_exact_mut(QK_K)) {
        dequantize_block(b, out.try_into().unwrap());
    }
}

/// Scales, minimums and quants of one Q4_K / Q5_K super-block, as the shared part of ggml's
/// `quantize_row_q4_K_ref` / `quantize_row_q5_K_ref`; `nmax` is 15 (Q4_K) or 31 (Q5_K) and
/// `(rmin, nstep)` the search parameters (-1, 20) or (-0.5, 15).
///
/// Each sub-block of 32 gets a scale and a minimum from [`make_qkx2_quants`] with weights
/// `sqrt(mean(x²)) + |x|`; both are quantized to 6 bits against the largest of each
/// (`d = max_scale / 63`, `dmin = max_min / 63`, f16) and packed as [`get_scale_min_k4`]
/// reads them; then the quants are re-rounded as `nearest_int((x + dm) / dl)`, clamped to
/// `0..=nmax`, against the stored values (a sub-block whose stored scale is 0 keeps the quants
/// of the search). Returns `(d, dmin, scales, L)`. `plain` selects the plain transcription of
/// the search instead of the (byte-identical) [`make_qkx2_quants_fast`].
pub(crate) fn quantize_scales_mins(
    x: &[f32; QK_K],
    nmax: i32,
    rmin: f32,
    nstep: i32,
    plain: bool,
) -> (f16, f16, [u8; K_SCALE_SIZE], [u8; QK_K]) {
    let mut l = [0u8; QK_K];
    let mut l_aux = [0u8; 32];
    let mut weights = [0.0f32; 32];
    let mut mins = [0.0f32; QK_K / 32];
    let mut scales = [0.0f32; QK_K / 32];

    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    for j in 0..QK_K / 32 {
        let xs: &[f32; 32] = x[32 * j..32 * j + 32].try_into().unwrap();
        let mut sum_x2 = 0.0f32;
        for &v in xs {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        for (w, &v) in weights.iter_mut().zip(xs) {
            *w = av_x + v.abs();
        }
        let l = sub_mut::<_, 32>(&mut l, j);
        let (scale, min) = if plain {
            make_qkx2_quants(xs, nmax, &weights, l, &mut l_aux, rmin, 0.1, nstep, false)
        } else {
            make_qkx2_quants_fast(xs, nmax, &weights, l, rmin, 0.1, nstep, false)
        };
        scales[j] = scale;
        mins[j] = min;
        if scale > max_scale {
            max_scale = scale;
        }
        if min > max_min {
            max_min = min;
        }
    }

    let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    // C: `uint8_t ls = nearest_int(...)` (wraps to 8 bits), then MIN(63, ls).
    let ls: [u8; QK_K / 32] = std::array::from_fn(|j| (nearest_int(inv_scale * scales[j]) as u8).min(63));
    let lm: [u8; QK_K / 32] = std::array::from_fn(|j| (nearest_int(inv_min * mins[j]) as u8).min(63));
    let packed = pack_scales_mins(&ls, &lm);
    let d = fp32_to_fp16(max_scale / 63.0);
    let dmin = fp32_to_fp16(max_min / 63.0);
    reround(x, nmax, d, dmin, &packed, &mut l);
    (d, dmin, packed, l)
}

/// The 6-bit sub-block scales `ls` and minimums `lm` packed as [`get_scale_min_k4`] reads them.
fn pack_scales_mins(ls: &[u8; QK_K / 32], lm: &[u8; QK_K / 32]) -> [u8; K_SCALE_SIZE] {
    let mut packed = [0u8; K_SCALE_SIZE];
    for j in 0..QK_K / 32 {
        let (ls, lm) = (ls[j], lm[j]);
        if j < 4 {
            packed[j] = ls;
            packed[j + 4] = lm;
        } else {
            packed[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
            packed[j - 4] |= (ls >> 4) << 6;
            packed[j] |= (lm >> 4) << 6;
        }
    }
    packed
}

/// Re-rounds the quants as `nearest_int((x + dm) / dl)`, clamped to `0..=nmax`, against the
/// stored scales and minimums (a sub-block whose stored scale is 0 keeps `l` from the search).
fn reround(x: &[f32; QK_K], nmax: i32, d: f16, dmin: f16, packed: &[u8; K_SCALE_SIZE], l: &mut [u8; QK_K]) {
    let (d_all, dmin_all) = (d.to_f32(), dmin.to_f32());
    for j in 0..QK_K / 32 {
        let (sc, m) = get_scale_min_k4(j, packed);
        let dl = d_all * sc as f32;
        if dl == 0.0 {
            continue;
        }
        let dm = dmin_all * m as f32;
        for ii in 0..32 {
            let q = nearest_int((x[32 * j + ii] + dm) / dl);
            l[32 * j + ii] = clamp_int(q, 0, nmax) as u8;
        }
    }
}

/// [`quantize_scales_mins`] as ggml's `quantize_row_q4_K_impl` / `quantize_row_q5_K_impl` do
/// it with `quant_weights`: per sub-block of 32, `make_qkx3_quants` (nmax, `rmin = -0.9`,
/// `rdelta = 0.05`, 37 candidates) with weights `qw · sqrt(σ² + x²)`, `σ² = 2 Σx² / 256` over
/// the super-block; the scales and minimums to 6 bits by `make_qp_quants` (nmax 63) weighted by
/// each sub-block's summed weights; then the same re-rounding.
pub(crate) fn quantize_scales_mins_weighted(
    x: &[f32; QK_K],
    qw: &[f32; QK_K],
    nmax: i32,
) -> (f16, f16, [u8; K_SCALE_SIZE], [u8; QK_K]) {
    let mut l = [0u8; QK_K];
    let mut sw = [0.0f32; QK_K / 32];
    let mut mins = [0.0f32; QK_K / 32];
    let mut scales = [0.0f32; QK_K / 32];
    let mut sum_x2 = 0.0f32;
    for &v in x {
        sum_x2 += v * v;
    }
    let sigma2 = 2.0 * sum_x2 / QK_K as f32;
    for j in 0..QK_K / 32 {
        let xs: &[f32; 32] = x[32 * j..32 * j + 32].try_into().unwrap();
        let weights: [f32; 32] = std::array::from_fn(|i| qw[32 * j + i] * (sigma2 + xs[i] * xs[i]).sqrt());
        let mut sumw = 0.0f32;
        for &w in &weights {
            sumw += w;
        }
        sw[j] = sumw;
        (scales[j], mins[j]) = make_qkx3_quants(xs, nmax, &weights, sub_mut::<_, 32>(&mut l, j), -0.9, 0.05, 36, false);
    }
    let (mut ls, mut lm) = ([0u8; QK_K / 32], [0u8; QK_K / 32]);
    let d_block = make_qp_quants(&scales, 63, &mut ls, &sw);
    let m_block = make_qp_quants(&mins, 63, &mut lm, &sw);
    // Q5_K's C caps both at 63; make_qp_quants never returns more than nmax, so Q4_K agrees.
    let packed = pack_scales_mins(&ls.map(|v| v.min(63)), &lm.map(|v| v.min(63)));
    let (d, dmin) = (fp32_to_fp16(d_block), fp32_to_fp16(m_block));
    reround(x, nmax, d, dmin, &packed, &mut l);
    (d, dmin, packed, l)
}

/// One super-block, as ggml's `quantize_row_q4_K_ref` (see [`quantize_scales_mins`]), with the
/// candidate-parallel search [`make_qkx2_quants_fast`].
pub fn quantize_block(x: &[f32; QK_K]) -> BlockQ4K {
    quantize_block_using(x, false)
}

/// [`quantize_block`] with the plain transcription of [`make_qkx2_quants`] (the reference
/// `tests/rust/kquants.rs` holds the fast path to).
pub fn quantize_block_plain(x: &[f32; QK_K]) -> BlockQ4K {
    quantize_block_using(x, true)
}

#[inline(always)]
fn quantize_block_using(x: &[f32; QK_K], plain: bool) -> BlockQ4K {
    from_parts(quantize_scales_mins(x, 15, -1.0, 20, plain))
}

/// One super-block as ggml's `quantize_row_q4_K_impl` with `quant_weights` (see
/// [`quantize_scales_mins_weighted`]).
pub fn quantize_block_weighted(x: &[f32; QK_K], qw: &[f32; QK_K]) -> BlockQ4K {
    from_parts(quantize_scales_mins_weighted(x, qw, 15))
}

/// ggml's `quantize_row_q4_K_impl`: one row with the importance of each column (an imatrix
/// entry) when given ([`quantize_block_weighted`]); without, [`quantize_ref`].
pub fn quantize_row_weighted(x: &[f32], importance: Option<&[f32]>, blocks: &mut [BlockQ4K]) {
    let Some(qw) = importance else { return quantize_ref(x, blocks) };
    super::weighted_search::super_blocks(x, qw, blocks, quantize_block_weighted);
}

/// The block from the scales, minimums and quants: two sub-blocks' nibbles per 32 bytes.
fn from_parts((d, dmin, scales, l): (f16, f16, [u8; K_SCALE_SIZE], [u8; QK_K])) -> BlockQ4K {
    let mut qs = [0u8; QK_K / 2];
    for (c, q) in qs.chunks_exact_mut(32).enumerate() {
        let l = &l[64 * c..64 * c + 64];
        for (i, q) in q.iter_mut().enumerate() {
            *q = l[i] | (l[i + 32] << 4);
        }
    }
    BlockQ4K { d, dmin, scales, qs }
}

/// Quantizes `x` into `blocks` (`x.len()` must be `256 * blocks.len()`). Inputs should be
/// finite (see [`crate::formats::quantize_row`], which checks).
pub fn quantize_ref(x: &[f32], blocks: &mut [BlockQ4K]) {
    assert_block_count(x.len(), blocks.len(), QK_K);
    for (b, chunk) in blocks.iter_mut().zip(x.chunks_exact(QK_K)) {
        *b = quantize_block(chunk.try_into().unwrap());
    }
}
