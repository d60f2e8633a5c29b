//! Every CPU → GPU weight repacking, in one place: each [`Matrix`] format is turned once, at
//! upload, into u32 words a WGSL kernel (`shaders/matmul_<format>.wgsl`) reads directly.
//!
//! Common rules: all arrays are `array<u32>` (or f32 bit patterns), row-major, with a fixed
//! number of words per row (`row_words`, passed to the shader as `stride_q/s/e`), so a matrix too
//! large for one storage binding splits cleanly into row ranges ([`Repacked::slice_rows`]).
//! Codes are stored **in row order**: weight `k` of a row sits at bits `b·k ..` of the row's
//! words (least significant first), whatever interleave the source format used, so one u32
//! holds one 8-weight chunk of a 4-bit format and the shader decodes 8 weights per load.
//! Scales live in a separate array. Binding 1 is always the codes (`w_q`), 2 the scales (`w_s`,
//! with any other per-row data), 3 a shared uniform table (the NF4/FP4 codebook): WebGPU's
//! downlevel limit is 4 storage buffers per shader stage, and x and y take two of them.
//!
//! ```text
//! F32   w_q: | v0 | v1 | ... | v(cols-1) | 0 .. pad to 8 |          (f32 bits, 1 word each)
//! F16   w_q: | v1:v0 | v3:v2 | ... |                                 (f16 pairs, low half first,
//!                                                                     rows padded to 8 values)
//! BF16  w_q: | v1:v0 | v3:v2 | ... |                                 (bf16 pairs, as F16)
//! Q8_0  w_q: | q3 q2 q1 q0 | q7 q6 q5 q4 | ...                       (i8 bytes, cols/4 words)
//!       w_s: | d1:d0 | d3:d2 | ...                                   (f16 block scales, ceil(blocks/2))
//! Q4_0  w_q: | q7 q6 .. q1 q0 | q15 .. q8 | ...                      (nibbles in row order,
//!                                                                     ggml's j / j+16 split undone)
//!       w_s: as Q8_0
//! Q4_1  w_q: as Q4_0     w_s: | m:d | per block                      (f16 d low, f16 m high)
//! Q5_0  w_q: per block of 32, 5 words:
//!            | q7..q0 | q15..q8 | q23..q16 | q31..q24 | h31 .. h1 h0 |
//!              low nibbles in row order (as Q4_0)      fifth bits: ggml's qh, bit k = weight k
//!       w_s: as Q4_0                                                 (5.5 bits per weight)
//! Q5_1  w_q: as Q5_0     w_s: as Q4_1                                (6 bits per weight)
//! IQ4_NL w_q, w_s: as Q4_0 (the same block: f16 d, 4-bit indices split j / j+16)
//!       binding 3 (uniform): the 16 levels kvalues_iq4nl as f32, shared by all rows
//! IQ4_XS (repack/decode_only.rs) w_q: as IQ4_NL (each 32-value sub-block's indices in row order)
//!       w_s: per 256-value super-block 2 words, its first 8 bytes as stored:
//!            | scales_h : d | scales_l[3] .. scales_l[0] |          (d f16; 6-bit sub-block scales)
//!       binding 3: kvalues_iq4nl, as IQ4_NL                          (4.25 bits per weight)
//! MXFP4 w_q: as IQ4_NL (E2M1 codes in row order)
//!       w_s: | e3 e2 e1 e0 | e7 .. e4 | ...                          (E8M0 bytes, ceil(blocks/4))
//!       binding 3: kvalues_mxfp4 (doubled E2M1 values) as f32       (4.25 bits per weight)
//! Q4_K  w_q: nibbles in row order (ggml's 64-value lo/hi interleave undone)
//!       w_s: per 256-value super-block 5 words:
//!            | dmin:d | S3 S2 S1 S0 | S7..S4 | M3..M0 | M7..M4 |    (6-bit scales unpacked to bytes)
//! Q5_K  w_q: per sub-block j of 32, 5 words, as Q5_0's block:
//!            | q7..q0 | q15..q8 | q23..q16 | q31..q24 | h31 .. h1 h0 |
//!              low nibbles in row order                fifth bits: h_l = bit j of ggml's qh[l]
//!       w_s: as Q4_K                                                 (5.625 bits per weight)
//! Q6_K  w_q: low 4 bits in row order (8 per word)
//!       w_s: per super-block 21 words:
//!            | d (f32 bits) | sc3..sc0 | sc7..sc4 | sc11..8 | sc15..12 | h0 | ... | h15 |
//!              i8 scales of the 16-value sub-blocks;  h: high 2 bits in row order, 16 per word
//! Q3_K  w_q: per 32 values 3 words:
//!            | l15 .. l1 l0 | l31 .. l17 l16 | h31 .. h1 h0 |
//!              low 2 bits in row order (ggml's interleave undone)  high bits: h_l = bit j of
//!                                                                  ggml's hmask[l], values 32j..
//!       w_s: per super-block 4 words:
//!            | d (f32 bits) | S7..S0 low 4 bits | S15..S8 low 4 bits | S15..S0 high 2 bits |
//!              the 6-bit scales (ggml's 12-byte shuffle undone; offset 32 kept)  (3.5 bits per weight)
//! Q2_K  w_q: | q15 .. q1 q0 | q31 .. q16 | ...                       (2-bit quants in row order,
//!                                                                     ggml's interleave undone)
//!       w_s: per super-block 5 words:
//!            | dmin:d | M3 S3 .. M0 S0 | .. | M15 S15 .. M12 S12 |  (ggml's scale bytes as stored)
//! INT4/INT8 (formats/int.rs, sym or asym, per tensor, per channel or per group of 8k values)
//!       w_q: the stored bit stream (already row order, LSB first), each row padded with zero
//!            words to a multiple of 4 (the subgroup GEMV reads it as vec4<u32>)
//!       w_s: per row | s0 | s1 | ... | s(groups-1) | z3 z2 z1 z0 | ... |
//!              f32 scale bits per group (f16-rounded values for group schemes), then (asym
//!              only) the zero-point bytes, 4 per word
//!            per tensor: | s | z | once for the matrix (shared, stride_s = 0: every row reads
//!              words 0 and 1; the kernel's group of cols values makes g = 0)
//! INT2/3/5/6/7 (repack/int_packed.rs, shaders/matmul_int_packed.wgsl; rows of whole 8-code chunks)
//!       w_q: each row's cols·b/8 bytes of the stored bit stream as words (last one zero-padded):
//!            codes cross word boundaries; INT3 is 3 words per 32 codes:
//!            | c10 low 2 | c9 .. c0 | c21 low 1 | c20 .. c11 | c10 high 1 | c31 .. c22 | c21 high 2 |
//!       w_s: per row | s1:s0 | s3:s2 | ... | zero points, 2/4/8 bits each (INT2/INT3/above) |
//!              f16 group scales (one f32 word when the row is one group, per channel)
//!            per tensor: | s | z | once for the matrix (shared, stride_s = 0)
//! FP8 E4M3/E5M2 (formats/fp8.rs, repack/fp8.rs)
//!       w_q: | q3 q2 q1 q0 | q7 q6 q5 q4 | ...                       (the codes as stored, 4 per
//!                                                                     word, rows padded with zero
//!                                                                     codes to whole vec4s)
//!       w_s: per channel | s | per row; per tensor | s | once (shared, stride_s = 0)
//!                                                                    (f32 scale bits)
//! NF4/FP4 (bitsandbytes) w_q: nibbles in row order (bnb's high-nibble-first bytes swapped)
//!       w_s: | absmax0 | absmax1 | ...  f32 per block; a double-quantized absmax is decoded here,
//!            at upload, with the CPU reference's own arithmetic (Bnb4Tensor::absmax_f32)
//!       binding 3 (uniform): the 16 codebook values, shared by all rows
//! generic (every other format: TQ*, groups the kernels can't index, FP8 holding a
//!       non-finite code ...): each row is dequantized on the CPU with the
//!       reference decoder (Matrix::row) and stored as F16; if any value overflows f16, as F32.
//! ```
//!
//! Size overhead against the source format (`tests/rust/registry.rs` checks it for every
//! dedicated format): Q8_0/Q4_0/Q5_0/IQ4_NL/IQ4_XS/MXFP4 none (scales are still f16; half a word per row when
//! a row has an odd number of blocks), Q4_1/Q5_1/Q2_K none, Q4_K 4.625 vs 4.5 bits per weight,
//! Q5_K 5.625 vs 5.5 (both: the 6-bit scales unpacked to bytes), Q6_K 6.625 vs 6.5625, Q3_K 3.5
//! vs 3.4375 (d and the scales take 4 words, not 3.5), INT4/INT8 group scales f32 instead of f16
//! (INT2/3/5/6/7 keep f16; their zero points take 4 bits for INT3, 8 for INT5..7), a
//! double-quantized NF4/FP4 absmax f32; FP8 and per-tensor INT none (rows already whole vec4s;
//! a per-tensor scale is stored once, not per row).
//!
//! Binding 3 is bound as a uniform, 1 and 2 as storage; an array with `row_words` 0 is the same
//! for every row: the shared table at binding 3, a per-tensor scale at binding 2.

