//! [`dot`](super::kernels::dot), the ggml Q4_0 / Q4_1 / Q8_0 row dot products of
//! [`super::kernels`] and the 8-weight step of its INT4 one, in explicit wasm SIMD128
//! instructions (wasm32 with `simd128` only).
//!
//! Why: LLVM's auto-vectorized form of the portable lane loops is slow in wasm (the u8 → f32
//! widening in particular; the same was measured for the quantizers, see
//! `formats/ggml/simd128.rs`), and these loops are most of the lab's CPU decode time.
//!
//! Each function performs **the same f32 operations in the same order per lane** as its portable
//! twin in `kernels.rs` (lane `j` of the accumulator vectors is the portable `acc[j]`; SIMD128
//! has no fused multiply-add, so every product and sum is rounded as in the scalar code), and
//! reduces the lanes in the same order, so results are bit-identical. The Rust unit tests in
//! `kernels.rs` run natively only, so they check the portable twins; these functions are checked
//! through the wasm module: tests/wasm/model.test.ts holds the wasm forward's perplexity and KL
//! (base Q4_1 + Q8_0, and q8_0) and greedy tokens (base, q4_0, int4-asym-g128) to the native
//! golden (tests/fixtures/forward/runtime_native.json).

use core::arch::wasm32::*;

use super::kernels::ReadHalf;

/// 4 f32 at `p` (wasm loads have no alignment requirement).
///
/// SAFETY: the caller guarantees that `p .. p + 4` is inside one slice.
#[inline(always)]
unsafe fn load4(p: *const f32) -> v128 {
    unsafe { v128_load(p as *const v128) }
}

/// Adds the lanes of `acc` in the portable order: `acc[0] + acc[1] + …` (left to right).
#[inline(always)]
fn sum_lanes<const N: usize>(acc: [v128; N]) -> f32 {
    // -0.0: the start of `Iterator::sum` for floats, which the portable code uses.
    let mut total = -0f32;
    for v in acc {
        total += f32x4_extract_lane::<0>(v);
        total += f32x4_extract_lane::<1>(v);
        total += f32x4_extract_lane::<2>(v);
        total += f32x4_extract_lane::<3>(v);
    }
    total
}

/// `Σ a[i]·b[i]`: 8 partial sums (two vectors), then the scalar tail, as the portable `dot`.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let body = n - n % 8;
    let mut acc = [f32x4_splat(0.0); 2];
    let mut i = 0;
    while i < body {
        // SAFETY: i + 8 <= body <= len of both slices.
        unsafe {
            for (k, acc) in acc.iter_mut().enumerate() {
                let p = f32x4_mul(load4(a.as_ptr().add(i + 4 * k)), load4(b.as_ptr().add(i + 4 * k)));
                *acc = f32x4_add(*acc, p);
            }
        }
        i += 8;
    }
    let tail: f32 = a[body..n].iter().zip(&b[body..n]).map(|(x, y)| x * y).sum();
    sum_lanes(acc) + tail
}

/// The 16 packed bytes at `q` as four vectors of low nibbles (j = 0..16) and four of high
/// nibbles (j = 16..32), converted to f32.
#[inline(always)]
fn nibbles(q: v128) -> ([v128; 4], [v128; 4]) {
    let lo8 = v128_and(q, u8x16_splat(15));
    let hi8 = u8x16_shr(q, 4);
    let widen = |v: v128| {
        let (a, b) = (u16x8_extend_low_u8x16(v), u16x8_extend_high_u8x16(v));
        [
            f32x4_convert_i32x4(u32x4_extend_low_u16x8(a)),
            f32x4_convert_i32x4(u32x4_extend_high_u16x8(a)),
            f32x4_convert_i32x4(u32x4_extend_low_u16x8(b)),
            f32x4_convert_i32x4(u32x4_extend_high_u16x8(b)),
        ]
    };
    (widen(lo8), widen(hi8))
}

/// One 32-value block of Q4_0/Q4_1: `acc[j] += d·(lo_j·x_j + hi_j·x_{j+16})` for j < 16.
#[inline(always)]
fn nibble_block(acc: &mut [v128; 4], d: f32, qs: &[u8], xb: &[f32]) {
    assert!(qs.len() >= 16 && xb.len() >= 32);
    // SAFETY: 16 bytes of `qs` and 32 f32 of `xb` (asserted above).
    let (lo, hi) = nibbles(unsafe { v128_load(qs.as_ptr() as *const v128) });
    let d = f32x4_splat(d);
    for k in 0..4 {
        // SAFETY: 4k + 16 + 4 <= 32.
        let (xl, xh) = unsafe { (load4(xb.as_ptr().add(4 * k)), load4(xb.as_ptr().add(16 + 4 * k))) };
        let t = f32x4_add(f32x4_mul(lo[k], xl), f32x4_mul(hi[k], xh));
        acc[k] = f32x4_add(acc[k], f32x4_mul(d, t));
    }
}

/// Q4_1 row · x (see the portable `dot_q4_1`).
#[inline]
pub fn dot_q4_1<H: ReadHalf>(row: &[u8], x: &[f32], xsum: &[f32]) -> f32 {
    let mut acc = [f32x4_splat(0.0); 4];
    let mut mins = 0f32;
    for ((b, xb), &xs) in row.chunks_exact(20).zip(x.chunks_exact(32)).zip(xsum) {
        let (d, m) = (H::at(b, 0), H::at(b, 2));
        nibble_block(&mut acc, d, &b[4..20], xb);
        mins += m * xs;
    }
    sum_lanes(acc) + mins
}

