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

use super::{assert_block_count, QK_K};
use crate::gguf::GgmlType;

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
