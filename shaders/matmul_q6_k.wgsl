// matmul_q6_k.wgsl — ggml Q6_K (super-blocks of 256 = 16 sub-blocks of 16; f16 d, i8 scale per
// sub-block, 6-bit q; x = (d·scale)·(q − 32)), repacked. Concatenated with matmul_common.wgsl
// (entry points gemv, gemm, gather_rows; bindings 0 and 4..7 and the override WG_SIZE are
// documented there).
//
// Bindings (group 0):
//   @binding(1) w_q : storage, read array<u32> — low 4 bits of each quant in row order, 8 per
//                     word. stride_q = cols / 8.
//   @binding(2) w_s : storage, read array<u32> — 21 words per super-block: [d as f32 bits,
//                     scales 0..3, 4..7, 8..11, 12..15 as i8 bytes, then the high 2 bits of its
//                     256 quants in order, 16 per word (value k in bits 2(k % 16).. of word
//                     5 + k / 16)]. stride_s = 21 · cols / 256. (Binding 3 stays free: WebGPU's
//                     downlevel limit is 4 storage buffers per stage, x and y included.)
// Override constants: none of its own.
// Decoding is (d·scale)·(q − 32) in the CPU reference's order, d·scale exact: bit-exact.
// The row-sharing GEMVs' dots (dot8_row, dot16_row, dot32_row) come from matmul_dot_decoded.wgsl
// and matmul_dot32.wgsl (appended by the host).

@group(0) @binding(1) var<storage, read> w_q: array<u32>;
@group(0) @binding(2) var<storage, read> w_s: array<u32>;

fn decode8(row: u32, c: u32) -> Chunk8 {
    let base = row * params.stride_s + 21u * (c / 32u);
    let j = (c % 32u) / 2u; // sub-block of 16
    let d = bitcast<f32>(w_s[base]);
    let sc = d * f32(extractBits(bitcast<i32>(w_s[base + 1u + j / 4u]), (j % 4u) * 8u, 8u));
    let lo = nibbles(w_q[row * params.stride_q + c]);
    let hi = crumbs(w_s[base + 5u + (c % 32u) / 2u] >> ((c % 2u) * 16u));
    return Chunk8(sc * (lo.lo + 16.0 * hi.lo - 32.0), sc * (lo.hi + 16.0 * hi.hi - 32.0));
}
