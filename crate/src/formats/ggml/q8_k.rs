//! Q8_K: super-blocks of 256 weights, an f32 scale `d`, signed 8-bit quants, and the sums of
//! each group of 16 quants (`bsums`, used by the k-quant dot products, not by dequantization).
//! ggml uses it as the intermediate type for activations. 292 bytes per 256 weights =
//! 9.125 bits per weight.
//!
//! ```text
//! byte 0      4                                260                  292
//!      +------+--------------------------------+--------------------+
//!      |  d   | qs[256]: i8                    | bsums[16]: i16     |
//!      | f32  |                                | sum of qs[16i..]   |
//!      +------+--------------------------------+--------------------+
//! x[j] = d * qs[j]
//! ```

use bytemuck::{Pod, Zeroable};

use super::{assert_block_count, QK_K};
use crate::formats::GgmlType;

/// ggml's `block_q8_K`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ8K {
    /// Scale (a full f32, unlike the other types).
    pub d: f32,
    /// Quants.
    pub qs: [i8; QK_K],
    /// Sum of each group of 16 quants.
    pub bsums: [i16; QK_K / 16],
}

const _: () = assert!(size_of::<BlockQ8K>() == 292);
const _: () = assert!(size_of::<BlockQ8K>() == GgmlType::Q8_K.block_layout().1);
const _: () = assert!(QK_K == GgmlType::Q8_K.block_layout().0);

/// One super-block, as ggml's `dequantize_row_q8_K`: `y = d * q`.
pub fn dequantize_block(b: &BlockQ8K, y: &mut [f32; QK_K]) {
    for (out, &q) in y.iter_mut().zip(&b.qs) {
        *out = b.d * q as f32;
    }
}

/// Dequantizes `blocks` into `y` (`y.len()` must be `256 * blocks.len()`).
pub fn dequantize_ref(blocks: &[BlockQ8K], y: &mut [f32]) {
    assert_block_count(y.len(), blocks.len(), QK_K);
    for (b, out) in blocks.iter().zip(y.chunks_exact_mut(QK_K)) {
        dequantize_block(b, out.try_into().unwrap());
    }
}
