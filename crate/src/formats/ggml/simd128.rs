//! The per-value work of the fast 32-value quantizers (`quantize_block_fast` of Q4_0, Q4_1,
//! Q5_0, Q5_1, Q8_0) in explicit wasm SIMD128 instructions. Same contract as the portable lanes
//! in `ggml::lanes` (re-exported from there on wasm32 with `simd128`): identical results for
//! finite inputs, under the value bounds each function states.
//!
//! Why a separate version: LLVM's auto-vectorized form of the portable lanes ran slower in wasm
//! than the plain scalar references (scripts/bench-quantize.sh, BENCHMARKS.md; not analysed
//! further). Here each step is a short explicit SIMD128 sequence:
//!
//! - min / max scans: `f32x4.pmin` / `f32x4.pmax` (`b < a ? b : a`; no NaN can occur);
//! - `x * id + add`: `f32x4.mul` then `f32x4.add`, two roundings as in the C (SIMD128 has no
//!   fused multiply-add; that is in relaxed-simd, which is not enabled);
//! - C's `(int8_t)y` truncation of values in range: `f32x4.trunc`, then the integer read off
//!   the bits of `t + 1.5 * 2^23` (cheaper in V8 than `i32x4.trunc_sat_f32x4_s`);
//! - `i32 → u8`: unzipping shuffles (the values are proven in range), then `i8x16.min_u` for
//!   the C code's clamp to the quant range;
//! - the `qh` bit gathering: `i8x16.bitmask` after moving bit 4 to bit 7.

use core::arch::wasm32::*;

/// The 32 values of a block as 8 vectors of 4.
#[inline(always)]
fn load(x: &[f32; 32]) -> [v128; 8] {
    let mut v = [f32x4_splat(0.0); 8];
    for (i, v) in v.iter_mut().enumerate() {
        // SAFETY: `x` holds 32 f32 = 128 bytes, so the 8 loads of 16 bytes stay inside it;
        // wasm loads have no alignment requirement.
        *v = unsafe { v128_load(x.as_ptr().add(4 * i) as *const v128) };
    }
    v
}

/// `f` applied to each vector. A plain loop: `[T; N]::map` compiles to a call in wasm (the
/// closure and arrays then go through memory), which cost a quarter of the block's time.
#[inline(always)]
fn each(mut v: [v128; 8], f: impl Fn(v128) -> v128) -> [v128; 8] {
    for v in &mut v {
        *v = f(*v);
    }
    v
}

/// Lane 0 after combining all 4 lanes with `f` (two shuffle steps).
#[inline(always)]
fn reduce4(v: v128, f: impl Fn(v128, v128) -> v128) -> f32 {
    let v = f(v, i32x4_shuffle::<2, 3, 0, 1>(v, v));
    let v = f(v, i32x4_shuffle::<1, 0, 3, 2>(v, v));
    f32x4_extract_lane::<0>(v)
}

/// Lane-wise `(min, max)` of a block: exact values, but the sign of a zero result is
/// unspecified (see `ggml::lanes::min_max`, which fixes it).
#[inline(always)]
pub(crate) fn raw_min_max(x: &[f32; 32]) -> (f32, f32) {
    let v = load(x);
    let (mut lo, mut hi) = (v[0], v[0]);
    for &w in &v[1..] {
        lo = f32x4_pmin(lo, w);
        hi = f32x4_pmax(hi, w);
    }
    (reduce4(lo, |a, b| f32x4_pmin(a, b)), reduce4(hi, |a, b| f32x4_pmax(a, b)))
}

/// The low byte of each i32 lane of 8 vectors: 32 bytes, returned as values 0..16 and 16..32.
/// Plain truncation by two rounds of unzipping shuffles (low halves of 32-bit lanes, then low
/// bytes of 16-bit lanes), which V8 compiles to a few pack instructions. The saturating
/// `narrow` instructions would do the same for lanes in `-128..=255`, but LLVM rewrites a chain
/// of them into clamps plus these shuffles, and the clamps cost as much again.
#[inline(always)]
fn low_bytes(t: [v128; 8]) -> (v128, v128) {
    let half_words = |a, b| i8x16_shuffle::<0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29>(a, b);
    let h = [half_words(t[0], t[1]), half_words(t[2], t[3]), half_words(t[4], t[5]), half_words(t[6], t[7])];
    let bytes = |a, b| i8x16_shuffle::<0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30>(a, b);
    (bytes(h[0], h[1]), bytes(h[2], h[3]))
}

/// `1.5 * 2^23`: for an integer `t` with `|t| < 2^22`, `t + MAGIC` is exact and lies in
/// `[2^23, 2^24)`, where the f32 spacing is 1, so its bit pattern is `0x4B40_0000 + t` and its
/// low byte is `t`'s low byte (two's complement for negative `t`).
const MAGIC: f32 = 12_582_912.0;

/// Truncates 8 vectors of f32 toward zero and keeps the low byte of each integer: exact for
/// values in `(-2^22, 2^22)`, which gives bytes equal to C's `(int8_t)` / `(uint8_t)` casts for
/// values in `(-129, 256)`. `f32x4.trunc` (one `roundps`) plus the [`MAGIC`] addition costs
/// 2 instructions per 4 values; `i32x4.trunc_sat_f32x4_s` costs about 8 in V8 (its NaN and
/// overflow fix-ups), which the proven value ranges make unnecessary.
#[inline(always)]
fn trunc_to_u8(y: [v128; 8]) -> (v128, v128) {
    let magic = f32x4_splat(MAGIC);
    low_bytes(each(y, |v| f32x4_add(f32x4_trunc(v), magic)))
}

