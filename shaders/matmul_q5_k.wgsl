// matmul_q5_k.wgsl — ggml Q5_K (Q4_K's super-blocks of 256 = 8 sub-blocks of 32 with a fifth bit
// per quant; x = (d·S_j)·q − dmin·M_j, q in 0..=31), repacked. Concatenated with
// matmul_common.wgsl (entry points gemv, gemm, gather_rows; bindings 0 and 4..7 and the override
// WG_SIZE are documented there).
//
// Bindings (group 0):
//   @binding(1) w_q : the 5-bit codes, 5 words per sub-block of 32 (matmul_q5_codes.wgsl,
//                     appended by the host, declares and documents it: a Q5_K sub-block is coded
//                     like a Q5_0 block). stride_q = 5 · cols / 32.
//   @binding(2) w_s : the super-block scales, 5 words per 256 values (matmul_k_scales.wgsl,
//                     appended by the host, declares and documents it). stride_s = 5 · cols / 256.
// Override constants: none of its own.
// d·S_j and dmin·M_j are exact in f32; the final multiply-subtract may be fused into an fma by the
// GPU compiler, so gather_rows can differ from the CPU by one rounding.
// dot32_row comes from matmul_dot32.wgsl (appended by the host).

fn decode8(row: u32, c: u32) -> Chunk8 {
    let sm = k_scale_min(row, c);
    let q = q5_codes(row, c);
    return Chunk8(sm.x * q.lo - sm.y, sm.x * q.hi - sm.y);
}

// Row-sharing GEMVs only (gemv_rows, gemv_subgroup): row[8c..8c+8] · a.v factored as
// (d·S_j)·Σ q·v − (dmin·M_j)·Σ v (Σ v shared by the rows); dot16_row: chunks c, c + 1
// (c even: one sub-block, its scales and fifth bits loaded once).
fn dot8_row(row: u32, c: u32, a: Act8) -> f32 {
    let sm = k_scale_min(row, c);
    return sm.x * q5_dot8(row, c, a) - sm.y * a.sum;
}

fn dot16_row(row: u32, c: u32, a0: Act8, a1: Act8) -> f32 {
    let sm = k_scale_min(row, c);
    return sm.x * q5_dot16(row, c, a0, a1) - sm.y * (a0.sum + a1.sum);
}
