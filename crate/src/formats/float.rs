//! Plain floating-point tensor types: F32, F16, BF16 (decode and encode) and F64 (decode).
//!
//! All values are little-endian, one per element (ggml "block size" 1):
//!
//! ```text
//! F32   sign:1 exp:8  mant:23   4 bytes
//! F16   sign:1 exp:5  mant:10   2 bytes   (IEEE binary16)
//! BF16  sign:1 exp:8  mant:7    2 bytes   (the top half of an f32)
//! F64   sign:1 exp:11 mant:52   8 bytes
//! ```
//!
//! Conversions follow ggml: `GGML_FP16_TO_FP32` is exact, `GGML_FP32_TO_FP16` rounds to
//! nearest-even (both done by `half`), BF16 decode is a 16-bit shift and encode is
//! `ggml_compute_fp32_to_bf16` (round to nearest-even, NaNs forced quiet). F64 → f32 is C's
//! `(float)` cast (round to nearest-even).

use half::f16;

/// F32 → f32: a little-endian copy. `src.len()` must be `4 * dst.len()`.
pub fn decode_f32(src: &[u8], dst: &mut [f32]) {
    for (d, s) in dst.iter_mut().zip(src.chunks_exact(4)) {
        *d = f32::from_le_bytes([s[0], s[1], s[2], s[3]]);
    }
}

/// F16 → f32 (exact; `GGML_FP16_TO_FP32`). `src.len()` must be `2 * dst.len()`.
pub fn decode_f16(src: &[u8], dst: &mut [f32]) {
    for (d, s) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *d = f16::from_bits(u16::from_le_bytes([s[0], s[1]])).to_f32();
    }
}

/// One BF16 value (its bit pattern) → f32 (exact; `GGML_BF16_TO_FP32`).
pub fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits((bits as u32) << 16)
}

/// One f32 → BF16 bits, as ggml's `ggml_compute_fp32_to_bf16`: NaNs keep their top bits and
/// are forced quiet; everything else rounds to nearest-even (so huge values may become ±inf).
pub fn f32_to_bf16(x: f32) -> u16 {
    let u = x.to_bits();
    if (u & 0x7fff_ffff) > 0x7f80_0000 {
        return ((u >> 16) | 64) as u16;
    }
    (u.wrapping_add(0x7fff + ((u >> 16) & 1)) >> 16) as u16
}

/// BF16 → f32 (exact). `src.len()` must be `2 * dst.len()`.
pub fn decode_bf16(src: &[u8], dst: &mut [f32]) {
    for (d, s) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *d = bf16_to_f32(u16::from_le_bytes([s[0], s[1]]));
    }
}

/// F64 → f32 (C's `(float)` cast: round to nearest-even). `src.len()` must be `8 * dst.len()`.
pub fn decode_f64(src: &[u8], dst: &mut [f32]) {
    for (d, s) in dst.iter_mut().zip(src.chunks_exact(8)) {
        *d = f64::from_le_bytes(s.try_into().expect("8 bytes")) as f32;
    }
}

/// f32 → F32 bytes. `dst.len()` must be `4 * src.len()`.
pub fn encode_f32(src: &[f32], dst: &mut [u8]) {
    for (s, d) in src.iter().zip(dst.chunks_exact_mut(4)) {
        d.copy_from_slice(&s.to_le_bytes());
    }
}

/// f32 → F16 bytes (`GGML_FP32_TO_FP16`: nearest-even, overflow → ±inf). `dst.len()` must be
/// `2 * src.len()`.
pub fn encode_f16(src: &[f32], dst: &mut [u8]) {
    for (s, d) in src.iter().zip(dst.chunks_exact_mut(2)) {
        d.copy_from_slice(&f16::from_f32(*s).to_bits().to_le_bytes());
    }
}

/// f32 → BF16 bytes ([`f32_to_bf16`]). `dst.len()` must be `2 * src.len()`.
pub fn encode_bf16(src: &[f32], dst: &mut [u8]) {
    for (s, d) in src.iter().zip(dst.chunks_exact_mut(2)) {
        d.copy_from_slice(&f32_to_bf16(*s).to_le_bytes());
    }
}
