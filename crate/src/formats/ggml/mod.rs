//! ggml's block-quantized formats, one file per type, each a plain transcription of the C
//! reference in ggml-quants.c (`dequantize_row_*`, `quantize_row_*_ref`).
//!
//! | file          | types            | block (values / bytes) | dequantize | quantize |
//! |---------------|------------------|------------------------|------------|----------|
//! | `q4_0.rs`     | Q4_0             | 32 / 18                | yes        | yes      |
//! | `q4_1.rs`     | Q4_1             | 32 / 20                | yes        | yes      |
//! | `q5_0.rs`     | Q5_0             | 32 / 22                | yes        | yes      |
//! | `q5_1.rs`     | Q5_1             | 32 / 24                | yes        | yes      |
//! | `q8_0.rs`     | Q8_0             | 32 / 34                | yes        | yes      |
//! | `q2_k.rs`     | Q2_K             | 256 / 84               | yes        | yes      |
//! | `q3_k.rs`     | Q3_K             | 256 / 110              | yes        | yes      |
//! | `q4_k.rs`     | Q4_K (+ the 6-bit scale packing shared with Q5_K) | 256 / 144 | yes | yes |
//! | `q5_k.rs`     | Q5_K             | 256 / 176              | yes        | yes      |
//! | `q6_k.rs`     | Q6_K             | 256 / 210              | yes        | yes      |
//! | `q8_k.rs`     | Q8_K             | 256 / 292              | yes        | no       |
//! | `simd128.rs`  | (helpers)        | wasm SIMD128 per-value work of the Q4_0 … Q8_0 fast paths (see [`lanes`]) | | |
//! | `k_quant_search.rs` | (helpers)   | scale searches, `nearest_int`, f16 rounding shared by the K-quant quantizers | | |
//! | `iq4_nl.rs`   | IQ4_NL           | 32 / 18                | yes        | yes (`quantize_iq4_nl`) |
//! | `presets.rs`  | (policy)         | llama.cpp's file types (Q4_K_M …) and their per-tensor type rules | | |
//! | `weighted_search.rs` | (helpers)  | the importance-weighted searches of the imatrix quantizers (`quantize_row_weighted`) | | |
//! | `iq4_xs.rs`   | IQ4_XS           | 256 / 136              | yes        | no       |
//! | `mxfp4.rs`    | MXFP4            | 32 / 17                | yes        | no       |
//! | `tq1_0.rs`    | TQ1_0            | 256 / 54               | yes        | no       |
//! | `tq2_0.rs`    | TQ2_0            | 256 / 66               | yes        | no       |
//!
//! Each file has a `#[repr(C)]` block struct (bytemuck `Pod`, sizes asserted at compile time
//! against [`GgmlType::block_layout`](crate::formats::GgmlType::block_layout)), a
//! `dequantize_block` / `dequantize_ref` pair and, where implemented, `quantize_block` /
//! `quantize_ref`.
//!
//! Float arithmetic is written operation by operation in the same order as the C code
//! (`x = q*d + m` is a multiply then an add; Rust never fuses them into an FMA), in f32, so
//! results are bit-identical to an FMA-free build of ggml and to gguf-py's numpy versions.

#[cfg(target_endian = "big")]
compile_error!("the GGML block structs assume a little-endian host");

pub mod iq4_nl;
pub mod iq4_xs;
pub mod k_quant_search;
pub mod levels;
pub mod mxfp4;
pub mod presets;
pub mod q2_k;
pub mod q3_k;
pub mod q4_0;
pub mod q4_1;
pub mod q4_k;
pub mod q5_0;
pub mod q5_1;
pub mod q5_k;
pub mod q6_k;
pub mod q8_0;
pub mod q8_k;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128;
pub mod tq1_0;
pub mod tq2_0;
pub mod weighted_search;

/// Values per super-block of the K-quants, IQ4_XS and TQ types (ggml's `QK_K`).
pub const QK_K: usize = 256;

