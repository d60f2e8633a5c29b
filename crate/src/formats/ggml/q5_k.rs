//! Q5_K: like Q4_K (8 sub-blocks of 32, 6-bit scales and minimums, f16 `d` and `dmin`) with a
//! fifth bit per quant in `qh`.
//! 176 bytes per 256 weights = 5.5 bits per weight.
//!
//! ```text
//! byte 0      2      4             16           48                        176
//!      +------+------+-------------+------------+-------------------------+
//!      |  d   | dmin | scales[12]  | qh[32]     | qs[128]: low 4 bits     |
//!      | f16  | f16  | (as Q4_K)   | fifth bits | (as Q4_K)               |
//!      +------+------+-------------+------------+-------------------------+
//! Sub-block j (values 32j .. 32j+32), l in 0..32:
//!   q = nibble(qs[32(j/2) + l], j odd ? high : low) + (qh[l] bit j ? 16 : 0)
//!   x = (d * S_j) * q - (dmin * M_j)
//! ```

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::q4_k::{get_scale_min_k4, quantize_scales_mins, quantize_scales_mins_weighted, K_SCALE_SIZE};
use super::{assert_block_count, QK_K};
use crate::formats::GgmlType;

/// ggml's `block_q5_K`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ5K {
    /// Super-block scale for the sub-block scales.
    pub d: f16,
    /// Super-block scale for the sub-block minimums.
    pub dmin: f16,
    /// Eight 6-bit scales and eight 6-bit minimums, packed as in Q4_K.
    pub scales: [u8; K_SCALE_SIZE],
    /// Fifth bit of each quant: bit `j` of `qh[l]` belongs to value `32j + l`.
    pub qh: [u8; QK_K / 8],
    /// Low 4 bits of each quant.
    pub qs: [u8; QK_K / 2],
}

const _: () = assert!(size_of::<BlockQ5K>() == 176);
const _: () = assert!(size_of::<BlockQ5K>() == GgmlType::Q5_K.block_layout().1);
const _: () = assert!(QK_K == GgmlType::Q5_K.block_layout().0);

/// One super-block, as ggml's `dequantize_row_q5_K`: `y = d1 * q - m1` with
/// `d1 = d * scale`, `m1 = dmin * min`.
pub fn dequantize_block(b: &BlockQ5K, y: &mut [f32; QK_K]) {
    let d = b.d.to_f32();
    let min = b.dmin.to_f32();
    let mut u1 = 1u8;
    let mut u2 = 2u8;
    for (c, (ql, out)) in b.qs.chunks_exact(32).zip(y.chunks_exact_mut(64)).enumerate() {
        let (sc1, m1) = get_scale_min_k4(2 * c, &b.scales);
        let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
        let (sc2, m2) = get_scale_min_k4(2 * c + 1, &b.scales);
        let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
        for l in 0..32 {
            let h1 = if b.qh[l] & u1 != 0 { 16 } else { 0 };
            let h2 = if b.qh[l] & u2 != 0 { 16 } else { 0 };
            out[l] = d1 * ((ql[l] & 0xF) + h1) as f32 - m1;
            out[l + 32] = d2 * ((ql[l] >> 4) + h2) as f32 - m2;
        }
        u1 <<= 2;
        u2 <<= 2;
    }
}

/// Dequantizes `blocks` into `y` (`y.len()` must be `256 * blocks.len()`).
pub fn dequantize_ref(blocks: &[BlockQ5K], y: &mut [f32]) {
    assert_block_count(y.len(), blocks.len(), QK_K);
    for (b, out) in blocks.iter().zip(y.chunks_exact_mut(QK_K)) {
        dequantize_block(b, out.try_into().unwrap());
    }
}

/// One super-block, as ggml's `quantize_row_q5_K_ref`: scales, minimums and quants as Q4_K's
/// (see [`quantize_scales_mins`]) with nmax 31 and search parameters (-0.5, 15 steps); the
/// fifth bit of each quant goes to `qh`. Uses the candidate-parallel search
/// ([`super::k_quant_search::make_qkx2_quants_fast`]).
pub fn quantize_block(x: &[f32; QK_K]) -> BlockQ5K {
    quantize_block_using(x, false)
}

/// [`quantize_block`] with the plain transcription of the search (the reference
/// `tests/rust/kquants.rs` holds the fast path to).
pub fn quantize_block_plain(x: &[f32; QK_K]) -> BlockQ5K {
    quantize_block_using(x, true)
}

#[inline(always)]
fn quantize_block_using(x: &[f32; QK_K], plain: bool) -> BlockQ5K {
    from_parts(quantize_scales_mins(x, 31, -0.5, 15, plain))
}

/// One super-block as ggml's `quantize_row_q5_K_impl` with `quant_weights` (see
/// [`super::q4_k`]'s `quantize_scales_mins_weighted`, with nmax 31).
pub fn quantize_block_weighted(x: &[f32; QK_K], qw: &[f32; QK_K]) -> BlockQ5K {
    from_parts(quantize_scales_mins_weighted(x, qw, 31))
}

/// ggml's `quantize_row_q5_K_impl`: one row with the importance of each column (an imatrix
/// entry) when given ([`quantize_block_weighted`]); without, [`quantize_ref`].
pub fn quantize_row_weighted(x: &[f32], importance: Option<&[f32]>, blocks: &mut [BlockQ5K]) {
    let Some(qw) = importance else { return quantize_ref(x, blocks) };
    super::weighted_search::super_blocks(x, qw, blocks, quantize_block_weighted);
}

/// The block from the scales, minimums and quants: low nibbles in `qs`, fifth bits in `qh`.
fn from_parts((d, dmin, scales, l): (f16, f16, [u8; K_SCALE_SIZE], [u8; QK_K])) -> BlockQ5K {
    let mut qh = [0u8; QK_K / 8];
    let mut qs = [0u8; QK_K / 2];
    let (mut m1, mut m2) = (1u8, 2u8);
    for (c, ql) in qs.chunks_exact_mut(32).enumerate() {
        let l = &l[64 * c..64 * c + 64];
        for j in 0..32 {
            let mut l1 = l[j];
            if l1 > 15 {
                l1 -= 16;
                qh[j] |= m1;
            }
            let mut l2 = l[j + 32];
            if l2 > 15 {
                l2 -= 16;
                qh[j] |= m2;
            }
            ql[j] = l1 | (l2 << 4);
        }
        m1 <<= 2;
        m2 <<= 2;
    }
    BlockQ5K { d, dmin, scales, qh, qs }
}

/// Quantizes `x` into `blocks` (`x.len()` must be `256 * blocks.len()`). Inputs should be
/// finite (see [`crate::formats::quantize_row`], which checks).
pub fn quantize_ref(x: &[f32], blocks: &mut [BlockQ5K]) {
    assert_block_count(x.len(), blocks.len(), QK_K);
    for (b, chunk) in blocks.iter_mut().zip(x.chunks_exact(QK_K)) {
        *b = quantize_block(chunk.try_into().unwrap());
    }
}
