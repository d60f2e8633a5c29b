// matmul_q5_0.wgsl — ggml Q5_0 (blocks of 32: f16 scale d, 5-bit q; x = (q − 16)·d), repacked.
// Concatenated with matmul_common.wgsl (entry points gemv, gemm, gather_rows; bindings 0 and 4..7
// and the override WG_SIZE are documented there).
//
// Bindings (group 0):
//   @binding(1) w_q : the 5-bit codes, 5 words per block (matmul_q5_codes.wgsl, appended by the
//                     host, declares and documents it). stride_q = 5 · cols / 32.
//   @binding(2) w_s : the f16 block scales (matmul_f16_scales.wgsl, appended by the host,
//                     declares and documents it). stride_s = ceil(cols / 64).
// Override constants: none of its own.
// Decoding is (f32(q) − 16) · d, exact like the CPU reference: gather_rows is bit-exact.
// dot32_row comes from matmul_dot32.wgsl (appended by the host).

fn decode8(row: u32, c: u32) -> Chunk8 {
    let d = block_scale(row, c);
    let q = q5_codes(row, c);
    return Chunk8((q.lo - 16.0) * d, (q.hi - 16.0) * d);
}

// Row-sharing GEMVs only (gemv_rows, gemv_subgroup): row[8c..8c+8] · a.v factored as
// d·(Σ q·v − 16·Σ v) (Σ v shared by the rows); dot16_row: chunks c, c + 1 (c even: one block),
// the scale loaded once.
fn dot8_row(row: u32, c: u32, a: Act8) -> f32 {
    return block_scale(row, c) * (q5_dot8(row, c, a) - 16.0 * a.sum);
}

fn dot16_row(row: u32, c: u32, a0: Act8, a1: Act8) -> f32 {
    return block_scale(row, c) * (q5_dot16(row, c, a0, a1) - 16.0 * (a0.sum + a1.sum));
}