use half::f16;

use super::kernel::overrides::{ASYM, BITS, BLOCK, GROUP_SIZE, MANT_BITS};
use super::kernel::Kernel;
use super::GpuError;
use crate::formats::bnb::Bnb4Tensor;
use crate::formats::fp8::Fp8Format;
use crate::formats::ggml::iq4_nl::KVALUES_IQ4NL;
use crate::formats::int::IntTensor;
use crate::formats::quantized::GgmlTensor;
use crate::formats::registry::{self, DedicatedKernel, FixedLayout, GpuKernel};
use crate::formats::{GgmlType, Granularity, Mapping, QuantScheme, QuantizedTensor, TensorShape};
use crate::model::Matrix;

mod decode_only;
mod fp8;
mod int_packed;
mod k_quants;

/// Which kernel reads a [`Repacked`] matrix, with its override constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The float types and the ggml block types with their own kernel.
    Fixed(FixedLayout),
    Int {
        bits: u8,
        group: u32,
        asym: bool,
    },
    Codebook {
        block: u32,
    },
    Fp8 {
        format: Fp8Format,
    },
}

impl Layout {
    pub fn kernel(self) -> Kernel {
        match self {
            Layout::Fixed(FixedLayout::F32) => Kernel::MatmulF32,
            Layout::Fixed(FixedLayout::F16) => Kernel::MatmulF16,
            Layout::Fixed(FixedLayout::Bf16) => Kernel::MatmulBf16,
            Layout::Fixed(FixedLayout::Q8_0) => Kernel::MatmulQ8_0,
            Layout::Fixed(FixedLayout::Q4_0) => Kernel::MatmulQ4_0,
            Layout::Fixed(FixedLayout::Q4_1) => Kernel::MatmulQ4_1,
            Layout::Fixed(FixedLayout::Q5_0) => Kernel::MatmulQ5_0,
            Layout::Fixed(FixedLayout::Q5_1) => Kernel::MatmulQ5_1,
            Layout::Fixed(FixedLayout::Iq4Nl) => Kernel::MatmulIq4Nl,
            Layout::Fixed(FixedLayout::Iq4Xs) => Kernel::MatmulIq4Xs,
            Layout::Fixed(FixedLayout::Mxfp4) => Kernel::MatmulMxfp4,
            Layout::Fixed(FixedLayout::Q4K) => Kernel::MatmulQ4K,
            Layout::Fixed(FixedLayout::Q5K) => Kernel::MatmulQ5K,
            Layout::Fixed(FixedLayout::Q6K) => Kernel::MatmulQ6K,
            Layout::Fixed(FixedLayout::Q3K) => Kernel::MatmulQ3K,
            Layout::Fixed(FixedLayout::Q2K) => Kernel::MatmulQ2K,
            Layout::Int { bits: 4 | 8, .. } => Kernel::MatmulInt,
            Layout::Int { .. } => Kernel::MatmulIntPacked,
            Layout::Codebook { .. } => Kernel::MatmulCodebook,
            Layout::Fp8 { .. } => Kernel::MatmulFp8,
        }
    }

