// matmul_q2_k.wgsl — ggml Q2_K (super-blocks of 256 = 16 sub-blocks of 16; f16 d and dmin, 4-bit
// scale S_i and minimum M_i per sub-block, 2-bit q; x = (d·S_i)·q − dmin·M_i), repacked.
// Concatenated with matmul_common.wgsl (entry points gemv, gemm, gather_rows; bindings 0 and 4..7
// and the override WG_SIZE are documented there).
//
// Bindings (group 0):
//   @binding(1) w_q : storage, read array<u32> — the 2-bit quants in row order, 16 per word (value
//                     k in bits 2(k % 16).. of word k / 16; ggml's 32-value interleave undone).
//                     stride_q = cols / 16.
//   @binding(2) w_s : storage, read array<u32> — 5 words per super-block: [d | dmin as an f16 pair
//                     (d in the low half), then ggml's 16 scale bytes as stored (byte i: S_i in
//                     the low nibble, M_i in the high one)]. stride_s = 5 · cols / 256: the
//                     format's own 84 bytes per 256 values.
// Override constants: none of its own.
// d·S_i and dmin·M_i are exact in f32 (11 × 4 bits); the final multiply-subtract may be fused
// into an fma by the GPU compiler, so gather_rows can differ from the CPU by one rounding.
// dot32_row comes from matmul_dot32.wgsl (appended by the host).

@group(0) @binding(1) var<storage, read> w_q: array<u32>;
@group(0) @binding(2) var<storage, read> w_s: array<u32>;

// (d·S_i, dmin·M_i) of the sub-block of chunk c (chunks 2i and 2i + 1 of its super-block).
fn q2k_scale_min(row: u32, c: u32) -> vec2<f32> {
    let base = row * params.stride_s + 5u * (c / 32u);
    let i = (c % 32u) / 2u;
    let dm = unpack2x16float(w_s[base]);
    let sm = extractBits(w_s[base + 1u + i / 4u], 8u * (i % 4u), 8u);
    return vec2<f32>(dm.x * f32(sm & 15u), dm.y * f32(sm >> 4u));
}

// The word holding chunk c's quants (in its low half for c even, its high half for c odd).
fn q2k_word(row: u32, c: u32) -> u32 {
    return w_q[row * params.stride_q + c / 2u];
}

fn decode8(row: u32, c: u32) -> Chunk8 {
    let sm = q2k_scale_min(row, c);
    let q = crumbs(q2k_word(row, c) >> (16u * (c % 2u)));
    return Chunk8(sm.x * q.lo - sm.y, sm.x * q.hi - sm.y);
}

// Row-sharing GEMVs only (gemv_rows, gemv_subgroup): row[8c..8c+8] · a.v factored as
// (d·S_i)·Σ q·v − (dmin·M_i)·Σ v (Σ v shared by the rows); dot16_row: chunks c, c + 1
// (c even: one sub-block, one word of quants, its scale and min loaded once).
fn dot8_row(row: u32, c: u32, a: Act8) -> f32 {
    let sm = q2k_scale_min(row, c);
    return sm.x * dot8(crumbs(q2k_word(row, c) >> (16u * (c % 2u))), a.v) - sm.y * a.sum;
}

fn dot16_row(row: u32, c: u32, a0: Act8, a1: Act8) -> f32 {
    let sm = q2k_scale_min(row, c);
    let w = q2k_word(row, c);
    return sm.x * (dot8(crumbs(w), a0.v) + dot8(crumbs(w >> 16u), a1.v)) - sm.y * (a0.sum + a1.sum);
}
