//! Dot products of one packed weight row with an f32 vector: the inner loops of
//! [`Matrix::matvec`](super::Matrix::matvec).
//!
//! - ggml Q4_0 / Q4_1 / Q8_0: keep one partial sum per lane across all blocks of the row (scaled
//!   by each block's `d` as they go) and reduce the lanes once at the end: no per-block
//!   horizontal sum, so the compiler vectorizes them.
//! - INT4 (symmetric or asymmetric, per tensor / channel / group) and bitsandbytes NF4/FP4:
//!   decode eight weights at a time in registers and accumulate them exactly as [`dot`] would
//!   accumulate the decoded row, so they are **bit-identical** to "decode the row into a buffer,
//!   then [`dot`]" (the tests assert equality of the bits) while skipping the generic decoder
//!   and the buffer. Keeping the same summation order is what makes exactness possible; it costs
//!   little here because decoding, not the sum, was the slow part.
//!
//! Every order is fixed, so results are deterministic.
//!
//! In the wasm build (`simd128`), [`dot`], `dot_q4_0`, `dot_q4_1`, `dot_q8_0` and the fast
//! 8-weight step of `dot_int4` are the explicit SIMD128 versions of `kernels_simd128.rs`,
//! bit-identical to the portable loops here.

use half::f16;

use crate::formats::bnb::Bnb4Tensor;
use crate::formats::int::IntTensor;
use crate::formats::Mapping;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub use super::kernels_simd128::dot;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(super) use super::kernels_simd128::{dot_q4_0, dot_q4_1, dot_q8_0};

/// `Σ a[i]·b[i]` with 8 interleaved f32 partial sums (fixed order; vectorizes).
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

pub(super) fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// How a kernel reads a block's f16 scale. Both ways give the same (exact) f32; they differ in
/// cost: `half`'s conversion checks the CPU and calls out per scale, which in a 32-weight block
/// costs about as much as the block's arithmetic, while [`F16c`] is one inlined instruction.
pub(super) trait ReadHalf {
    fn at(b: &[u8], i: usize) -> f32;
}

/// [`f16_at`]: any target.
pub(super) struct PortableHalf;

impl ReadHalf for PortableHalf {
    #[inline(always)]
    fn at(b: &[u8], i: usize) -> f32 {
        f16_at(b, i)
    }
}

/// The F16C instruction; only for code compiled with (and run on a CPU with) `f16c`.
#[cfg(target_arch = "x86_64")]
pub(super) struct F16c;

#[cfg(target_arch = "x86_64")]
impl ReadHalf for F16c {
    #[inline(always)]
    fn at(b: &[u8], i: usize) -> f32 {
        use std::arch::x86_64::{_mm_cvtph_ps, _mm_cvtsi32_si128, _mm_cvtss_f32};
        let bits = i32::from(u16::from_le_bytes([b[i], b[i + 1]]));
        // SAFETY: `F16c` is only used inside functions compiled with the `f16c` target feature,
        // which run only after the CPU was checked for it.
        unsafe { _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits))) }
    }
}

/// Q4_1 row · x: `Σ_blocks Σ_j (q_j·d + m)·x_j = Σ d·(q_j·x_j) + Σ m·Σ_block x`
/// (`xsum` holds the per-block `Σ x`).
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[inline(always)]
pub(super) fn dot_q4_1<H: ReadHalf>(row: &[u8], x: &[f32], xsum: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let mut mins = 0f32;
    for ((b, xb), &xs) in row.chunks_exact(20).zip(x.chunks_exact(32)).zip(xsum) {
        let (d, m) = (H::at(b, 0), H::at(b, 2));
        let qs: &[u8; 16] = b[4..20].try_into().unwrap();
        let xb: &[f32; 32] = xb.try_into().unwrap();
        for j in 0..16 {
            let (lo, hi) = (f32::from(qs[j] & 15), f32::from(qs[j] >> 4));
            acc[j] += d * (lo * xb[j] + hi * xb[j + 16]);
        }
        mins += m * xs;
    }
    acc.iter().sum::<f32>() + mins
}

/// Q4_0 row · x: `Σ (q_j - 8)·d·x_j = Σ d·(q_j·x_j) - Σ 8·d·Σ_block x`.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[inline(always)]
pub(super) fn dot_q4_0<H: ReadHalf>(row: &[u8], x: &[f32], xsum: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let mut offsets = 0f32;
    for ((b, xb), &xs) in row.chunks_exact(18).zip(x.chunks_exact(32)).zip(xsum) {
        let d = H::at(b, 0);
        let qs: &[u8; 16] = b[2..18].try_into().unwrap();
        let xb: &[f32; 32] = xb.try_into().unwrap();
        for j in 0..16 {
            let (lo, hi) = (f32::from(qs[j] & 15), f32::from(qs[j] >> 4));
            acc[j] += d * (lo * xb[j] + hi * xb[j + 16]);
        }
        offsets += 8.0 * d * xs;
    }
    acc.iter().sum::<f32>() - offsets
}

