//! Products with 8-bit activations, as ggml's CPU backend computes them: the activation vector is
//! quantized per 32-value block to Q8_0 (or Q8_1, which adds `s = d·Σq`, for Q4_1 weights' offset
//! term), and each weight block is multiplied by it with an integer dot product, scaled once per
//! block. An approximation of the exact f32 product ([`Matrix::matvec_threads`]): the activation
//! rounding is the cost, measured in BENCHMARKS.md; the integer dot is the speed.
//!
//! References (read, ported, not copied): ggml-quants.c `quantize_row_q8_0_ref` and
//! `quantize_row_q8_1_ref` for the activation blocks; ggml-cpu quants.c
//! `ggml_vec_dot_q4_0_q8_0_generic`, `ggml_vec_dot_q4_1_q8_1_generic` and
//! `ggml_vec_dot_q8_0_q8_0_generic` for the dots. The `*_ref` functions here follow those in the
//! same float order; `scripts/dev/make_int8_dot_goldens.py` is an independent numpy port that
//! tests/rust/int8_dot.rs holds them equal to, bit for bit.
//!
//! The fast path (x86-64 with AVX2, FMA and F16C, detected at run time) is ggml's AVX2 scheme: the
//! block's 32 products summed by `maddubs`/`madd` into eight i32 lanes, each lane scaled and
//! accumulated in f32 with a fused multiply-add, the lanes summed at the end. The integer part is
//! exact, so it differs from the reference only by float summation order (the test bounds it).
//! Everywhere else (wasm included) the reference runs; the per-token integer dot
//! ([`dot_i8_offset`]) has a SIMD128 form in wasm too.
//!
//! Block layouts (ggml's `block_q8_0` / `block_q8_1`, in [`Q8Activations::to_ggml_bytes`]):
//!
//! ```text
//! Q8_0: | d: f16 | q[0..32]: i8 |             34 bytes
//! Q8_1: | d: f16 | s: f16 | q[0..32]: i8 |    36 bytes, s = f16((float)Σq · d)
//! ```

use half::f16;

use super::kernels::f16_at;
use super::weights::{row_bytes, split_rows, Matrix};
use crate::formats::{GgmlType, QuantizedTensor, TensorShape};

/// Values per activation block (ggml's QK8_0 = QK8_1).
pub const BLOCK: usize = 32;

/// An activation vector quantized per 32-value block: scales `d` (f16-rounded, as stored),
/// Q8_1's `s` (f16-rounded), and the codes.
#[derive(Debug, Clone, PartialEq)]
pub struct Q8Activations {
    d: Vec<f32>,
    s: Vec<f32>,
    q: Vec<i8>,
}

impl Q8Activations {
    /// `quantize_row_q8_1_ref` (whose `d` and codes are `quantize_row_q8_0_ref`'s): `d = max|x| /
    /// 127`, codes `round(x / d)` with halves away from zero. `None` when `x.len()` is not a
    /// multiple of 32.
    pub fn quantize(x: &[f32]) -> Option<Self> {
        if !x.len().is_multiple_of(BLOCK) {
            return None;
        }
        let blocks = x.len() / BLOCK;
        let (mut d, mut s, mut q) = (Vec::with_capacity(blocks), Vec::with_capacity(blocks), vec![0i8; x.len()]);
        for (xb, qb) in x.chunks_exact(BLOCK).zip(q.chunks_exact_mut(BLOCK)) {
            let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
            let scale = amax / 127.0;
            let inv = if scale != 0.0 { 1.0 / scale } else { 0.0 };
            let mut sum = 0i32;
            for (o, &v) in qb.iter_mut().zip(xb) {
                // |v·inv| ≤ 127 up to rounding, and `as` saturates a NaN to 0 (x finite here).
                *o = (v * inv).round() as i8;
                sum += i32::from(*o);
            }
            d.push(f16::from_f32(scale).to_f32());
            s.push(f16::from_f32(sum as f32 * scale).to_f32());
        }
        Some(Self { d, s, q })
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.q.len()
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    /// The blocks as ggml stores them: `block_q8_1` when `with_sum`, else `block_q8_0`.
    pub fn to_ggml_bytes(&self, with_sum: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.d.len() * if with_sum { 36 } else { 34 });
        for ((d, s), q) in self.d.iter().zip(&self.s).zip(self.q.chunks_exact(BLOCK)) {
            out.extend_from_slice(&f16::from_f32(*d).to_le_bytes());
            if with_sum {
                out.extend_from_slice(&f16::from_f32(*s).to_le_bytes());
            }
            out.extend(q.iter().map(|&c| c as u8));
        }
        out
    }
}

/// The weight types with an 8-bit-activation dot product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int8DotType {
    Q4_0,
    Q4_1,
    Q8_0,
}

