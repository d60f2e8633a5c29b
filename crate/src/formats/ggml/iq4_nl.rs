//! IQ4_NL: blocks of 32 weights, one f16 scale `d`, 4-bit indices into a fixed non-linear
//! table of 16 levels. Same packing as Q4_0. 18 bytes per 32 weights = 4.5 bits per weight.
//!
//! ```text
//! byte 0      2                                   18
//!      +------+-----------------------------------+
//!      |  d   | qs[16]                            |
//!      | f16  | qs[j] = i[j] | i[j + 16] << 4     |
//!      +------+-----------------------------------+
//! x[j] = d * KVALUES_IQ4NL[i[j]]
//! ```

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::assert_block_count;
use crate::formats::GgmlType;

/// Values per block (`QK4_NL`).
pub const QK: usize = 32;

/// ggml's `kvalues_iq4nl`: the 16 levels (also used by IQ4_XS).
pub const KVALUES_IQ4NL: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/// ggml's `block_iq4_nl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockIq4Nl {
    /// Scale.
    pub d: f16,
    /// Table indices: low nibble of byte `j` is value `j`, high nibble is value `j + 16`.
    pub qs: [u8; QK / 2],
}

const _: () = assert!(size_of::<BlockIq4Nl>() == 18);
const _: () = assert!(size_of::<BlockIq4Nl>() == GgmlType::IQ4_NL.block_layout().1);
const _: () = assert!(QK == GgmlType::IQ4_NL.block_layout().0);

/// One block, as ggml's `dequantize_row_iq4_nl`: `y = d * kvalues[i]`.
pub fn dequantize_block(b: &BlockIq4Nl, y: &mut [f32; QK]) {
    let d = b.d.to_f32();
    for (j, &q) in b.qs.iter().enumerate() {
        y[j] = d * KVALUES_IQ4NL[(q & 0xF) as usize] as f32;
        y[j + QK / 2] = d * KVALUES_IQ4NL[(q >> 4) as usize] as f32;
    }
}

/// Dequantizes `blocks` into `y` (`y.len()` must be `32 * blocks.len()`).
pub fn dequantize_ref(blocks: &[BlockIq4Nl], y: &mut [f32]) {
    assert_block_count(y.len(), blocks.len(), QK);
    for (b, out) in blocks.iter().zip(y.chunks_exact_mut(QK)) {
        dequantize_block(b, out.try_into().unwrap());
    }
}