/// Q8_0 row · x: `Σ d·(q_j·x_j)`.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[inline(always)]
pub(super) fn dot_q8_0<H: ReadHalf>(row: &[u8], x: &[f32]) -> f32 {
    let mut acc = [0f32; 32];
    for (b, xb) in row.chunks_exact(34).zip(x.chunks_exact(32)) {
        let d = H::at(b, 0);
        let qs: &[u8; 32] = b[2..34].try_into().unwrap();
        let xb: &[f32; 32] = xb.try_into().unwrap();
        for j in 0..32 {
            acc[j] += d * (f32::from(qs[j] as i8) * xb[j]);
        }
    }
    acc.iter().sum()
}

/// Whether [`dot_int4`] handles `t` (4-bit codes; every granularity and mapping).
pub(super) fn is_int4(t: &IntTensor) -> bool {
    t.bits == 4
}

/// Row `r` of a 4-bit [`IntTensor`] · x, bit-identical to `dot(&decoded_row, x)`.
///
/// A weight is `scale_g · ((code − offset_g) as f32)` with offset 8 (symmetric) or the group's
/// zero point (asymmetric), computed exactly as `IntTensor::dequantize_row` does. Codes are a
/// nibble stream over the flattened tensor (low nibble first), so a row of odd length starts
/// mid-byte; chunks of 8 weights that start on a byte and lie in one group take the fast path.
pub(super) fn dot_int4(t: &IntTensor, r: usize, x: &[f32]) -> f32 {
    let cols = x.len();
    let start = r * cols;
    let symmetric = t.scheme.mapping == Mapping::Symmetric;
    let params = |g: usize| -> (f32, i32) {
        let offset = if symmetric { 8 } else { i32::from(t.zero_points[g]) };
        (t.scales[g], offset)
    };
    let code = |k: usize| i32::from((t.packed[k / 2] >> ((k % 2) * 4)) & 0x0f);
    let weight = |k: usize| {
        let (s, z) = params(t.group_of(k));
        s * (code(k) - z) as f32
    };
    // The current group `g` covers flat indices `..g_end`.
    let group_end = |g: usize| if t.group_len == 0 { usize::MAX } else { (g + 1) * t.group_len };
    let mut g = t.group_of(start);
    let (mut g_end, (mut s, mut z)) = (group_end(g), params(g));

    let mut acc = [0f32; 8];
    let (xc, tail_x) = (x.chunks_exact(8), x.chunks_exact(8).remainder());
    for (c, xb) in xc.enumerate() {
        let f = start + 8 * c;
        if f >= g_end {
            g = t.group_of(f);
            (g_end, (s, z)) = (group_end(g), params(g));
        }
        let xb: &[f32; 8] = xb.try_into().unwrap();
        if f.is_multiple_of(2) && f + 8 <= g_end {
            let b: &[u8; 4] = t.packed[f / 2..f / 2 + 4].try_into().unwrap();
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            super::kernels_simd128::int4_step(&mut acc, b, s, z, xb);
            #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
            {
                let mut w = [0f32; 8];
                for j in 0..4 {
                    w[2 * j] = s * (i32::from(b[j] & 0x0f) - z) as f32;
                    w[2 * j + 1] = s * (i32::from(b[j] >> 4) - z) as f32;
                }
                for j in 0..8 {
                    acc[j] += w[j] * xb[j];
                }
            }
        } else {
            for j in 0..8 {
                acc[j] += weight(f + j) * xb[j];
            }
        }
    }
    let main = cols - tail_x.len();
    let tail: f32 = tail_x.iter().enumerate().map(|(j, &xj)| weight(start + main + j) * xj).sum();
    acc.iter().sum::<f32>() + tail
}

