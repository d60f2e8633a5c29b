//! TQ1_0 (ternary, BitNet b1.58): super-blocks of 256 weights in {-1, 0, 1} times one f16 `d`,
//! packed five trits per byte (3^5 = 243 <= 256) as a base-3 fixed-point fraction.
//! 54 bytes per 256 weights = 1.6875 bits per weight.
//!
//! ```text
//! byte 0                        48        52     54
//!      +------------------------+---------+------+
//!      | qs[48]                 | qh[4]   |  d   |
//!      | 5 trits per byte       | 4 trits | f16  |
//!      +------------------------+---------+------+
//! Trit n of byte b: t = ((u8)(b * 3^n) * 3) >> 8, value = (t - 1) * d.
//! Order: qs[0..32] (n = 0..5, 32 bytes each) -> values 0..160,
//!        qs[32..48] (n = 0..5, 16 bytes each) -> values 160..240,
//!        qh[0..4]   (n = 0..4, 4 bytes each)  -> values 240..256.
//! ```

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::{assert_block_count, QK_K};
use crate::formats::GgmlType;

/// ggml's `block_tq1_0`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockTq1_0 {
    /// Five trits per byte.
    pub qs: [u8; (QK_K - 4 * QK_K / 64) / 5],
    /// Four trits per byte.
    pub qh: [u8; QK_K / 64],
    /// Scale.
    pub d: f16,
}

const _: () = assert!(size_of::<BlockTq1_0>() == 54);
const _: () = assert!(size_of::<BlockTq1_0>() == GgmlType::TQ1_0.block_layout().1);
const _: () = assert!(QK_K == GgmlType::TQ1_0.block_layout().0);

const POW3: [u8; 5] = [1, 3, 9, 27, 81];

/// Trit `n` of a packed byte, as `(t - 1)` in -1..=1.
fn trit(byte: u8, n: usize) -> i16 {
    let q = byte.wrapping_mul(POW3[n]);
    ((q as u16 * 3) >> 8) as i16 - 1
}

/// One super-block, as ggml's `dequantize_row_tq1_0`: `y = (t - 1) * d`.
pub fn dequantize_block(b: &BlockTq1_0, y: &mut [f32; QK_K]) {
    let d = b.d.to_f32();
    let mut out = y.iter_mut();
    let mut emit = |bytes: &[u8], trits: usize| {
        for n in 0..trits {
            for &byte in bytes {
                *out.next().expect("256 values") = trit(byte, n) as f32 * d;
            }
        }
    };
    emit(&b.qs[..32], 5);
    emit(&b.qs[32..], 5);
    emit(&b.qh, 4);
}

/// Dequantizes `blocks` into `y` (`y.len()` must be `256 * blocks.len()`).
pub fn dequantize_ref(blocks: &[BlockTq1_0], y: &mut [f32]) {
    assert_block_count(y.len(), blocks.len(), QK_K);
    for (b, out) in blocks.iter().zip(y.chunks_exact_mut(QK_K)) {
        dequantize_block(b, out.try_into().unwrap());
    }
}