/// C's `(int8_t)x` for a float, as x86-64 compilers emit it (`cvttss2si` to 32 bits, keep the
/// low byte): truncation toward zero; NaN and values outside the i32 range give 0, values in
/// the i32 range wrap to 8 bits. The quantizers only hit the out-of-range cases for degenerate
/// blocks (a scale whose reciprocal overflows), where this matches ggml on x86 and gguf-py.
pub(crate) fn c_f32_to_i8(x: f32) -> i8 {
    if x.is_nan() || !(-2_147_483_648.0..2_147_483_648.0).contains(&x) {
        0
    } else {
        (x as i32) as i8
    }
}

/// Lane-wise helpers of the fast 32-value quantizers (`quantize_block_fast` in `q4_0.rs` …
/// `q8_0.rs`). Each returns exactly what the C reference's sequential scan returns, but is
/// written as independent lanes plus a final reduction.
///
/// Two implementations of the per-value work exist: the portable one below, written as 8 plain
/// lanes so that LLVM vectorizes it on x86-64, and [`super::simd128`] with explicit wasm SIMD128
/// instructions (LLVM's auto-vectorized form of the portable code ran slower than the scalar
/// references in wasm). The block-level decisions (ties, signed zeros) are shared.
///
/// Precondition (all of them): every value is finite. [`crate::formats::quantize_row`] rejects
/// NaN and infinities before it calls any quantizer.
pub(crate) mod lanes {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    pub(crate) use super::simd128::{bit4_mask, min_quants, offset_quants, pack_nibbles, raw_min_max, rounded_quants};
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    pub(crate) use portable::{bit4_mask, min_quants, offset_quants, pack_nibbles, raw_min_max, rounded_quants};

    /// `if a > b { a } else { b }`: one `maxps` / `f32x4.pmax` lane (no NaN handling needed).
    #[inline(always)]
    fn max(a: f32, b: f32) -> f32 {
        if a > b {
            a
        } else {
            b
        }
    }

    /// `max |x[j]|` (0 for an all-zero block), the `amax` of the C loops
    /// `if (amax < fabsf(v)) amax = fabsf(v)` (maximum is order-independent without NaN).
    #[inline(always)]
    pub(crate) fn abs_max(x: &[f32; 32]) -> f32 {
        let (lo, hi) = raw_min_max(x);
        // `abs` makes an all-zero block's result +0, as in C (the lanes may give -0).
        max(hi, -lo).abs()
    }

    /// The C scan of Q4_0 / Q5_0: the first value of largest magnitude, sign kept
    /// (`if (amax < fabsf(v)) { amax = fabsf(v); max = v; }`), `+0.0` if every value is a zero.
    ///
    /// If `max > -min`, the largest magnitude only occurs as `+max` (and is not zero), and
    /// symmetrically for `min`; only a tie (`+a` and `-a` both present, or all zeros) needs
    /// the order of the values.
    #[inline(always)]
    pub(crate) fn first_abs_max(x: &[f32; 32]) -> f32 {
        let (lo, hi) = raw_min_max(x);
        if hi > -lo {
            hi
        } else if -lo > hi {
            lo
        } else if hi == 0.0 {
            // The C loop never updates `max`, which stays +0 even for a block of -0.
            0.0
        } else {
            first_of_magnitude(x, hi)
        }
    }

    /// The first value of `x` whose magnitude is `a` (which must occur). Out of line: ties
    /// are rare, and keeping this loop out makes the fast quantizers small enough to inline.
    #[cold]
    #[inline(never)]
    fn first_of_magnitude(x: &[f32; 32], a: f32) -> f32 {
        *x.iter().find(|v| v.abs() == a).expect("the magnitude is in the block")
    }

    /// The first zero of `x` (`+0.0` or `-0.0`; one must occur), out of line like
    /// [`first_of_magnitude`].
    #[cold]
    #[inline(never)]
    fn first_zero(x: &[f32; 32]) -> f32 {
        *x.iter().find(|&&v| v == 0.0).expect("a zero is in the block")
    }

    /// The C scan of Q4_1 / Q5_1: `min` and `max` starting from `FLT_MAX` / `-FLT_MAX`, updated
    /// on strictly smaller / larger values. The values equal the lane-wise minimum and maximum;
    /// only a zero result can differ, in sign: the C scan keeps the first zero it meets, so a
    /// zero result is replaced by the first zero of the block.
    #[inline(always)]
    pub(crate) fn min_max(x: &[f32; 32]) -> (f32, f32) {
        let (mut min, mut max) = raw_min_max(x);
        if min == 0.0 || max == 0.0 {
            let first_zero = first_zero(x);
            if min == 0.0 {
                min = first_zero;
            }
            if max == 0.0 {
                max = first_zero;
            }
        }
        (min, max)
    }

