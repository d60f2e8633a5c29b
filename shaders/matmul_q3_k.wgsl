// matmul_q3_k.wgsl — ggml Q3_K (super-blocks of 256 = 16 sub-blocks of 16; f16 d, a 6-bit scale
// S_i per sub-block stored with an offset of 32, 3-bit q; x = (d·(S_i − 32))·(q − 4) with q in
// 0..=7 = the 2 low bits + 4·the high bit), repacked. Concatenated with matmul_common.wgsl (entry
// points gemv, gemm, gather_rows; bindings 0 and 4..7 and the override WG_SIZE are documented
// there).
//
// Bindings (group 0):
//   @binding(1) w_q : storage, read array<u32> — 3 words per block of 32 values: the low 2 bits of
//                     values 0..15, then of 16..31, in row order (value k in bits 2(k % 16)..),
//                     then the high bits (bit k: value k; ggml's hmask, where a set bit means
//                     q − 4 ≥ 0). stride_q = 3 · cols / 32.
//   @binding(2) w_s : storage, read array<u32> — 4 words per super-block: [d as f32 bits, the low
//                     4 bits of S_0..S_7, of S_8..S_15 (S_i in bits 4(i % 8)..), the high 2 bits
//                     of S_0..S_15 (S_i in bits 2i..)] (ggml's 12-byte shuffle undone).
//                     stride_s = 4 · cols / 256.
// Override constants: none of its own.
// Decoding is (d·(S − 32))·(q − 4) in the CPU reference's order, both factors exact: gather_rows
// is bit-exact. dot32_row comes from matmul_dot32.wgsl (appended by the host).

@group(0) @binding(1) var<storage, read> w_q: array<u32>;
@group(0) @binding(2) var<storage, read> w_s: array<u32>;

// d·(S_i − 32) of the sub-block of chunk c (chunks 2i and 2i + 1 of its super-block).
fn q3k_scale(row: u32, c: u32) -> f32 {
    let base = row * params.stride_s + 4u * (c / 32u);
    let i = (c % 32u) / 2u;
    let lo = extractBits(w_s[base + 1u + i / 8u], 4u * (i % 8u), 4u);
    let hi = extractBits(w_s[base + 3u], 2u * i, 2u);
    return bitcast<f32>(w_s[base]) * f32(i32(lo | (hi << 4u)) - 32);
}

// The first word of chunk c's block of 32 values in w_q.
fn q3k_block(row: u32, c: u32) -> u32 {
    return row * params.stride_q + 3u * (c / 4u);
}

// The low 2 bits (in bits 0..16) and the high bits (bits 0..8) of chunk c.
fn q3k_low(row: u32, c: u32) -> u32 {
    return w_q[q3k_block(row, c) + (c % 4u) / 2u] >> (16u * (c % 2u));
}

fn q3k_high(row: u32, c: u32) -> u32 {
    return w_q[q3k_block(row, c) + 2u] >> (8u * (c % 4u));
}

fn decode8(row: u32, c: u32) -> Chunk8 {
    let d = q3k_scale(row, c);
    let lo = crumbs(q3k_low(row, c));
    let hi = bits8(q3k_high(row, c));
    return Chunk8(d * (lo.lo + 4.0 * hi.lo - 4.0), d * (lo.hi + 4.0 * hi.hi - 4.0));
}

// Row-sharing GEMVs only (gemv_rows, gemv_subgroup): Σ (q − 4)·v over one chunk from its low bits
// `w` (bits 0..16) and high bits `h` (bits 0..8), as Σ lo·v + 4·(Σ high·v − Σ v) (Σ v shared by
// the rows); the caller applies the sub-block's scale once.
fn q3k_dot(w: u32, h: u32, a: Act8) -> f32 {
    return dot8(crumbs(w), a.v) + 4.0 * (dot8(bits8(h), a.v) - a.sum);
}

fn dot8_row(row: u32, c: u32, a: Act8) -> f32 {
    return q3k_scale(row, c) * q3k_dot(q3k_low(row, c), q3k_high(row, c), a);
}

// Chunks c and c + 1 (c even: one sub-block, one word of low bits, one scale).
fn dot16_row(row: u32, c: u32, a0: Act8, a1: Act8) -> f32 {
    let b = q3k_block(row, c);
    let w = w_q[b + (c % 4u) / 2u];
    let h = w_q[b + 2u] >> (8u * (c % 4u));
    return q3k_scale(row, c) * (q3k_dot(w, h, a0) + q3k_dot(w >> 16u, h >> 8u, a1));
}