    /// The format file's own override constants (the shared WG_SIZE is added by the caller).
    pub fn constants(self) -> Vec<(&'static str, f64)> {
        match self {
            Layout::Int { bits, group, asym } => {
                vec![(BITS, f64::from(bits)), (GROUP_SIZE, f64::from(group)), (ASYM, f64::from(u8::from(asym)))]
            }
            Layout::Codebook { block } => vec![(BLOCK, f64::from(block))],
            Layout::Fp8 { format } => vec![(MANT_BITS, f64::from(format.mant_bits()))],
            _ => Vec::new(),
        }
    }
}

/// One weight array bound to the kernel.
#[derive(Debug, Clone, PartialEq)]
pub struct PackedArray {
    /// Words per row; 0 for words every row shares: the table at binding 3 (the codebook), bound
    /// as a uniform buffer (WebGPU's downlevel limit is 4 storage buffers per stage, x and y
    /// included), or a per-tensor scale at binding 2 (storage, read at stride 0).
    pub row_words: usize,
    pub words: Vec<u32>,
}

/// A matrix in its GPU layout: `arrays[i]` is bound at `@binding(i + 1)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Repacked {
    pub layout: Layout,
    pub rows: usize,
    pub cols: usize,
    pub arrays: Vec<PackedArray>,
    /// What runs, for users: `"Q4_1 (dedicated)"`, `"TQ2_0 → f16 (generic dequantize path)"`.
    pub label: String,
}