    /// The portable lanes (x86-64 and every target without wasm SIMD128).
    #[cfg_attr(all(target_arch = "wasm32", target_feature = "simd128"), allow(dead_code))]
    mod portable {
        /// `if a > b { a } else { b }`: one `maxps` lane.
        #[inline(always)]
        fn max(a: f32, b: f32) -> f32 {
            if a > b {
                a
            } else {
                b
            }
        }

        /// `if a < b { a } else { b }`: one `minps` lane.
        #[inline(always)]
        fn min(a: f32, b: f32) -> f32 {
            if a < b {
                a
            } else {
                b
            }
        }

        /// Reduces 8 lanes with `f` as a tree (8 → 4 → 2 → 1).
        #[inline(always)]
        fn reduce8(mut v: [f32; 8], f: impl Fn(f32, f32) -> f32) -> f32 {
            for w in [4, 2, 1] {
                for i in 0..w {
                    v[i] = f(v[i], v[i + w]);
                }
            }
            v[0]
        }

        /// Lane-wise `(min, max)` of a block: exact values, but the sign of a zero result is
        /// unspecified (the lanes compare in a different order than the C scan).
        #[inline(always)]
        pub(crate) fn raw_min_max(x: &[f32; 32]) -> (f32, f32) {
            let mut lo = [0.0f32; 8];
            let mut hi = [0.0f32; 8];
            lo.copy_from_slice(&x[..8]);
            hi.copy_from_slice(&x[..8]);
            for k in 1..4 {
                for i in 0..8 {
                    lo[i] = min(lo[i], x[8 * k + i]);
                    hi[i] = max(hi[i], x[8 * k + i]);
                }
            }
            (reduce8(lo, min), reduce8(hi, max))
        }

        /// `y` clamped to `[LO, HI]` (NaN gives `HI`), then truncated toward zero, like C's
        /// `(int)` cast. Callers pick bounds that the values they convert are proven to stay
        /// within, or that equal the C code's own clamp, so the clamp changes nothing.
        ///
        /// Why not `y as i32`: Rust's saturating cast has no vector form on x86-64's baseline
        /// (SSE2), and LLVM scalarizes it (`cvttss2si` + two `cmov` per value). After the clamp
        /// the value is in range by construction, so the unchecked cast is sound for any input
        /// and compiles to one `cvttps2dq` per 4 values.
        #[inline(always)]
        fn trunc_clamped<const LO: i32, const HI: i32>(y: f32) -> i32 {
            const { assert!(LO <= HI && -(1 << 24) <= LO && HI <= 1 << 24) };
            let (lo, hi) = (LO as f32, HI as f32);
            let y = if y < hi { y } else { hi };
            let y = if y > lo { y } else { lo };
            // SAFETY: `y` is now a number (NaN took the `hi` branch) in `[lo, hi]`, exactly
            // representable bounds inside the i32 range, so its truncation is representable.
            unsafe { y.to_int_unchecked::<i32>() }
        }

        /// `q[j] = min(MAXQ, trunc(x[j] * id + add))` (Q4_0, Q5_0), for values the caller
        /// has proven to lie in `(0, MAXQ + 2)`.
        #[inline(always)]
        pub(crate) fn offset_quants<const MAXQ: i32>(x: &[f32; 32], id: f32, add: f32) -> [u8; 32] {
            let mut q = [0u8; 32];
            for (q, &v) in q.iter_mut().zip(x) {
                *q = trunc_clamped::<0, MAXQ>(v * id + add) as u8;
            }
            q
        }

        /// `q[j] = min(MAXQ, trunc((x[j] - min) * id + 0.5))` (Q4_1, Q5_1), for values the
        /// caller has proven to lie in `[0.5, MAXQ + 1)`.
        #[inline(always)]
        pub(crate) fn min_quants<const MAXQ: i32>(x: &[f32; 32], min: f32, id: f32) -> [u8; 32] {
            let mut q = [0u8; 32];
            for (q, &v) in q.iter_mut().zip(x) {
                *q = trunc_clamped::<0, MAXQ>((v - min) * id + 0.5) as u8;
            }
            q
        }

