//! TQ2_0 (ternary, BitNet b1.58): super-blocks of 256 weights in {-1, 0, 1} (code 3 decodes to
//! 2) times one f16 `d`, four 2-bit codes per byte. 66 bytes per 256 weights = 2.0625 bits
//! per weight.
//!
//! ```text
//! byte 0                                 64     66
//!      +---------------------------------+------+
//!      | qs[64]: 2-bit codes             |  d   |
//!      |                                 | f16  |
//!      +---------------------------------+------+
//! For chunk c in 0..2 (qs[32c..32c+32]) and l in 0..4, m in 0..32:
//!   value 128c + 32l + m = (((qs[32c + m] >> 2l) & 3) - 1) * d
//! ```

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::{assert_block_count, QK_K};
use crate::formats::GgmlType;

/// ggml's `block_tq2_0`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockTq2_0 {
    /// 2-bit codes, four per byte.
    pub qs: [u8; QK_K / 4],
    /// Scale.
    pub d: f16,
}

const _: () = assert!(size_of::<BlockTq2_0>() == 66);
const _: () = assert!(size_of::<BlockTq2_0>() == GgmlType::TQ2_0.block_layout().1);
const _: () = assert!(QK_K == GgmlType::TQ2_0.block_layout().0);

/// One super-block, as ggml's `dequantize_row_tq2_0`: `y = (q - 1) * d`.
pub fn dequantize_block(b: &BlockTq2_0, y: &mut [f32; QK_K]) {
    let d = b.d.to_f32();
    let mut out = y.iter_mut();
    for chunk in b.qs.chunks_exact(32) {
        for l in 0..4 {
            for &byte in chunk {
                let q = ((byte >> (l * 2)) & 3) as i8;
                *out.next().expect("256 values") = (q - 1) as f32 * d;
            }
        }
    }
}

/// Dequantizes `blocks` into `y` (`y.len()` must be `256 * blocks.len()`).
pub fn dequantize_ref(blocks: &[BlockTq2_0], y: &mut [f32]) {
    assert_block_count(y.len(), blocks.len(), QK_K);
    for (b, out) in blocks.iter().zip(y.chunks_exact_mut(QK_K)) {
        dequantize_block(b, out.try_into().unwrap());
    }
}
