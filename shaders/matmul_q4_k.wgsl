// matmul_q4_k.wgsl — ggml Q4_K (super-blocks of 256 = 8 sub-blocks of 32; f16 d and dmin, 6-bit
// scale S_j and minimum M_j per sub-block; x = (d·S_j)·q − dmin·M_j), repacked. Concatenated with
// matmul_common.wgsl (entry points gemv, gemm, gather_rows; bindings 0 and 4..7 and the override
// WG_SIZE are documented there).
//
// Bindings (group 0):
//   @binding(1) w_q : storage, read array<u32> — the 4-bit quants in row order, 8 per word (ggml's
//                     64-value lo/hi interleave undone). stride_q = cols / 8.
//   @binding(2) w_s : storage, read array<u32> — 5 words per super-block: [d | dmin as f16 pair,
//                     S_0..S_3, S_4..S_7, M_0..M_3, M_4..M_7 as bytes] (the 6-bit packing undone).
//                     stride_s = 5 · cols / 256.
// Override constants: none of its own.
// d·S_j and dmin·M_j are exact in f32 (11 × 6 bits); the final multiply-subtract may be fused
// into an fma by the GPU compiler, so gather_rows can differ from the CPU by one rounding.
// dot32_row comes from matmul_dot32.wgsl (appended by the host).

@group(0) @binding(1) var<storage, read> w_q: array<u32>;
@group(0) @binding(2) var<storage, read> w_s: array<u32>;

fn decode8(row: u32, c: u32) -> Chunk8 {
    let base = row * params.stride_s + 5u * (c / 32u);
    let j = (c % 32u) / 4u; // sub-block of 32
    let dm = unpack2x16float(w_s[base]);
    let sc = f32(extractBits(w_s[base + 1u + j / 4u], (j % 4u) * 8u, 8u));
    let mn = f32(extractBits(w_s[base + 3u + j / 4u], (j % 4u) * 8u, 8u));
    let d1 = dm.x * sc;
    let m1 = dm.y * mn;
    let q = nibbles(w_q[row * params.stride_q + c]);
    return Chunk8(d1 * q.lo - m1, d1 * q.hi - m1);
}

// Row-sharing GEMVs only (gemv_rows, gemv_subgroup): row[8c..8c+8] · a.v factored as
// (d·S_j)·Σ q·v − (dmin·M_j)·Σ v (Σ v shared by the rows); dot16_row: chunks c, c + 1
// (c even: one sub-block), its scale and min loaded once.
fn q4k_dot(row: u32, c: u32, q: f32, vsum: f32) -> f32 {
    let base = row * params.stride_s + 5u * (c / 32u);
    let j = (c % 32u) / 4u;
    let dm = unpack2x16float(w_s[base]);
    let sc = f32(extractBits(w_s[base + 1u + j / 4u], (j % 4u) * 8u, 8u));
    let mn = f32(extractBits(w_s[base + 3u + j / 4u], (j % 4u) * 8u, 8u));
    return dm.x * sc * q - dm.y * mn * vsum;
}

fn dot8_row(row: u32, c: u32, a: Act8) -> f32 {
    return q4k_dot(row, c, nibble_dot(w_q[row * params.stride_q + c], a), a.sum);
}

fn dot16_row(row: u32, c: u32, a0: Act8, a1: Act8) -> f32 {
    let i = row * params.stride_q + c;
    return q4k_dot(row, c, nibble_dot(w_q[i], a0) + nibble_dot(w_q[i + 1u], a1), a0.sum + a1.sum);
}
