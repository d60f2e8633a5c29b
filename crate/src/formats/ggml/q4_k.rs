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

use super::{assert_block_count, QK_K};
use crate::gguf::GgmlType;

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