impl Int8DotType {
    /// The type of a matrix, if it has a kernel here.
    pub fn of(m: &Matrix) -> Option<Self> {
        match m {
            Matrix::Quantized(QuantizedTensor::Ggml(t)) => match t.ty {
                GgmlType::Q4_0 => Some(Self::Q4_0),
                GgmlType::Q4_1 => Some(Self::Q4_1),
                GgmlType::Q8_0 => Some(Self::Q8_0),
                _ => None,
            },
            _ => None,
        }
    }

    /// Bytes per 32-weight block.
    pub fn block_bytes(self) -> usize {
        match self {
            Self::Q4_0 => 18,
            Self::Q4_1 => 20,
            Self::Q8_0 => 34,
        }
    }

    /// The reference dot product of one packed weight row with the activations (ggml's generic C,
    /// same float order).
    pub fn dot_ref(self, row: &[u8], x: &Q8Activations) -> f32 {
        let mut sumf = 0f32;
        for (k, (b, q)) in row.chunks_exact(self.block_bytes()).zip(x.q.chunks_exact(BLOCK)).enumerate() {
            let (dw, dx) = (f16_at(b, 0), x.d[k]);
            match self {
                Self::Q4_0 => {
                    let sumi = nibble_dot(&b[2..18], q, 8);
                    sumf += sumi as f32 * dw * dx;
                }
                Self::Q4_1 => {
                    let sumi = nibble_dot(&b[4..20], q, 0);
                    sumf += (dw * dx) * sumi as f32 + f16_at(b, 2) * x.s[k];
                }
                Self::Q8_0 => {
                    let sumi: i32 = b[2..34].iter().zip(q).map(|(&w, &a)| i32::from(w as i8) * i32::from(a)).sum();
                    sumf += sumi as f32 * (dw * dx);
                }
            }
        }
        sumf
    }

    /// The dot product by the fastest kernel this CPU has (AVX2 natively, else [`Self::dot_ref`]).
    pub fn dot(self, row: &[u8], x: &Q8Activations) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if has_avx2_fma() {
            // SAFETY: the CPU has AVX2, FMA and F16C (checked just above).
            return unsafe { avx2::dot(self, row, x) };
        }
        self.dot_ref(row, x)
    }
}

/// `Σ_j (lo_j − offset)·q_j + (hi_j − offset)·q_{j+16}` over one block's 16 nibble pairs.
fn nibble_dot(qs: &[u8], q: &[i8], offset: i32) -> i32 {
    let (mut s0, mut s1) = (0i32, 0i32);
    for j in 0..16 {
        s0 += (i32::from(qs[j] & 15) - offset) * i32::from(q[j]);
        s1 += (i32::from(qs[j] >> 4) - offset) * i32::from(q[j + 16]);
    }
    s0 + s1
}

/// `Σ a_j · (w_j − 128)` in i32: per-token INT8 activation codes times one row of an 8-bit
/// symmetric [`crate::formats::int::IntTensor`] (codes stored offset binary, `q + 128`). Exact
/// (|a|, |q| ≤ 127, so the sum fits an i32 for rows below 2^17 values); AVX2 natively where the
/// CPU has it, SIMD128 (`i32x4.dot_i16x8`, `kernels_simd128.rs`) in wasm, the same integers
/// either way.
///
/// Panics if the lengths differ.
pub fn dot_i8_offset(a: &[i8], w: &[u8]) -> i32 {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        super::kernels_simd128::dot_i8_offset(a, w)
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        assert_eq!(a.len(), w.len(), "{} activation codes against {} weight codes", a.len(), w.len());
        #[cfg(target_arch = "x86_64")]
        if has_avx2_fma() {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { avx2::dot_i8_offset(a, w) };
        }
        dot_i8_offset_ref(a, w)
    }
}

/// The portable [`dot_i8_offset`].
pub fn dot_i8_offset_ref(a: &[i8], w: &[u8]) -> i32 {
    a.iter().zip(w).map(|(&x, &c)| i32::from(x) * (i32::from(c) - 128)).sum()
}

#[cfg(target_arch = "x86_64")]
fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("f16c")
}

