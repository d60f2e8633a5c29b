// matmul_q5_codes.wgsl — the 5-bit codes Q5_0, Q5_1 and Q5_K share (ggml packs Q5_0/Q5_1 alike:
// the low nibbles like Q4_0, the fifth bits in a 32-bit mask per block of 32; Q5_K's sub-blocks of
// 32 are repacked the same way). `Kernel::source()` appends it to matmul_q5_0.wgsl,
// matmul_q5_1.wgsl and matmul_q5_k.wgsl, which add the block scale (and minimum) in w_s.
//
// Binding (group 0):
//   @binding(1) w_q : storage, read array<u32> — 5 words per block of 32: the low nibbles of its
//                     4 chunks in row order (8 per word, weight k of the block in bits 4(k % 8)..
//                     of word k / 8; ggml's j / j+16 split undone), then the fifth bits (bit k
//                     for weight k: ggml's qh as stored for Q5_0/Q5_1, bit j of Q5_K's qh[k] for
//                     sub-block j). stride_q = 5 · cols / 32.

@group(0) @binding(1) var<storage, read> w_q: array<u32>;

// The first word of chunk c's block in w_q (its 4 nibble words, then the fifth-bit mask).
fn q5_block(row: u32, c: u32) -> u32 {
    return row * params.stride_q + 5u * (c / 4u);
}

// The fifth bits of chunk c, shifted down to bits 0..8 (bits above 8 are the next chunks').
fn q5_mask(row: u32, c: u32) -> u32 {
    return w_q[q5_block(row, c) + 4u] >> (8u * (c % 4u));
}

// The codes q ∈ 0..=31 of chunk c (row[8c..8c+8]), as f32.
fn q5_codes(row: u32, c: u32) -> Chunk8 {
    let lo = nibbles(w_q[q5_block(row, c) + c % 4u]);
    let hi = bits8(q5_mask(row, c));
    return Chunk8(lo.lo + 16.0 * hi.lo, lo.hi + 16.0 * hi.hi);
}

// Σ q_j·v_j over one chunk, for the row-sharing GEMVs, from its nibble word `w` and fifth bits
// `h` (bits 0..8): the low nibbles through `nibble_dot` (no shifts) plus 16·Σ v over the set
// fifth bits. Integer codes times v: the caller applies the block's scale (and offset) once.
fn q5_dot(w: u32, h: u32, a: Act8) -> f32 {
    return nibble_dot(w, a) + 16.0 * dot8(bits8(h), a.v);
}

// q5_dot of chunk c of a row.
fn q5_dot8(row: u32, c: u32, a: Act8) -> f32 {
    return q5_dot(w_q[q5_block(row, c) + c % 4u], q5_mask(row, c), a);
}

// q5_dot of chunks c and c + 1 (c even: one block, its mask loaded once).
fn q5_dot16(row: u32, c: u32, a0: Act8, a1: Act8) -> f32 {
    let i = q5_block(row, c) + c % 4u;
    let h = q5_mask(row, c);
    return q5_dot(w_q[i], h, a0) + q5_dot(w_q[i + 1u], h >> 8u, a1);
}