impl Repacked {
    /// Bytes of all arrays.
    pub fn bytes(&self) -> u64 {
        self.arrays.iter().map(|a| 4 * a.words.len() as u64).sum()
    }

    /// Rows `r0..r1` as their own matrix (shared arrays are copied whole).
    pub fn slice_rows(&self, r0: usize, r1: usize) -> Repacked {
        let arrays = self
            .arrays
            .iter()
            .map(|a| match a.row_words {
                0 => a.clone(),
                w => PackedArray { row_words: w, words: a.words[r0 * w..r1 * w].to_vec() },
            })
            .collect();
        Repacked { layout: self.layout, rows: r1 - r0, cols: self.cols, arrays, label: self.label.clone() }
    }
}

fn per_row(row_words: usize, words: Vec<u32>) -> PackedArray {
    PackedArray { row_words, words }
}

fn shared(words: Vec<u32>) -> PackedArray {
    PackedArray { row_words: 0, words }
}

/// Little-endian words from bytes (zero-padded to a whole word).
fn words_le(bytes: &[u8]) -> Vec<u32> {
    bytes.chunks(4).map(|c| c.iter().enumerate().fold(0u32, |w, (i, &b)| w | u32::from(b) << (8 * i))).collect()
}

/// Packs values `< 2^bits` in order, least significant first (`bits` divides 32).
fn pack_bits(values: &[u8], bits: u32) -> Vec<u32> {
    let per = (32 / bits) as usize;
    values
        .chunks(per)
        .map(|c| c.iter().enumerate().fold(0u32, |w, (i, &v)| w | u32::from(v) << (bits as usize * i)))
        .collect()
}

fn f16_bits_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

fn bad(what: &str, message: String) -> GpuError {
    GpuError::Validation { what: what.to_string(), message }
}

