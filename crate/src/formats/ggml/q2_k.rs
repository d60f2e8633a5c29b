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

use super::{assert_block_count, QK_K};
use crate::gguf::GgmlType;

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
