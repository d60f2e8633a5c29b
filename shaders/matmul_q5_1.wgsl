// matmul_q5_1.wgsl — ggml Q5_1 (blocks of 32: f16 scale d and minimum m, 5-bit q; x = q·d + m),
// repacked. Concatenated with matmul_common.wgsl (entry points gemv, gemm, gather_rows; bindings 0
// and 4..7 and the override WG_SIZE are documented there).
//
// Bindings (group 0):
//   @binding(1) w_q : the 5-bit codes, 5 words per block (matmul_q5_codes.wgsl, appended by the
//                     host, declares and documents it). stride_q = 5 · cols / 32.
//   @binding(2) w_s : storage, read array<u32> — one word per block: d in the low half, m in the
//                     high half (as ggml stores them), as Q4_1. stride_s = cols / 32.
// Override constants: none of its own.
// Decoding is q·d + m like the CPU reference, but a GPU compiler may fuse it into one fma
// (Vulkan and WebGPU allow that), so gather_rows can differ from the CPU by one rounding.
// dot32_row comes from matmul_dot32.wgsl (appended by the host).

@group(0) @binding(2) var<storage, read> w_s: array<u32>;

fn decode8(row: u32, c: u32) -> Chunk8 {
    let dm = unpack2x16float(w_s[row * params.stride_s + c / 4u]);
    let q = q5_codes(row, c);
    return Chunk8(q.lo * dm.x + dm.y, q.hi * dm.x + dm.y);
}

// Row-sharing GEMVs only (gemv_rows, gemv_subgroup): row[8c..8c+8] · a.v factored as
// d·Σ q·v + m·Σ v (Σ v shared by the rows); dot16_row: chunks c, c + 1 (c even: one block),
// d and m loaded once.
fn dot8_row(row: u32, c: u32, a: Act8) -> f32 {
    let dm = unpack2x16float(w_s[row * params.stride_s + c / 4u]);
    return dm.x * q5_dot8(row, c, a) + dm.y * a.sum;
}

fn dot16_row(row: u32, c: u32, a0: Act8, a1: Act8) -> f32 {
    let dm = unpack2x16float(w_s[row * params.stride_s + c / 4u]);
    return dm.x * q5_dot16(row, c, a0, a1) + dm.y * (a0.sum + a1.sum);
}
