// matmul_iq4_xs.wgsl — ggml IQ4_XS (256-value super-blocks: f16 d, eight 6-bit sub-block scales
// ls (offset 32), 4-bit indices i into the IQ4_NL table; x = (d·(ls − 32))·kvalues_iq4nl[i]),
// repacked. The decoding and the row-sharing dots are IQ4_NL's (matmul_iq4_nl.wgsl: the block
// scale times a table value), appended by the host with matmul_table16.wgsl and
// matmul_dot32.wgsl; this file gives them the scale of each 32-value sub-block. Concatenated with
// matmul_common.wgsl (entry points gemv, gemm, gather_rows; bindings 0 and 4..7 and the override
// WG_SIZE are documented there).
//
// Bindings (group 0):
//   @binding(1) w_q : the 4-bit indices in row order, 8 per word (ggml's j / j+16 split undone),
//                     as IQ4_NL (matmul_iq4_nl.wgsl declares it). stride_q = cols / 8.
//   @binding(2) w_s : storage, read array<u32> — per super-block 2 words, the block's first 8 bytes
//                     as stored:
//                       | scales_h (u16) : d (f16) | scales_l[3] scales_l[2] scales_l[1] scales_l[0] |
//                     sub-block s: low 4 bits = bits 4s.. of word 1, high 2 bits = bits 16 + 2s.. of
//                     word 0. stride_s = 2 · cols / 256.
//   @binding(3) table : kvalues_iq4nl as f32 (matmul_table16.wgsl).
// Override constants: none of its own.
// Decoding is (d · f32(ls − 32)) · kvalues[i], the CPU reference's two roundings in its order:
// gather_rows is bit-exact.

@group(0) @binding(2) var<storage, read> w_s: array<u32>;

// d·(ls − 32) of the 32-value sub-block holding chunk c (32 chunks per super-block).
fn block_scale(row: u32, c: u32) -> f32 {
    let i = row * params.stride_s + 2u * (c / 32u);
    let s = (c % 32u) / 4u;
    let head = w_s[i];
    let ls = extractBits(w_s[i + 1u], 4u * s, 4u) | (extractBits(head, 16u + 2u * s, 2u) << 4u);
    return unpack2x16float(head).x * f32(i32(ls) - 32);
}
