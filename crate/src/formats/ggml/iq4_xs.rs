//! IQ4_XS: super-blocks of 256 weights in 8 sub-blocks of 32, 4-bit indices into the IQ4_NL
//! table, a 6-bit signed scale per sub-block (offset 32) and one f16 `d`.
//! 136 bytes per 256 weights = 4.25 bits per weight.
//!
//! ```text
//! byte 0      2            4            8                                   136
//!      +------+------------+------------+-----------------------------------+
//!      |  d   | scales_h   | scales_l[4]| qs[128]                           |
//!      | f16  | u16: bits  | nibbles:   | sub-block s uses qs[16s..16s+16]: |
//!      |      | 2s..2s+1 = | low 4 bits |   lo nibbles = values 0..16       |
//!      |      | scale_s    | of scale_s |   hi nibbles = values 16..32      |
//!      |      | bits 4-5   | (s even:lo)|                                   |
//!      +------+------------+------------+-----------------------------------+
//! x = (d * (scale_s - 32)) * KVALUES_IQ4NL[i]
//! ```

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::iq4_nl::KVALUES_IQ4NL;
use super::{assert_block_count, QK_K};
use crate::formats::GgmlType;

/// ggml's `block_iq4_xs`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockIq4Xs {
    /// Super-block scale.
    pub d: f16,
    /// High 2 bits of the eight sub-block scales.
    pub scales_h: u16,
    /// Low 4 bits of the eight sub-block scales.
    pub scales_l: [u8; QK_K / 64],
    /// Table indices.
    pub qs: [u8; QK_K / 2],
}

const _: () = assert!(size_of::<BlockIq4Xs>() == 136);
const _: () = assert!(size_of::<BlockIq4Xs>() == GgmlType::IQ4_XS.block_layout().1);
const _: () = assert!(QK_K == GgmlType::IQ4_XS.block_layout().0);

/// One super-block, as ggml's `dequantize_row_iq4_xs`: `y = dl * kvalues[i]` with
/// `dl = d * (ls - 32)`.
pub fn dequantize_block(b: &BlockIq4Xs, y: &mut [f32; QK_K]) {
    let d = b.d.to_f32();
    for (ib, (qs, out)) in b.qs.chunks_exact(16).zip(y.chunks_exact_mut(32)).enumerate() {
        let ls = ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) as i32 | ((((b.scales_h >> (2 * ib)) & 3) as i32) << 4);
        let dl = d * (ls - 32) as f32;
        for (j, &q) in qs.iter().enumerate() {
            out[j] = dl * KVALUES_IQ4NL[(q & 0xF) as usize] as f32;
            out[j + 16] = dl * KVALUES_IQ4NL[(q >> 4) as usize] as f32;
        }
    }
}

/// Dequantizes `blocks` into `y` (`y.len()` must be `256 * blocks.len()`).
pub fn dequantize_ref(blocks: &[BlockIq4Xs], y: &mut [f32]) {
    assert_block_count(y.len(), blocks.len(), QK_K);
    for (b, out) in blocks.iter().zip(y.chunks_exact_mut(QK_K)) {
        dequantize_block(b, out.try_into().unwrap());
    }
}
