//! The layouts of the decode-only ggml types with a kernel, IQ4_XS and MXFP4 (diagrams in
//! `super`'s docs and the shaders' opening comments): the 4-bit indices in row order as IQ4_NL's,
//! each block's scale bytes as stored, and the type's 16 values as the shared table, so both run
//! IQ4_NL's decoding (`shaders/matmul_iq4_nl.wgsl`) with their own `block_scale`. The device bytes
//! equal the file's (MXFP4: a row's scale bytes padded to a whole word).

use super::{block_nibbles, pack_bits, per_row, shared, words_le, PackedArray};
use crate::formats::ggml::iq4_nl::KVALUES_IQ4NL;
use crate::formats::ggml::mxfp4::KVALUES_MXFP4;

/// IQ4_XS super-blocks (136 bytes: d, scales_h, scales_l[4], qs[128]): the indices of each
/// 32-value sub-block (16 bytes of qs, ggml's j / j+16 split) in row order, and the first 8 bytes
/// (d, scales_h, scales_l) of each super-block as 2 words.
pub(super) fn iq4_xs<'a>(rows: impl Iterator<Item = &'a [u8]>, cols: usize) -> Vec<PackedArray> {
    let mut codes = Vec::new();
    let mut heads = Vec::new();
    for row in rows {
        for b in row.chunks_exact(136) {
            heads.extend_from_slice(&b[..8]);
            for sub in b[8..].chunks_exact(16) {
                block_nibbles(sub, &mut codes);
            }
        }
    }
    vec![per_row(cols / 8, pack_bits(&codes, 4)), per_row(2 * cols / 256, words_le(&heads)), table(&KVALUES_IQ4NL)]
}

/// MXFP4 blocks (17 bytes: e, qs[16]): the codes in row order, and each row's E8M0 bytes 4 per
/// word (the row's last word zero-padded).
pub(super) fn mxfp4<'a>(rows: impl Iterator<Item = &'a [u8]>, cols: usize) -> Vec<PackedArray> {
    let blocks = cols / 32;
    let stride = blocks.div_ceil(4);
    let mut codes = Vec::new();
    let mut scales = Vec::new();
    for row in rows {
        let mut e = Vec::with_capacity(4 * stride);
        for b in row.chunks_exact(17) {
            e.push(b[0]);
            block_nibbles(&b[1..], &mut codes);
        }
        e.resize(4 * stride, 0);
        scales.extend(words_le(&e));
    }
    vec![per_row(cols / 8, pack_bits(&codes, 4)), per_row(stride, scales), table(&KVALUES_MXFP4)]
}

/// A type's 16 integer levels as the shared f32 table (`shaders/matmul_table16.wgsl`).
pub(super) fn table(levels: &[i8; 16]) -> PackedArray {
    shared(levels.iter().map(|&v| f32::from(v).to_bits()).collect())
}
