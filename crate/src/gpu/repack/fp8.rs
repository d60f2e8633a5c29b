//! The FP8 repacker (`shaders/matmul_fp8.wgsl`); its layout is drawn with the others in the parent
//! module's docs ([`super`]). The codes go up as stored, one byte per weight, each row padded to
//! whole 16-byte vec4s; the scale is one f32 per row (per channel) or one for the whole matrix (per
//! tensor: a shared array every row reads at stride 0, rather than the scale repeated per row).

use super::{per_row, shared, words_le, PackedArray};
use crate::formats::fp8::{Fp8Format, Fp8Tensor};
use crate::formats::Granularity;

/// False for the codes that do not decode to a finite value: E4M3's one NaN pattern per sign,
/// E5M2's infinities and NaNs (exponent field all ones).
fn is_finite_code(format: Fp8Format, code: u8) -> bool {
    match format {
        Fp8Format::E4M3 => code & 0x7F != 0x7F,
        Fp8Format::E5M2 => code & 0x7C != 0x7C,
    }
}

/// Whether every code decodes to a finite value, which the kernel's bit-built decoding assumes.
/// Always so for tensors from [`Fp8Tensor::quantize`], which refuses non-finite inputs and
/// saturates the rest.
pub(super) fn all_finite(t: &Fp8Tensor) -> bool {
    t.data.iter().all(|&c| is_finite_code(t.format, c))
}

/// `[codes, scales]` as `matmul_fp8.wgsl` reads them.
pub(super) fn fp8(t: &Fp8Tensor) -> Vec<PackedArray> {
    let cols = t.shape.cols;
    let row_words = cols.div_ceil(4);
    let stride = row_words.next_multiple_of(4);
    let mut codes = vec![0u32; t.shape.rows * stride];
    for (dst, src) in codes.chunks_exact_mut(stride).zip(t.data.chunks_exact(cols)) {
        dst[..row_words].copy_from_slice(&words_le(src));
    }
    let scales: Vec<u32> = t.scales.iter().map(|s| s.to_bits()).collect();
    let scales = match t.scheme.granularity {
        Granularity::Channel => per_row(1, scales),
        _ => shared(scales),
    };
    vec![per_row(stride, codes), scales]
}