/// Repacks `m` for the GPU. `name` only labels errors.
pub fn repack(name: &str, m: &Matrix) -> Result<Repacked, GpuError> {
    let TensorShape { rows, cols } = m.shape();
    if rows == 0 || cols == 0 {
        return Err(bad(name, format!("cannot upload an empty {rows}×{cols} matrix")));
    }
    let dedicated = |layout: Layout, arrays: Vec<PackedArray>| Repacked {
        layout,
        rows,
        cols,
        arrays,
        label: format!("{} (dedicated)", m.type_name()),
    };
    // The registry says which kernel runs each format (and when); this only packs for it.
    let repacked = match (registry::gpu_kernel(&matrix_scheme(m), m.shape()), m) {
        (GpuKernel::Dedicated(DedicatedKernel::Fixed(FixedLayout::F32)), Matrix::F32 { data, .. }) => {
            dedicated(Layout::Fixed(FixedLayout::F32), vec![f32_rows(data, rows, cols)])
        }
        (GpuKernel::Dedicated(DedicatedKernel::Fixed(fixed)), Matrix::Quantized(QuantizedTensor::Ggml(t))) => {
            let arrays = match fixed {
                // BF16 pairs pack like F16 pairs; only the kernel's decoding differs.
                FixedLayout::F16 | FixedLayout::Bf16 => {
                    let halves: Vec<u16> = t.data.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect();
                    vec![f16_rows(&halves, rows, cols)]
                }
                FixedLayout::Q8_0 => q8_0(ggml_rows(t), cols),
                FixedLayout::Q4_0 => q4_0(ggml_rows(t), cols),
                FixedLayout::Q4_1 => q4_1(ggml_rows(t), cols),
                FixedLayout::Q5_0 => vec![q5_codes(ggml_rows(t), 22, cols), block_scales(ggml_rows(t), 22, cols)],
                FixedLayout::Q5_1 => vec![q5_codes(ggml_rows(t), 24, cols), block_dm(ggml_rows(t), 24, cols)],
                // IQ4_NL blocks are Q4_0's (f16 d, then the nibbles), only decoded through a table.
                FixedLayout::Iq4Nl => {
                    let mut arrays = q4_0(ggml_rows(t), cols);
                    arrays.push(decode_only::table(&KVALUES_IQ4NL));
                    arrays
                }
                FixedLayout::Iq4Xs => decode_only::iq4_xs(ggml_rows(t), cols),
                FixedLayout::Mxfp4 => decode_only::mxfp4(ggml_rows(t), cols),
                FixedLayout::Q4K => k_quants::q4_k(ggml_rows(t), cols),
                FixedLayout::Q5K => k_quants::q5_k(ggml_rows(t), cols),
                FixedLayout::Q6K => k_quants::q6_k(ggml_rows(t), cols),
                FixedLayout::Q3K => k_quants::q3_k(ggml_rows(t), cols),
                FixedLayout::Q2K => k_quants::q2_k(ggml_rows(t), cols),
                // Models hold F32 tensors as Matrix::F32 (the arm above).
                FixedLayout::F32 => return generic(name, m),
            };
            dedicated(Layout::Fixed(fixed), arrays)
        }
        (GpuKernel::Dedicated(DedicatedKernel::Int), Matrix::Quantized(QuantizedTensor::Int(t))) => {
            let layout = int_layout(t);
            // INT4/INT8 codes never straddle a word; the other widths have their own layout.
            let arrays = if matches!(t.bits, 4 | 8) { int(t, layout) } else { int_packed::arrays(t, layout) };
            dedicated(layout, arrays)
        }
        (GpuKernel::Dedicated(DedicatedKernel::Codebook), Matrix::Quantized(QuantizedTensor::Bnb4(t))) => {
            dedicated(Layout::Codebook { block: t.block() as u32 }, codebook(t))
        }
        (GpuKernel::Dedicated(DedicatedKernel::Fp8), Matrix::Quantized(QuantizedTensor::Fp8(t)))
            if fp8::all_finite(t) =>
        {
            dedicated(Layout::Fp8 { format: t.format }, fp8::fp8(t))
        }
        _ => generic(name, m)?,
    };
    Ok(repacked)
}

fn f32_rows(data: &[f32], rows: usize, cols: usize) -> PackedArray {
    let stride = cols.next_multiple_of(8);
    let mut words = vec![0u32; rows * stride];
    for (dst, src) in words.chunks_exact_mut(stride).zip(data.chunks_exact(cols)) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = s.to_bits();
        }
    }
    per_row(stride, words)
}

fn f16_rows(halves: &[u16], rows: usize, cols: usize) -> PackedArray {
    let stride = cols.next_multiple_of(8) / 2;
    let mut words = vec![0u32; rows * stride];
    for (dst, src) in words.chunks_exact_mut(stride).zip(halves.chunks_exact(cols)) {
        for (i, &h) in src.iter().enumerate() {
            dst[i / 2] |= u32::from(h) << (16 * (i % 2));
        }
    }
    per_row(stride, words)
}