impl Matrix {
    /// `out = W · x̂` where `x̂` are 8-bit activations ([`Q8Activations`]), on at most `threads`
    /// threads; `None` (nothing written) when the matrix's type has no such kernel
    /// ([`Int8DotType::of`]). Each output row is computed by one thread with the same kernel, so
    /// the thread count does not change any bit.
    ///
    /// Panics if `x.len() != cols` or `out.len() != rows`.
    pub fn matvec_int8_threads(&self, x: &Q8Activations, out: &mut [f32], threads: usize) -> Option<()> {
        let ty = Int8DotType::of(self)?;
        let Matrix::Quantized(QuantizedTensor::Ggml(t)) = self else { return None };
        let TensorShape { rows, cols } = t.shape;
        assert!(
            x.len() == cols && out.len() == rows,
            "{rows}×{cols} matrix times {} values into {}",
            x.len(),
            out.len()
        );
        let rb = row_bytes(t);
        split_rows(out, cols, threads, |r0, part| {
            let data = &t.data[r0 * rb..(r0 + part.len()) * rb];
            for (o, row) in part.iter_mut().zip(data.chunks_exact(rb)) {
                *o = ty.dot(row, x);
            }
        });
        Some(())
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::super::kernels::{F16c, ReadHalf};
    use super::{Int8DotType, Q8Activations, BLOCK};

    /// ggml's AVX2 `vec_dot_*`: per block, 32 i8×i8 (or u4×i8) products into eight i32 lanes,
    /// scaled by `dw·dx` into eight f32 lanes with a fused multiply-add.
    ///
    /// # Safety
    /// The CPU must support AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot(ty: Int8DotType, row: &[u8], x: &Q8Activations) -> f32 {
        let mut acc = _mm256_setzero_ps();
        let mut offsets = 0f32;
        let low = _mm256_set1_epi8(0x0F);
        for (k, (b, q)) in row.chunks_exact(ty.block_bytes()).zip(x.q.chunks_exact(BLOCK)).enumerate() {
            // SAFETY: `q` is 32 bytes (chunks_exact), the loads below read within `b` (its
            // type's block size: 16 nibble bytes at 2 or 4, 32 codes at 2).
            let a = _mm256_loadu_si256(q.as_ptr().cast());
            let (lanes, dw) = match ty {
                Int8DotType::Q8_0 => (signed_pairs(_mm256_loadu_si256(b[2..34].as_ptr().cast()), a), F16c::at(b, 0)),
                Int8DotType::Q4_0 => {
                    let w = _mm256_sub_epi8(nibbles(&b[2..18], low), _mm256_set1_epi8(8));
                    (signed_pairs(w, a), F16c::at(b, 0))
                }
                Int8DotType::Q4_1 => {
                    // `d` and `m` by one 32-bit load (`vmovd`, which writes the whole register) and
                    // one conversion. Read one f16 at a time (`F16c::at`), each compiled to a
                    // `vpinsrw` merging into the register that held `offsets`: a false dependency
                    // that put the loop-carried offset sum on every block's path and made this
                    // kernel half as fast as Q4_0's (BENCHMARKS.md).
                    let dm = _mm_cvtph_ps(_mm_cvtsi32_si128(i32::from_le_bytes([b[0], b[1], b[2], b[3]])));
                    offsets += _mm_cvtss_f32(_mm_movehdup_ps(dm)) * x.s[k];
                    let sums = _mm256_maddubs_epi16(nibbles(&b[4..20], low), a);
                    (_mm256_madd_epi16(sums, _mm256_set1_epi16(1)), _mm_cvtss_f32(dm))
                }
            };
            let scale = _mm256_set1_ps(dw * x.d[k]);
            acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(lanes), acc);
        }
        hsum(acc) + offsets
    }

    /// The 32 nibbles of 16 bytes as bytes: low nibbles (weights 0..16) then high (16..32).
    #[target_feature(enable = "avx2")]
    unsafe fn nibbles(qs: &[u8], low: __m256i) -> __m256i {
        debug_assert_eq!(qs.len(), 16);
        let v = _mm_loadu_si128(qs.as_ptr().cast());
        _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), low)
    }

    /// Eight i32 sums of four i8×i8 products each (`maddubs` wants one unsigned operand: |w| and
    /// the sign moved onto `a`).
    #[target_feature(enable = "avx2")]
    unsafe fn signed_pairs(w: __m256i, a: __m256i) -> __m256i {
        let pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
        _mm256_madd_epi16(pairs, _mm256_set1_epi16(1))
    }

    /// [`super::dot_i8_offset`]: 32 codes at a time into eight i32 lanes (`w − 128` is the code
    /// with its top bit flipped, read as i8), the tail in scalar code.
    ///
    /// # Safety
    /// The CPU must support AVX2; `a.len() == w.len()`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn dot_i8_offset(a: &[i8], w: &[u8]) -> i32 {
        let flip = _mm256_set1_epi8(-128);
        let mut acc = _mm256_setzero_si256();
        let (ac, wc) = (a.chunks_exact(32), w.chunks_exact(32));
        let tail = super::dot_i8_offset_ref(ac.remainder(), wc.remainder());
        for (x, c) in ac.zip(wc) {
            // SAFETY: both chunks are 32 bytes.
            let xv = _mm256_loadu_si256(x.as_ptr().cast());
            let wv = _mm256_xor_si256(_mm256_loadu_si256(c.as_ptr().cast()), flip);
            acc = _mm256_add_epi32(acc, signed_pairs(wv, xv));
        }
        let s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
        _mm_cvtsi128_si32(s) + tail
    }

    #[target_feature(enable = "avx2")]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
    }
}
