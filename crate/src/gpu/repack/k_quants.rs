//! The K-quant repackers (super-blocks of 256 values); their layouts are drawn with the others in
//! the parent module's docs ([`super`]). Each reads ggml's block bytes as `formats/ggml/q*_k.rs`
//! documents them and writes the codes in row order, so a shader word holds whole 8-weight chunks.

use half::f16;

use super::{block_nibbles, f16_bits_at, pack_bits, per_row, push_q5_block, words_le, PackedArray};
use crate::formats::ggml::q3_k::unpack_scales;
use crate::formats::ggml::q4_k::get_scale_min_k4;

/// The super-block scales of Q4_K and Q5_K (both open with d, dmin and 12 bytes of 6-bit scales
/// and minimums), 5 words: d and dmin as stored, the 8 scales, then the 8 minimums, as bytes.
fn k_scales(block: &[u8], out: &mut Vec<u8>) {
    let scales: &[u8; 12] = block[4..16].try_into().expect("12 scale bytes");
    let (sc, mn): (Vec<u8>, Vec<u8>) = (0..8).map(|j| get_scale_min_k4(j, scales)).unzip();
    out.extend_from_slice(&block[0..4]);
    out.extend(sc);
    out.extend(mn);
}

/// Q4_K (144 bytes: d, dmin, scales[12], qs[128]): nibbles in row order, scales as [`k_scales`].
pub(super) fn q4_k<'a>(rows: impl Iterator<Item = &'a [u8]>, cols: usize) -> Vec<PackedArray> {
    let (mut codes, mut s) = (Vec::new(), Vec::new());
    for row in rows {
        for b in row.chunks_exact(144) {
            k_scales(b, &mut s);
            for chunk in b[16..144].chunks_exact(32) {
                block_nibbles(chunk, &mut codes);
            }
        }
    }
    vec![per_row(cols / 8, pack_bits(&codes, 4)), per_row(5 * cols / 256, words_le(&s))]
}

/// Q5_K (176 bytes: d, dmin, scales[12], qh[32], qs[128]): each sub-block j of 32 coded as a
/// Q5_0 block (its nibbles: the low or high halves of qs[32(j/2)..][..32] for j even or odd; its
/// fifth bits: bit j of each qh[l]), the scales as Q4_K's.
pub(super) fn q5_k<'a>(rows: impl Iterator<Item = &'a [u8]>, cols: usize) -> Vec<PackedArray> {
    let (mut codes, mut s) = (Vec::new(), Vec::new());
    for row in rows {
        for b in row.chunks_exact(176) {
            k_scales(b, &mut s);
            let (qh, qs) = (&b[16..48], &b[48..176]);
            for j in 0..8 {
                let shift = 4 * (j % 2);
                let nibbles: Vec<u8> = qs[32 * (j / 2)..][..32].iter().map(|q| q >> shift & 15).collect();
                let fifth = qh.iter().enumerate().fold(0u32, |m, (l, &h)| m | u32::from(h >> j & 1) << l);
                push_q5_block(&nibbles, fifth, &mut codes);
            }
        }
    }
    vec![per_row(5 * cols / 32, codes), per_row(5 * cols / 256, words_le(&s))]
}

/// Q6_K (210 bytes: ql[128], qh[64], scales[16], d): the low 4 bits in row order; per super-block
/// d as f32, the i8 scales, then the high 2 bits in row order.
pub(super) fn q6_k<'a>(rows: impl Iterator<Item = &'a [u8]>, cols: usize) -> Vec<PackedArray> {
    let (mut lo, mut s) = (Vec::new(), Vec::new());
    for row in rows {
        for b in row.chunks_exact(210) {
            let (ql, qh) = (&b[0..128], &b[128..192]);
            let mut q = [0u8; 256];
            for h in 0..2 {
                for l in 0..32 {
                    let (a, c, hb) = (ql[64 * h + l], ql[64 * h + 32 + l], qh[32 * h + l]);
                    q[128 * h + l] = (a & 15) | (hb & 3) << 4;
                    q[128 * h + 32 + l] = (c & 15) | (hb >> 2 & 3) << 4;
                    q[128 * h + 64 + l] = (a >> 4) | (hb >> 4 & 3) << 4;
                    q[128 * h + 96 + l] = (c >> 4) | (hb >> 6 & 3) << 4;
                }
            }
            lo.extend(q.iter().map(|v| v & 15));
            let d = f16::from_bits(f16_bits_at(b, 208)).to_f32();
            s.extend(words_le(&d.to_le_bytes()));
            s.extend(words_le(&b[192..208]));
            s.extend(pack_bits(&q.map(|v| v >> 4), 2));
        }
    }
    vec![per_row(cols / 8, pack_bits(&lo, 4)), per_row(21 * cols / 256, s)]
}

/// The 2-bit fields of Q2_K's and Q3_K's 64-byte `qs` in row order: value 128h + 32k + l is bits
/// 2k.. of qs[32h + l].
fn k_crumbs(qs: &[u8]) -> [u8; 256] {
    std::array::from_fn(|v| qs[32 * (v / 128) + v % 32] >> (2 * (v / 32 % 4)) & 3)
}

/// Q3_K (110 bytes: hmask[32], qs[64], scales[12], d): per 32 values 3 words, their low 2 bits in
/// row order and their high bits (value 32j + l: bit j of hmask[l]); per super-block
/// 4 words, d as f32 and the 6-bit scales (ggml's shuffle undone: [`unpack_scales`]) as 16 low
/// nibbles and 16 high 2-bit fields.
pub(super) fn q3_k<'a>(rows: impl Iterator<Item = &'a [u8]>, cols: usize) -> Vec<PackedArray> {
    let (mut codes, mut s) = (Vec::new(), Vec::new());
    for row in rows {
        for b in row.chunks_exact(110) {
            let (hmask, low) = (&b[0..32], k_crumbs(&b[32..96]));
            for (v32, low) in low.chunks_exact(32).enumerate() {
                codes.extend(pack_bits(low, 2));
                codes.push(hmask.iter().enumerate().fold(0u32, |m, (l, &h)| m | u32::from(h >> v32 & 1) << l));
            }
            let scales = unpack_scales(b[96..108].try_into().expect("12 scale bytes")).map(|v| (v + 32) as u8);
            s.push(f16::from_bits(f16_bits_at(b, 108)).to_f32().to_bits());
            s.extend(pack_bits(&scales.map(|v| v & 15), 4));
            s.extend(pack_bits(&scales.map(|v| v >> 4), 2));
        }
    }
    vec![per_row(3 * cols / 32, codes), per_row(4 * cols / 256, s)]
}

/// Q2_K (84 bytes: scales[16], qs[64], d, dmin): the 2-bit quants in row order; per super-block
/// d and dmin, then the 16 scale bytes as stored — the format's own size.
pub(super) fn q2_k<'a>(rows: impl Iterator<Item = &'a [u8]>, cols: usize) -> Vec<PackedArray> {
    let (mut codes, mut s) = (Vec::new(), Vec::new());
    for row in rows {
        for b in row.chunks_exact(84) {
            codes.extend(pack_bits(&k_crumbs(&b[16..80]), 2));
            s.extend(words_le(&b[80..84]));
            s.extend(words_le(&b[0..16]));
        }
    }
    vec![per_row(cols / 16, codes), per_row(5 * cols / 256, s)]
}