/// Every row decoded with the CPU reference, stored as f16 (f32 if a value overflows f16).
fn generic(name: &str, m: &Matrix) -> Result<Repacked, GpuError> {
    let TensorShape { rows, cols } = m.shape();
    if let Matrix::Quantized(QuantizedTensor::Ggml(t)) = m {
        if !crate::formats::can_dequantize(t.ty) {
            return Err(bad(name, format!("no decoder for {} tensors, so no GPU path either", t.ty)));
        }
    }
    let values = m.to_f32();
    let halves: Vec<u16> = values.iter().map(|&v| f16::from_f32(v).to_bits()).collect();
    let overflow = values.iter().zip(&halves).any(|(v, &h)| v.is_finite() && f16::from_bits(h).is_infinite());
    let (layout, array, target) = if overflow {
        (Layout::Fixed(FixedLayout::F32), f32_rows(&values, rows, cols), "f32 (values beyond the f16 range)")
    } else {
        (Layout::Fixed(FixedLayout::F16), f16_rows(&halves, rows, cols), "f16")
    };
    Ok(Repacked {
        layout,
        rows,
        cols,
        arrays: vec![array],
        label: format!("{} → {target} (generic dequantize path)", m.type_name()),
    })
}

/// f16 block scales of each row, two per word (`offset` = byte of `d` in a block).
fn block_scales<'a>(rows: impl Iterator<Item = &'a [u8]>, block_bytes: usize, cols: usize) -> PackedArray {
    let blocks = cols / 32;
    let stride = blocks.div_ceil(2);
    let mut words = Vec::new();
    for row in rows {
        let mut scales: Vec<u16> = row.chunks_exact(block_bytes).map(|b| f16_bits_at(b, 0)).collect();
        scales.resize(2 * stride, 0);
        words.extend(scales.chunks_exact(2).map(|p| u32::from(p[0]) | u32::from(p[1]) << 16));
    }
    per_row(stride, words)
}

/// ggml's nibble split in value order: byte j of `qs` holds value j (low nibble) and value
/// j + len (high nibble). Q4_0/Q4_1 blocks (16 bytes) and each 32-byte Q4_K chunk use it.
fn block_nibbles(qs: &[u8], out: &mut Vec<u8>) {
    out.extend(qs.iter().map(|q| q & 15));
    out.extend(qs.iter().map(|q| q >> 4));
}

fn q8_0<'a>(rows: impl Iterator<Item = &'a [u8]> + Clone, cols: usize) -> Vec<PackedArray> {
    let mut q = Vec::new();
    for row in rows.clone() {
        for b in row.chunks_exact(34) {
            q.extend_from_slice(&b[2..34]);
        }
    }
    vec![per_row(cols / 4, words_le(&q)), block_scales(rows, 34, cols)]
}

fn q4_0<'a>(rows: impl Iterator<Item = &'a [u8]> + Clone, cols: usize) -> Vec<PackedArray> {
    let mut codes = Vec::new();
    for row in rows.clone() {
        for b in row.chunks_exact(18) {
            block_nibbles(&b[2..18], &mut codes);
        }
    }
    vec![per_row(cols / 8, pack_bits(&codes, 4)), block_scales(rows, 18, cols)]
}

/// The f16 d and m that open each block (Q4_1, Q5_1): one word per block, d in the low half.
fn block_dm<'a>(rows: impl Iterator<Item = &'a [u8]>, block_bytes: usize, cols: usize) -> PackedArray {
    let dm: Vec<u8> = rows.flat_map(|row| row.chunks_exact(block_bytes).flat_map(|b| &b[0..4])).copied().collect();
    per_row(cols / 32, words_le(&dm))
}

fn q4_1<'a>(rows: impl Iterator<Item = &'a [u8]> + Clone, cols: usize) -> Vec<PackedArray> {
    let mut codes = Vec::new();
    for row in rows.clone() {
        for b in row.chunks_exact(20) {
            block_nibbles(&b[4..20], &mut codes);
        }
    }
    vec![per_row(cols / 8, pack_bits(&codes, 4)), block_dm(rows, 20, cols)]
}

