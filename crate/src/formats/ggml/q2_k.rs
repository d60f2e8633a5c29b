//! Q2_K: super-blocks of 256 weights in 16 sub-blocks of 16. Each sub-block has a 4-bit scale
//! and a 4-bit minimum, themselves scaled by the f16 `d` and `dmin` of the super-block.
//! 84 bytes per 256 weights = 2.625 bits per weight.
//!
//! ```text
//! byte 0                16                            80     82     84
//!      +----------------+-----------------------------+------+------+
//!      | scales[16]     | qs[64]: 2-bit quants        |  d   | dmin |
//!      | lo4 = scale    | (layout below)              | f16  | f16  |
//!      | hi4 = min      |                             |      |      |
//!      +----------------+-----------------------------+------+------+
//! For half h in 0..2 (128 values each, qs[32h .. 32h+32]) and shift s in 0,2,4,6:
//!   values 128h + 32(s/2) + l, l in 0..32, are (qs[32h + l] >> s) & 3
//! Sub-block i = value / 16 uses scales[i]:
//!   x = (d * (scales[i] & 15)) * q - (dmin * (scales[i] >> 4))
//! ```

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::k_quant_search::{clamp_int, fp32_to_fp16, make_qkx2_quants, make_qkx2_quants_fast, nearest_int, sub_mut};
use super::weighted_search::{make_qkx3_quants, make_qp_quants};
use super::{assert_block_count, QK_K};
use crate::formats::GgmlType;

/// ggml's `block_q2_K`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ2K {
    /// Sub-block scales (low nibble) and minimums (high nibble).
    pub scales: [u8; QK_K / 16],
    /// 2-bit quants, four per byte.
    pub qs: [u8; QK_K / 4],
    /// Super-block scale for the sub-block scales.
    pub d: f16,
    /// Super-block scale for the sub-block minimums.
    pub dmin: f16,
}

const _: () = assert!(size_of::<BlockQ2K>() == 84);
const _: () = assert!(size_of::<BlockQ2K>() == GgmlType::Q2_K.block_layout().1);
const _: () = assert!(QK_K == GgmlType::Q2_K.block_layout().0);

/// One super-block, as ggml's `dequantize_row_q2_K`: `y = dl * q - ml` with
/// `dl = d * (sc & 15)`, `ml = dmin * (sc >> 4)`.
pub fn dequantize_block(b: &BlockQ2K, y: &mut [f32; QK_K]) {
    let d = b.d.to_f32();
    let min = b.dmin.to_f32();
    let mut out = 0;
    let mut is = 0;
    for q in b.qs.chunks_exact(32) {
        for shift in [0, 2, 4, 6] {
            for half in [&q[..16], &q[16..]] {
                let sc = b.scales[is];
                is += 1;
                let dl = d * (sc & 0xF) as f32;
                let ml = min * (sc >> 4) as f32;
                for &byte in half {
                    y[out] = dl * ((byte >> shift) & 3) as f32 - ml;
                    out += 1;
                }
            }
        }
    }
}

/// Dequantizes `blocks` into `y` (`y.len()` must be `256 * blocks.len()`).
pub fn dequantize_ref(blocks: &[BlockQ2K], y: &mut [f32]) {
    assert_block_count(y.len(), blocks.len(), QK_K);
    for (b, out) in blocks.iter().zip(y.chunks_exact_mut(QK_K)) {
        dequantize_block(b, out.try_into().unwrap());
    }
}

/// One super-block, as ggml's `quantize_row_q2_K_ref` (same bytes as
/// [`quantize_block_plain`], with the candidate-parallel [`make_qkx2_quants_fast`]).
pub fn quantize_block(x: &[f32; QK_K]) -> BlockQ2K {
    quantize_block_with(x, |xs, weights, l| make_qkx2_quants_fast(xs, 3, weights, l, -0.5, 0.1, 15, true))
}

/// One super-block, as ggml's `quantize_row_q2_K_ref`, with the plain transcription of
/// [`make_qkx2_quants`] (the reference `tests/rust/kquants.rs` holds the fast path to).
pub fn quantize_block_plain(x: &[f32; QK_K]) -> BlockQ2K {
    let mut l_aux = [0u8; 16];
    quantize_block_with(x, |xs, weights, l| make_qkx2_quants(xs, 3, weights, l, &mut l_aux, -0.5, 0.1, 15, true))
}

/// The super-block quantizer with `search(x, weights, quants) -> (scale, min)` per sub-block.
///
/// Each sub-block of 16 gets a scale and a minimum from [`make_qkx2_quants`] (nmax 3, weights
/// |x|, mean absolute error, 16 candidate scales). Scales and minimums are then quantized to
/// 4 bits against the largest of each (`d = max_scale / 15`, `dmin = max_min / 15`, f16), and
/// the quants re-rounded as `nearest_int((x + dm) / dl)`, clamped to 0..=3, against the stored
/// values. A sub-block whose stored scale is 0 keeps the quants of the search.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // index loops mirror the C code
fn quantize_block_with(
    x: &[f32; QK_K],
    mut search: impl FnMut(&[f32; 16], &[f32; 16], &mut [u8; 16]) -> (f32, f32),
) -> BlockQ2K {
    const Q4SCALE: f32 = 15.0;
    let mut l = [0u8; QK_K];
    let mut weights = [0.0f32; 16];
    let mut mins = [0.0f32; QK_K / 16];
    let mut scales = [0.0f32; QK_K / 16];
    let mut b = BlockQ2K { scales: [0; QK_K / 16], qs: [0; QK_K / 4], d: f16::ZERO, dmin: f16::ZERO };

    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    for j in 0..QK_K / 16 {
        let xs: &[f32; 16] = x[16 * j..16 * j + 16].try_into().unwrap();
        for (w, &v) in weights.iter_mut().zip(xs) {
            *w = v.abs();
        }
        let (scale, min) = search(xs, &weights, sub_mut::<_, 16>(&mut l, j));
        scales[j] = scale;
        mins[j] = min;
        if scale > max_scale {
            max_scale = scale;
        }
        if min > max_min {
            max_min = min;
        }
    }

    if max_scale > 0.0 {
        let iscale = Q4SCALE / max_scale;
        for j in 0..QK_K / 16 {
            b.scales[j] = nearest_int(iscale * scales[j]) as u8;
        }
        b.d = fp32_to_fp16(max_scale / Q4SCALE);
    } else {
        b.d = fp32_to_fp16(0.0);
    }
    if max_min > 0.0 {
        let iscale = Q4SCALE / max_min;
        for j in 0..QK_K / 16 {
            let lm = nearest_int(iscale * mins[j]);
            b.scales[j] |= (lm << 4) as u8;
        }
        b.dmin = fp32_to_fp16(max_min / Q4SCALE);
    } else {
        b.dmin = fp32_to_fp16(0.0);
    }

    finish_block(x, &mut l, &mut b);
    b
}