/// Row `r` of a bitsandbytes NF4/FP4 tensor · x, bit-identical to `dot(&decoded_row, x)`.
///
/// A weight is `table[code] · absmax_b` (blocks over the flattened tensor, codes high nibble
/// first). The 16 products of each block are made once, so a weight is one table lookup.
pub(super) fn dot_bnb4(t: &Bnb4Tensor, r: usize, x: &[f32]) -> f32 {
    let cols = x.len();
    let start = r * cols;
    let (table, block) = (t.ty().table(), t.block());
    let code = |k: usize| (t.packed[k / 2] >> (4 - (k % 2) * 4)) & 0x0f;
    let levels_of = |b: usize| {
        let absmax = t.absmax_of(b);
        table.map(|c| c * absmax)
    };
    let mut b = start / block;
    let mut levels = levels_of(b);
    let mut b_end = (b + 1) * block;

    let mut acc = [0f32; 8];
    let (xc, tail_x) = (x.chunks_exact(8), x.chunks_exact(8).remainder());
    for (c, xb) in xc.enumerate() {
        let f = start + 8 * c;
        if f >= b_end {
            b = f / block;
            (levels, b_end) = (levels_of(b), (b + 1) * block);
        }
        let xb: &[f32; 8] = xb.try_into().unwrap();
        if f.is_multiple_of(2) && f + 8 <= b_end {
            let p: &[u8; 4] = t.packed[f / 2..f / 2 + 4].try_into().unwrap();
            for j in 0..4 {
                acc[2 * j] += levels[usize::from(p[j] >> 4)] * xb[2 * j];
                acc[2 * j + 1] += levels[usize::from(p[j] & 0x0f)] * xb[2 * j + 1];
            }
        } else {
            for j in 0..8 {
                acc[j] += table[usize::from(code(f + j))] * t.absmax_of((f + j) / block) * xb[j];
            }
        }
    }
    let main = cols - tail_x.len();
    let tail: f32 = tail_x
        .iter()
        .enumerate()
        .map(|(j, &xj)| {
            let k = start + main + j;
            table[usize::from(code(k))] * t.absmax_of(k / block) * xj
        })
        .sum();
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::{quantize, QuantScheme, QuantizedTensor, TensorShape};

    /// Deterministic values with outliers and exact zeros (LCG, no dependency).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|i| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let u = (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                match i % 29 {
                    0 => 0.0,
                    7 => u * 40.0,
                    _ => u,
                }
            })
            .collect()
    }

    /// The fused kernel against decode-then-dot, compared bit for bit on every row.
    fn check(scheme: &str, rows: usize, cols: usize) {
        let s = QuantScheme::parse(scheme).unwrap();
        let q = quantize(&s, &values(rows * cols, (rows * 1000 + cols) as u64), TensorShape::new(rows, cols))
            .unwrap_or_else(|e| panic!("{scheme} {rows}×{cols}: {e}"));
        let x = values(cols, 7);
        let mut decoded = vec![0f32; cols];
        for r in 0..rows {
            q.dequantize_row(r, &mut decoded).unwrap();
            let want = dot(&decoded, &x);
            let got = match &q {
                QuantizedTensor::Int(t) => dot_int4(t, r, &x),
                QuantizedTensor::Bnb4(t) => dot_bnb4(t, r, &x),
                _ => unreachable!(),
            };
            assert_eq!(got.to_bits(), want.to_bits(), "{scheme} {rows}×{cols} row {r}: {got} vs {want}");
        }
    }

    #[test]
    fn int4_fused_equals_decode_then_dot() {
        // Odd widths (rows start mid-byte), tails shorter than 8, groups shorter than a chunk
        // or not aligned to it, one group for the whole tensor.
        for (rows, cols) in [(3, 1), (5, 7), (4, 8), (3, 9), (7, 30), (6, 62), (3, 70), (5, 129), (4, 256)] {
            for scheme in ["int4-sym-channel", "int4-asym-channel", "int4-sym-tensor", "int4-asym-tensor-mse"] {
                check(scheme, rows, cols);
            }
        }
        for (rows, cols, g) in [(5, 6, 2), (3, 12, 4), (4, 30, 2), (3, 36, 4), (3, 40, 8), (5, 48, 16), (3, 256, 128)] {
            check(&format!("int4-sym-g{g}"), rows, cols);
            check(&format!("int4-asym-g{g}"), rows, cols);
        }
    }

    #[test]
    fn bnb4_fused_equals_decode_then_dot() {
        // Blocks run over the flattened tensor, so with these widths they straddle rows.
        for (rows, cols) in [(3, 1), (5, 7), (4, 8), (3, 9), (7, 30), (6, 62), (3, 70), (5, 129), (4, 256)] {
            for scheme in ["nf4-b64", "nf4-b32-dq", "fp4-b128", "nf4-b64-dq"] {
                check(scheme, rows, cols);
            }
        }
    }

    #[test]
    fn fused_products_do_not_depend_on_the_thread_count() {
        // 512×512 = 2^18 weights: large enough to be split over the pool.
        let (rows, cols) = (512, 512);
        let w = values(rows * cols, 3);
        let x = values(cols, 4);
        for scheme in ["int4-asym-g128", "nf4-b64-dq"] {
            let q = quantize(&QuantScheme::parse(scheme).unwrap(), &w, TensorShape::new(rows, cols)).unwrap();
            let m = super::super::Matrix::from_quantized(q).unwrap();
            let mut one = vec![0f32; rows];
            m.matvec_threads(&x, &mut one, 1);
            for threads in [2, 3, 8] {
                let mut many = vec![0f32; rows];
                m.matvec_threads(&x, &mut many, threads);
                assert!(one.iter().zip(&many).all(|(a, b)| a.to_bits() == b.to_bits()), "{scheme}, {threads} threads");
            }
        }
    }
}
