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
//! | `q8_k.rs`     | Q8_K             | 256 / 292              | yes        | later    |
//! | `k_quant_search.rs` | (helpers)   | scale searches, `nearest_int`, f16 rounding shared by the K-quant quantizers | | |
//! | `iq4_nl.rs`   | IQ4_NL           | 32 / 18                | yes        | no       |
//! | `iq4_xs.rs`   | IQ4_XS           | 256 / 136              | yes        | no       |
//! | `mxfp4.rs`    | MXFP4            | 32 / 17                | yes        | no       |
//! | `tq1_0.rs`    | TQ1_0            | 256 / 54               | yes        | no       |
//! | `tq2_0.rs`    | TQ2_0            | 256 / 66               | yes        | no       |
//!
//! Each file has a `#[repr(C)]` block struct (bytemuck `Pod`, sizes asserted at compile time
//! against [`GgmlType::block_layout`](crate::gguf::GgmlType::block_layout)), a
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
pub mod tq1_0;
pub mod tq2_0;

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

/// Panics unless `n_values` fills `n_blocks` blocks of `block` values exactly.
pub(crate) fn assert_block_count(n_values: usize, n_blocks: usize, block: usize) {
    assert_eq!(n_values, n_blocks * block, "expected {n_blocks} blocks of {block} values");
}
