//! MXFP4 (OCP microscaling FP4): blocks of 32 weights, one E8M0 power-of-two scale byte `e`,
//! 4-bit E2M1 values. 17 bytes per 32 weights = 4.25 bits per weight.
//!
//! ```text
//! byte 0    1                                   17
//!      +----+-----------------------------------+
//!      | e  | qs[16]                            |
//!      | u8 | qs[j] = i[j] | i[j + 16] << 4     |
//!      +----+-----------------------------------+
//! x[j] = KVALUES_MXFP4[i[j]] * 2^(e - 128)      (the table holds doubled E2M1 values,
//!                                               so the scale is halved to compensate)
//! ```

use bytemuck::{Pod, Zeroable};

use super::assert_block_count;
use crate::formats::GgmlType;

/// Values per block (`QK_MXFP4`).
pub const QK: usize = 32;

/// ggml's `kvalues_mxfp4`: E2M1 values, doubled so they are integers.
pub const KVALUES_MXFP4: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/// ggml's `block_mxfp4`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockMxfp4 {
    /// E8M0 exponent (bias 127).
    pub e: u8,
    /// E2M1 codes: low nibble of byte `j` is value `j`, high nibble is value `j + 16`.
    pub qs: [u8; QK / 2],
}

const _: () = assert!(size_of::<BlockMxfp4>() == 17);
const _: () = assert!(size_of::<BlockMxfp4>() == GgmlType::MXFP4.block_layout().1);
const _: () = assert!(QK == GgmlType::MXFP4.block_layout().0);

/// ggml's `ggml_e8m0_to_fp32_half`: `2^(e - 127) / 2`, built from bits (subnormal for e < 2).
pub fn e8m0_to_fp32_half(e: u8) -> f32 {
    let bits = if e < 2 { 0x0020_0000u32 << e } else { ((e - 1) as u32) << 23 };
    f32::from_bits(bits)
}

/// One block, as ggml's `dequantize_row_mxfp4`: `y = kvalue * d`.
pub fn dequantize_block(b: &BlockMxfp4, y: &mut [f32; QK]) {
    let d = e8m0_to_fp32_half(b.e);
    for (j, &q) in b.qs.iter().enumerate() {
        y[j] = KVALUES_MXFP4[(q & 0x0F) as usize] as f32 * d;
        y[j + QK / 2] = KVALUES_MXFP4[(q >> 4) as usize] as f32 * d;
    }
}

/// Dequantizes `blocks` into `y` (`y.len()` must be `32 * blocks.len()`).
pub fn dequantize_ref(blocks: &[BlockMxfp4], y: &mut [f32]) {
    assert_block_count(y.len(), blocks.len(), QK);
    for (b, out) in blocks.iter().zip(y.chunks_exact_mut(QK)) {
        dequantize_block(b, out.try_into().unwrap());
    }
}
