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
use super::k_quant_search::fp32_to_fp16;
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

/// ggml's `best_index_int8` over [`KVALUES_IQ4NL`]: the index of the level nearest to `x`
/// (the lower one on a tie), by bisection as in C.
fn best_index(x: f32) -> u8 {
    let val = |i: usize| KVALUES_IQ4NL[i] as f32;
    if x <= val(0) {
        return 0;
    }
    if x >= val(15) {
        return 15;
    }
    let (mut ml, mut mu) = (0usize, 15usize);
    while mu - ml > 1 {
        let mav = (ml + mu) / 2;
        if x < val(mav) {
            mu = mav;
        } else {
            ml = mav;
        }
    }
    if x - val(mu - 1) < val(mu) - x {
        (mu - 1) as u8
    } else {
        mu as u8
    }
}

/// ggml's `GROUP_MAX_EPS`: a block whose largest magnitude is below this gets scale 0.
const GROUP_MAX_EPS: f32 = 1e-15;

/// `ntry` of `quantize_iq4_nl`: the scale search tries `id = (itry - 127) / max` for
/// `itry` in `-NTRY..=NTRY`.
const NTRY: i32 = 7;

/// One block, as ggml's `quantize_iq4_nl` without an importance matrix (`quant_weights ==
/// NULL`): `quantize_row_iq4_nl_impl` with one 32-value block and `ntry = 7`, the path
/// llama-quantize takes. The weights of the scale search are `x[j]²`.
pub fn quantize_block(x: &[f32; QK]) -> BlockIq4Nl {
    let mut weight = [0f32; QK];
    for (w, &v) in weight.iter_mut().zip(x) {
        *w = v * v;
    }
    quantize_block_weighted(x, &weight)
}

/// The block quantizer given the per-value weights of the scale search (with an importance
/// matrix ggml uses `qw[j] * sqrt(sigma2 + x[j]²)`; without one, `x[j]²`).
pub fn quantize_block_weighted(x: &[f32; QK], weight: &[f32; QK]) -> BlockIq4Nl {
    let v0 = KVALUES_IQ4NL[0] as f32;
    let mut amax = 0f32;
    let mut max = 0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    // The C code's single sub-block scale (`scales[0]`).
    let scale = if amax < GROUP_MAX_EPS {
        0.0
    } else {
        // `sums(id)`: (Σ w·q·x, Σ w·q²) over the block for the levels nearest to `id·x`.
        let sums = |id: f32| {
            let (mut sumqx, mut sumq2) = (0f32, 0f32);
            for j in 0..QK {
                let q = KVALUES_IQ4NL[best_index(id * x[j]) as usize] as f32;
                let w = weight[j];
                sumqx += w * q * x[j];
                sumq2 += w * q * q;
            }
            (sumqx, sumq2)
        };
        let d = -max / v0;
        let (sumqx, sumq2) = sums(1.0 / d);
        let mut d = if sumq2 > 0.0 { sumqx / sumq2 } else { 0.0 };
        let mut best = d * sumqx;
        for itry in -NTRY..=NTRY {
            let id = (itry + KVALUES_IQ4NL[0] as i32) as f32 / max;
            let (sumqx, sumq2) = sums(id);
            if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        d
    };
    let id = if scale != 0.0 { 1.0 / scale } else { 0.0 };
    let mut l = [0u8; QK];
    for (l, &v) in l.iter_mut().zip(x) {
        *l = best_index(id * v);
    }
    let mut qs = [0u8; QK / 2];
    for (j, q) in qs.iter_mut().enumerate() {
        *q = l[j] | (l[j + QK / 2] << 4);
    }
    BlockIq4Nl { d: fp32_to_fp16(scale), qs }
}

/// Quantizes `x` into `blocks` (`x.len()` must be `32 * blocks.len()`). Inputs should be
/// finite (see [`crate::formats::quantize_row`], which checks).
pub fn quantize_ref(x: &[f32], blocks: &mut [BlockIq4Nl]) {
    assert_block_count(x.len(), blocks.len(), QK);
    for (b, chunk) in blocks.iter_mut().zip(x.chunks_exact(QK)) {
        *b = quantize_block(chunk.try_into().unwrap());
    }
}
