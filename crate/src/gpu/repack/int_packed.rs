//! The layout of INT2/3/5/6/7 for `shaders/matmul_int_packed.wgsl` (diagram in `super`'s docs and
//! the shader's opening comment): the codes stay the format's own bit stream, cut at row
//! boundaries (a row is `cols·b/8` whole bytes: the registry sends only rows of whole 8-code
//! chunks here), so a code may straddle two words; group scales stay f16 and zero points are
//! packed at 2/4/8 bits, which keeps the device bytes within a few percent of the packed tensor.

use half::f16;

use super::{per_row, shared, words_le, Layout, PackedArray};
use crate::formats::int::IntTensor;
use crate::formats::Granularity;

/// Bits of one stored zero point for `bits`-bit codes: the smallest of 2, 4, 8 that holds it
/// (`zero_bits()` in the shader).
fn zero_bits(bits: u8) -> usize {
    match bits {
        2 => 2,
        3 | 4 => 4,
        _ => 8,
    }
}

/// The two arrays (`w_q`, `w_s`) of `t` in its `Layout::Int`.
pub(super) fn arrays(t: &IntTensor, layout: Layout) -> Vec<PackedArray> {
    let Layout::Int { group, asym, .. } = layout else { unreachable!("int layout") };
    let group = group as usize;
    let (rows, cols, bits) = (t.shape.rows, t.shape.cols, usize::from(t.bits));
    let row_bytes = cols * bits / 8;
    let row_words = row_bytes.div_ceil(4);
    let mut codes = Vec::with_capacity(rows * row_words);
    for row in t.packed.chunks_exact(row_bytes).take(rows) {
        codes.extend(words_le(row));
    }
    let groups = cols / group;
    // One group per row (per channel): its f32 scale as stored; otherwise f16 (the group schemes
    // store f16-rounded scales, so the f16 bits are exact).
    let scale_words = if groups == 1 { 1 } else { groups.div_ceil(2) };
    let zb = zero_bits(t.bits);
    let zero_words = if asym { (groups * zb).div_ceil(32) } else { 0 };
    let mut w_s = Vec::with_capacity(rows * (scale_words + zero_words));
    // One scale (and zero point) for the tensor: stored once, every row reads it at stride 0.
    let per_tensor = t.scheme.granularity == Granularity::Tensor;
    for r in 0..if per_tensor { 1 } else { rows } {
        let scales = &t.scales[r * groups..(r + 1) * groups];
        if groups == 1 {
            w_s.push(scales[0].to_bits());
        } else {
            let halves: Vec<u32> = scales.iter().map(|&s| u32::from(f16::from_f32(s).to_bits())).collect();
            w_s.extend(halves.chunks(2).map(|p| p[0] | p.get(1).map_or(0, |h| h << 16)));
        }
        if asym {
            let mut zeros = vec![0u32; zero_words];
            for (g, &z) in t.zero_points[r * groups..(r + 1) * groups].iter().enumerate() {
                zeros[g * zb / 32] |= u32::from(z) << (g * zb % 32);
            }
            w_s.extend(zeros);
        }
    }
    let w_s = if per_tensor { shared(w_s) } else { per_row(scale_words + zero_words, w_s) };
    vec![per_row(row_words, codes), w_s]
}