/// Q4_0 row · x (see the portable `dot_q4_0`).
#[inline]
pub fn dot_q4_0<H: ReadHalf>(row: &[u8], x: &[f32], xsum: &[f32]) -> f32 {
    let mut acc = [f32x4_splat(0.0); 4];
    let mut offsets = 0f32;
    for ((b, xb), &xs) in row.chunks_exact(18).zip(x.chunks_exact(32)).zip(xsum) {
        let d = H::at(b, 0);
        nibble_block(&mut acc, d, &b[2..18], xb);
        offsets += 8.0 * d * xs;
    }
    sum_lanes(acc) - offsets
}

/// Q8_0 row · x (see the portable `dot_q8_0`): `acc[j] += d·(q_j·x_j)` for j < 32.
#[inline]
pub fn dot_q8_0<H: ReadHalf>(row: &[u8], x: &[f32]) -> f32 {
    let mut acc = [f32x4_splat(0.0); 8];
    for (b, xb) in row.chunks_exact(34).zip(x.chunks_exact(32)) {
        let d = f32x4_splat(H::at(b, 0));
        for half in 0..2 {
            // SAFETY: bytes 2 + 16·half .. + 16 of the 34-byte block.
            let q = unsafe { v128_load(b.as_ptr().add(2 + 16 * half) as *const v128) };
            let (a, c) = (i16x8_extend_low_i8x16(q), i16x8_extend_high_i8x16(q));
            let qf = [
                f32x4_convert_i32x4(i32x4_extend_low_i16x8(a)),
                f32x4_convert_i32x4(i32x4_extend_high_i16x8(a)),
                f32x4_convert_i32x4(i32x4_extend_low_i16x8(c)),
                f32x4_convert_i32x4(i32x4_extend_high_i16x8(c)),
            ];
            for (k, q) in qf.into_iter().enumerate() {
                let lane = 16 * half + 4 * k;
                // SAFETY: lane + 4 <= 32 = xb.len().
                let xv = unsafe { load4(xb.as_ptr().add(lane)) };
                acc[lane / 4] = f32x4_add(acc[lane / 4], f32x4_mul(d, f32x4_mul(q, xv)));
            }
        }
    }
    sum_lanes(acc)
}

/// The fast step of `dot_int4`: 8 weights from 4 packed bytes (low nibble first), each
/// `s · ((code − z) as f32)`, then `acc[j] += w_j · x_j` — the portable step's operations per lane.
#[inline(always)]
pub fn int4_step(acc: &mut [f32; 8], bytes: &[u8; 4], s: f32, z: i32, xb: &[f32; 8]) {
    let q = u32x4_splat(u32::from_le_bytes(*bytes));
    let (lo8, hi8) = (v128_and(q, u8x16_splat(15)), u8x16_shr(q, 4));
    // Bytes (b0 lo, b0 hi, b1 lo, b1 hi, b2 lo, b2 hi, b3 lo, b3 hi), widened to two u32x4.
    let inter =
        u16x8_extend_low_u8x16(i8x16_shuffle::<0, 16, 1, 17, 2, 18, 3, 19, 0, 16, 1, 17, 2, 18, 3, 19>(lo8, hi8));
    let (lo, hi) = (u32x4_extend_low_u16x8(inter), u32x4_extend_high_u16x8(inter));
    let (zv, sv) = (i32x4_splat(z), f32x4_splat(s));
    // SAFETY: acc and xb hold 8 f32 each; wasm loads and stores have no alignment requirement.
    unsafe {
        for (k, codes) in [lo, hi].into_iter().enumerate() {
            let w = f32x4_mul(sv, f32x4_convert_i32x4(i32x4_sub(codes, zv)));
            let a = acc.as_mut_ptr().add(4 * k) as *mut v128;
            v128_store(a, f32x4_add(v128_load(a), f32x4_mul(w, load4(xb.as_ptr().add(4 * k)))));
        }
    }
}

/// `Σ a_j · (w_j − 128)` in i32 (see the portable `int8_dot::dot_i8_offset_ref`): 16 codes at a
/// time, `w − 128` as the byte with its top bit flipped, both widened to i16 and multiplied in
/// pairs by `i32x4.dot_i16x8` into four i32 lanes, then the scalar tail. Integer sums are exact
/// (|a|·|w − 128| ≤ 128², a lane gains at most 2·128² per step), so any order gives the portable
/// sum bit for bit; tests/wasm/int_dot.test.ts checks that through the `IntDotBench` binding.
///
/// Panics if the lengths differ.
pub fn dot_i8_offset(a: &[i8], w: &[u8]) -> i32 {
    assert_eq!(a.len(), w.len(), "{} activation codes against {} weight codes", a.len(), w.len());
    let body = a.len() - a.len() % 16;
    let flip = i8x16_splat(-128);
    let mut acc = i32x4_splat(0);
    let mut i = 0;
    while i < body {
        // SAFETY: i + 16 <= body <= the length of both slices.
        let (av, wv) = unsafe {
            (v128_load(a.as_ptr().add(i) as *const v128), v128_xor(v128_load(w.as_ptr().add(i) as *const v128), flip))
        };
        acc = i32x4_add(acc, i32x4_dot_i16x8(i16x8_extend_low_i8x16(av), i16x8_extend_low_i8x16(wv)));
        acc = i32x4_add(acc, i32x4_dot_i16x8(i16x8_extend_high_i8x16(av), i16x8_extend_high_i8x16(wv)));
        i += 16;
    }
    let lanes = i32x4_extract_lane::<0>(acc)
        .wrapping_add(i32x4_extract_lane::<1>(acc))
        .wrapping_add(i32x4_extract_lane::<2>(acc))
        .wrapping_add(i32x4_extract_lane::<3>(acc));
    lanes + super::int8_dot::dot_i8_offset_ref(&a[body..], &w[body..])
}