/// With `b.d`, `b.dmin` and `b.scales` set: re-rounds the quants as `nearest_int((x + dm) /
/// dl)`, clamped to 0..=3, against the stored values (a sub-block whose stored scale is 0 keeps
/// `l` from the search) and packs them four to a byte.
fn finish_block(x: &[f32; QK_K], l: &mut [u8; QK_K], b: &mut BlockQ2K) {
    let d_all = b.d.to_f32();
    let dmin_all = b.dmin.to_f32();
    for j in 0..QK_K / 16 {
        let d = d_all * (b.scales[j] & 0xF) as f32;
        if d == 0.0 {
            continue;
        }
        let dm = dmin_all * (b.scales[j] >> 4) as f32;
        for ii in 0..16 {
            let q = nearest_int((x[16 * j + ii] + dm) / d);
            l[16 * j + ii] = clamp_int(q, 0, 3) as u8;
        }
    }

    for (h, qs) in b.qs.chunks_exact_mut(32).enumerate() {
        let l = &l[128 * h..128 * h + 128];
        for (i, q) in qs.iter_mut().enumerate() {
            *q = l[i] | (l[i + 32] << 2) | (l[i + 64] << 4) | (l[i + 96] << 6);
        }
    }
}

/// One super-block as ggml's `quantize_row_q2_K_impl` (llama-quantize's Q2_K with an imatrix):
/// per sub-block of 16, `make_qkx3_quants` (nmax 3, `rmin = -0.9`, `rdelta = 0.05`, 37
/// candidates, squared error) with weights `qw · sqrt(σ² + x²)`, `σ² = Σx² / 256`; the scales
/// and minimums to 4 bits by `make_qp_quants` (nmax 15) weighted by each sub-block's summed
/// weights; then [`quantize_block`]'s re-rounding and packing.
pub fn quantize_block_weighted(x: &[f32; QK_K], qw: &[f32; QK_K]) -> BlockQ2K {
    let mut l = [0u8; QK_K];
    let mut sw = [0.0f32; QK_K / 16];
    let mut mins = [0.0f32; QK_K / 16];
    let mut scales = [0.0f32; QK_K / 16];
    let mut sumx2 = 0.0f32;
    for &v in x {
        sumx2 += v * v;
    }
    let sigma2 = sumx2 / QK_K as f32;
    for j in 0..QK_K / 16 {
        let xs: &[f32; 16] = x[16 * j..16 * j + 16].try_into().unwrap();
        let weight: [f32; 16] = std::array::from_fn(|i| qw[16 * j + i] * (sigma2 + xs[i] * xs[i]).sqrt());
        for &w in &weight {
            sw[j] += w;
        }
        (scales[j], mins[j]) = make_qkx3_quants(xs, 3, &weight, sub_mut::<_, 16>(&mut l, j), -0.9, 0.05, 36, false);
    }
    let (mut ls, mut lm) = ([0u8; QK_K / 16], [0u8; QK_K / 16]);
    let dm = make_qp_quants(&scales, 15, &mut ls, &sw);
    let mm = make_qp_quants(&mins, 15, &mut lm, &sw);
    let mut b = BlockQ2K {
        scales: std::array::from_fn(|j| ls[j] | (lm[j] << 4)),
        qs: [0; QK_K / 4],
        d: fp32_to_fp16(dm),
        dmin: fp32_to_fp16(mm),
    };
    finish_block(x, &mut l, &mut b);
    b
}

/// ggml's `quantize_row_q2_K_impl`: one row with the importance of each column (an imatrix
/// entry) when given ([`quantize_block_weighted`]); without, [`quantize_ref`].
pub fn quantize_row_weighted(x: &[f32], importance: Option<&[f32]>, blocks: &mut [BlockQ2K]) {
    let Some(qw) = importance else { return quantize_ref(x, blocks) };
    super::weighted_search::super_blocks(x, qw, blocks, quantize_block_weighted);
}

/// Quantizes `x` into `blocks` (`x.len()` must be `256 * blocks.len()`). Inputs should be
/// finite (see [`crate::formats::quantize_row`], which checks).
pub fn quantize_ref(x: &[f32], blocks: &mut [BlockQ2K]) {
    assert_block_count(x.len(), blocks.len(), QK_K);
    for (b, chunk) in blocks.iter_mut().zip(x.chunks_exact(QK_K)) {
        *b = quantize_block(chunk.try_into().unwrap());
    }
}