        /// `q[j] = roundf(x[j] * id)` (Q8_0), for `|x[j] * id| < 127.5`: the clamp to
        /// `[-127, 127]` changes nothing, then `t = trunc(y)`, `f = y - t` is exact (Sterbenz),
        /// and `roundf(y) = t + (f >= 0.5) - (f <= -0.5)` (halves away from zero).
        #[inline(always)]
        pub(crate) fn rounded_quants(x: &[f32; 32], id: f32) -> [i8; 32] {
            let mut qs = [0i8; 32];
            for (q, &v) in qs.iter_mut().zip(x) {
                let y = v * id;
                let y = if y < 127.0 { y } else { 127.0 };
                let y = if y > -127.0 { y } else { -127.0 };
                let t = trunc_clamped::<-127, 127>(y);
                let f = y - t as f32;
                *q = (t + (f >= 0.5) as i32 - (f <= -0.5) as i32) as i8;
            }
            qs
        }

        /// Bit 4 of each `q[j]` gathered into bit `j` of a u32 (the `qh` mask of Q5_0 / Q5_1).
        /// On x86-64 with SSE2 (its baseline): `pmovmskb` collects bit 7 of each byte, after a
        /// 16-bit shift by 3 moves each byte's bit 4 there (LLVM turns the loop below into
        /// 32 scalar shift-and-or steps).
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        #[inline(always)]
        pub(crate) fn bit4_mask(q: &[u8; 32]) -> u32 {
            use core::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_movemask_epi8, _mm_slli_epi16};
            let p = q.as_ptr() as *const __m128i;
            // SAFETY: SSE2 is enabled (cfg above); two unaligned 16-byte loads at offsets 0
            // and 16 of a 32-byte array.
            unsafe {
                let lo = _mm_movemask_epi8(_mm_slli_epi16::<3>(_mm_loadu_si128(p))) as u32;
                let hi = _mm_movemask_epi8(_mm_slli_epi16::<3>(_mm_loadu_si128(p.add(1)))) as u32;
                lo | hi << 16
            }
        }

        /// Bit 4 of each `q[j]` gathered into bit `j` of a u32 (the `qh` mask of Q5_0 / Q5_1).
        #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
        #[inline(always)]
        pub(crate) fn bit4_mask(q: &[u8; 32]) -> u32 {
            let mut qh = 0u32;
            for (j, &v) in q.iter().enumerate() {
                qh |= (((v >> 4) & 1) as u32) << j;
            }
            qh
        }

        /// Low nibbles packed as ggml does: byte `j` = `q[j] & 15 | (q[j + 16] & 15) << 4`.
        #[inline(always)]
        pub(crate) fn pack_nibbles(q: &[u8; 32]) -> [u8; 16] {
            let mut qs = [0u8; 16];
            for (j, b) in qs.iter_mut().enumerate() {
                *b = (q[j] & 0x0F) | ((q[j + 16] & 0x0F) << 4);
            }
            qs
        }
    }
}

/// Index of the first NaN or infinity in `x`: the answer of
/// `x.iter().position(|v| !v.is_finite())`, but found 64 values at a time with no early exit
/// inside a chunk, so that the test vectorizes (exponent bits all ones, as integers): the
/// scalar scan was a measurable part of native Q4_0/Q4_1 `formats::quantize_row`.
pub(crate) fn first_non_finite(x: &[f32]) -> Option<usize> {
    const CHUNK: usize = 64;
    const EXPONENT: u32 = 0x7F80_0000;
    for (c, chunk) in x.chunks(CHUNK).enumerate() {
        let any = chunk.iter().fold(0u32, |acc, v| acc | (v.to_bits() & EXPONENT == EXPONENT) as u32);
        if any != 0 {
            return chunk.iter().position(|v| !v.is_finite()).map(|i| c * CHUNK + i);
        }
    }
    None
}

/// Panics unless `n_values` fills `n_blocks` blocks of `block` values exactly.
pub(crate) fn assert_block_count(n_values: usize, n_blocks: usize, block: usize) {
    assert_eq!(n_values, n_blocks * block, "expected {n_blocks} blocks of {block} values");
}