/// The 5-bit codes of Q5_0 (22-byte blocks: d, qh, qs) and Q5_1 (24: d, m, qh, qs), 5 words per
/// block: the nibbles as Q4_0's, then qh as stored.
fn q5_codes<'a>(rows: impl Iterator<Item = &'a [u8]>, block_bytes: usize, cols: usize) -> PackedArray {
    let qh_at = block_bytes - 20; // each block ends with qh (4 bytes) and the nibbles (16)
    let mut words = Vec::new();
    for row in rows {
        for b in row.chunks_exact(block_bytes) {
            let mut nibbles = Vec::with_capacity(32);
            block_nibbles(&b[qh_at + 4..], &mut nibbles);
            let qh = u32::from_le_bytes(b[qh_at..qh_at + 4].try_into().expect("4 qh bytes"));
            push_q5_block(&nibbles, qh, &mut words);
        }
    }
    per_row(5 * cols / 32, words)
}

/// One block of 32 5-bit codes as `matmul_q5_codes.wgsl` reads it (Q5_0, Q5_1, a Q5_K
/// sub-block): the 32 low nibbles in row order (4 words), then the fifth bits (bit k: weight k).
fn push_q5_block(nibbles: &[u8], fifth_bits: u32, words: &mut Vec<u32>) {
    words.extend(pack_bits(nibbles, 4));
    words.push(fifth_bits);
}

/// The scheme the registry knows `m` by.
fn matrix_scheme(m: &Matrix) -> QuantScheme {
    match m {
        Matrix::F32 { .. } => QuantScheme::ggml(GgmlType::F32),
        Matrix::Quantized(t) => t.scheme(),
    }
}

/// The rows of a ggml tensor's bytes.
fn ggml_rows(t: &GgmlTensor) -> std::slice::ChunksExact<'_, u8> {
    t.data.chunks_exact(t.data.len() / t.shape.rows)
}

/// The INT layout of a tensor the registry sends to the INT kernel (a per-tensor or per-channel
/// group is the row; a per-tensor scale is read at stride 0, see [`int`]).
fn int_layout(t: &IntTensor) -> Layout {
    let group = match t.scheme.granularity {
        Granularity::Group(g) => g,
        Granularity::Channel | Granularity::Tensor => t.shape.cols as u32,
    };
    Layout::Int { bits: t.bits, group, asym: t.scheme.mapping == Mapping::Asymmetric }
}

fn int(t: &IntTensor, layout: Layout) -> Vec<PackedArray> {
    let Layout::Int { group, asym, .. } = layout else { unreachable!("int layout") };
    let TensorShape { cols, .. } = t.shape;
    let groups = cols / group as usize;
    // Rows padded to whole 16-byte vec4s: the subgroup GEMV reads the codes as vec4<u32>.
    let row_words = cols * t.bits as usize / 32;
    let stride = row_words.next_multiple_of(4);
    let mut code_words = vec![0u32; t.shape.rows * stride];
    for (dst, src) in code_words.chunks_exact_mut(stride).zip(words_le(&t.packed).chunks_exact(row_words)) {
        dst[..row_words].copy_from_slice(src);
    }
    let codes = per_row(stride, code_words);
    let zero_words = if asym { groups.div_ceil(4) } else { 0 };
    let mut words = Vec::with_capacity(t.scales.len() / groups * (groups + zero_words));
    // One scale (and zero point) for the tensor: stored once, every row reads it at stride 0.
    let shared_scale = t.scheme.granularity == Granularity::Tensor;
    for (r, scales) in t.scales.chunks_exact(groups).enumerate() {
        words.extend(scales.iter().map(|s| s.to_bits()));
        if asym {
            let mut zeros = t.zero_points[r * groups..(r + 1) * groups].to_vec();
            zeros.resize(4 * zero_words, 0);
            words.extend(words_le(&zeros));
        }
    }
    let scales = if shared_scale { shared(words) } else { per_row(groups + zero_words, words) };
    vec![codes, scales]
}

fn codebook(t: &Bnb4Tensor) -> Vec<PackedArray> {
    let cols = t.shape.cols;
    let swapped: Vec<u8> = t.packed.iter().map(|b| b.rotate_left(4)).collect();
    let mut codes = words_le(&swapped);
    codes.truncate(t.shape.len() / 8);
    let absmax: Vec<u32> = t.absmax_f32().iter().map(|a| a.to_bits()).collect();
    let table: Vec<u32> = t.ty().table().iter().map(|v| v.to_bits()).collect();
    vec![per_row(cols / 8, codes), per_row(cols / t.block(), absmax), shared(table)]
}