/// The 32 bytes of two vectors, in order.
#[inline(always)]
fn store_u8(lo: v128, hi: v128) -> [u8; 32] {
    let mut q = [0u8; 32];
    // SAFETY: `q` has 32 bytes: two unaligned 16-byte stores at offsets 0 and 16.
    unsafe {
        v128_store(q.as_mut_ptr() as *mut v128, lo);
        v128_store(q.as_mut_ptr().add(16) as *mut v128, hi);
    }
    q
}

/// The two halves of a 32-byte array as vectors.
#[inline(always)]
fn load_u8(q: &[u8; 32]) -> (v128, v128) {
    // SAFETY: two unaligned 16-byte loads at offsets 0 and 16 of a 32-byte array.
    unsafe { (v128_load(q.as_ptr() as *const v128), v128_load(q.as_ptr().add(16) as *const v128)) }
}

/// `q[j] = min(MAXQ, trunc(x[j] * id + add))` (Q4_0, Q5_0), for values the caller has proven
/// to lie in `(0, MAXQ + 2)`; `MAXQ` must be below 256.
#[inline(always)]
pub(crate) fn offset_quants<const MAXQ: i32>(x: &[f32; 32], id: f32, add: f32) -> [u8; 32] {
    const { assert!(0 < MAXQ && MAXQ < 256) };
    let (id, add) = (f32x4_splat(id), f32x4_splat(add));
    let (lo, hi) = trunc_to_u8(each(load(x), |v| f32x4_add(f32x4_mul(v, id), add)));
    let cap = u8x16_splat(MAXQ as u8);
    store_u8(u8x16_min(lo, cap), u8x16_min(hi, cap))
}

/// `q[j] = min(MAXQ, trunc((x[j] - min) * id + 0.5))` (Q4_1, Q5_1), for values the caller has
/// proven to lie in `[0.5, MAXQ + 1)`; `MAXQ` must be below 256.
#[inline(always)]
pub(crate) fn min_quants<const MAXQ: i32>(x: &[f32; 32], min: f32, id: f32) -> [u8; 32] {
    const { assert!(0 < MAXQ && MAXQ < 256) };
    let (min, id, half) = (f32x4_splat(min), f32x4_splat(id), f32x4_splat(0.5));
    let (lo, hi) = trunc_to_u8(each(load(x), |v| f32x4_add(f32x4_mul(f32x4_sub(v, min), id), half)));
    let cap = u8x16_splat(MAXQ as u8);
    store_u8(u8x16_min(lo, cap), u8x16_min(hi, cap))
}

/// `q[j] = roundf(x[j] * id)` (Q8_0), for `|x[j] * id| < 127.5`: `t = trunc(y)`, `f = y - t`
/// is exact (Sterbenz), and `roundf(y) = t + (f >= 0.5) - (f <= -0.5)` (halves away from zero).
/// A true comparison is all ones, i.e. -1 as an i32 lane, hence `t - ge + le` (on the integer
/// lanes of `t + MAGIC`, see [`trunc_to_u8`]; the result stays in -127..=127).
#[inline(always)]
pub(crate) fn rounded_quants(x: &[f32; 32], id: f32) -> [i8; 32] {
    let (id, plus_half, minus_half) = (f32x4_splat(id), f32x4_splat(0.5), f32x4_splat(-0.5));
    let magic = f32x4_splat(MAGIC);
    let r = each(load(x), |v| {
        let y = f32x4_mul(v, id);
        let t = f32x4_trunc(y);
        let f = f32x4_sub(y, t);
        // `t + MAGIC` as integer lanes is `0x4B40_0000 + t`: the ±1 goes into its low byte.
        i32x4_add(i32x4_sub(f32x4_add(t, magic), f32x4_ge(f, plus_half)), f32x4_le(f, minus_half))
    });
    // `r` is in -127..=127: its low byte is the i8 value.
    let (lo, hi) = low_bytes(r);
    bytemuck::cast(store_u8(lo, hi))
}

/// Bit 4 of each `q[j]` gathered into bit `j` of a u32 (the `qh` mask of Q5_0 / Q5_1):
/// `i8x16.bitmask` collects bit 7 of each byte, so bit 4 is first shifted up by 3.
#[inline(always)]
pub(crate) fn bit4_mask(q: &[u8; 32]) -> u32 {
    let (lo, hi) = load_u8(q);
    let lo = i8x16_bitmask(i8x16_shl(lo, 3)) as u32;
    let hi = i8x16_bitmask(i8x16_shl(hi, 3)) as u32;
    lo | hi << 16
}

/// Low nibbles packed as ggml does: byte `j` = `q[j] & 15 | (q[j + 16] & 15) << 4` (the
/// 8-bit shift drops the high nibble of `q[j + 16]` by itself).
#[inline(always)]
pub(crate) fn pack_nibbles(q: &[u8; 32]) -> [u8; 16] {
    let (lo, hi) = load_u8(q);
    let packed = v128_or(v128_and(lo, u8x16_splat(0x0F)), i8x16_shl(hi, 4));
    let mut out = [0u8; 16];
    // SAFETY: one unaligned 16-byte store into a 16-byte array.
    unsafe { v128_store(out.as_mut_ptr() as *mut v128, packed) };
    out
}
