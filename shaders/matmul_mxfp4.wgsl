// matmul_mxfp4.wgsl — ggml MXFP4 (OCP microscaling FP4: blocks of 32, an E8M0 scale byte e, 4-bit
// E2M1 codes i; x = kvalues_mxfp4[i]·2^(e − 128), the table holding doubled E2M1 values),
// repacked. The decoding and the row-sharing dots are IQ4_NL's (matmul_iq4_nl.wgsl: the block
// scale times a table value, the one rounding of the CPU reference's kvalue·d), appended by the
// host with matmul_table16.wgsl and matmul_dot32.wgsl; this file gives them each block's scale.
// Concatenated with matmul_common.wgsl (entry points gemv, gemm, gather_rows; bindings 0 and 4..7
// and the override WG_SIZE are documented there).
//
// Bindings (group 0):
//   @binding(1) w_q : the 4-bit codes in row order, 8 per word (ggml's j / j+16 split undone), as
//                     IQ4_NL (matmul_iq4_nl.wgsl declares it). stride_q = cols / 8.
//   @binding(2) w_s : storage, read array<u32> — the E8M0 bytes, 4 per word (block b of a row in
//                     byte b % 4 of word b / 4). stride_s = ceil(cols / 128).
//   @binding(3) table : kvalues_mxfp4 as f32 (matmul_table16.wgsl).
// Override constants: none of its own.
// Decoding is kvalues[i] · d with d = ggml_e8m0_to_fp32_half(e) built from bits as the CPU does
// (exact: a power of two), so gather_rows is bit-exact; e < 2 gives a subnormal d, which Vulkan
// and WebGPU let a device flush to zero.

@group(0) @binding(2) var<storage, read> w_s: array<u32>;

// 2^(e − 128) of the block holding chunk c (4 chunks per block).
fn block_scale(row: u32, c: u32) -> f32 {
    let b = c / 4u;
    let e = extractBits(w_s[row * params.stride_s + b / 4u], 8u * (b % 4u), 8u);
    return bitcast<f32>(select((e - 1u) << 23u, 0x00200000u << e, e < 2u));
}
