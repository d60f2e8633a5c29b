// matmul_q8_0.wgsl — ggml Q8_0 (blocks of 32: f16 scale d, 32 × i8 q; x = q·d), repacked.
// Concatenated with matmul_common.wgsl (entry points gemv, gemm, gather_rows; bindings 0 and 4..7
// and the override WG_SIZE are documented there).
//
// Bindings (group 0):
//   @binding(1) w_q : storage, read array<u32> — the i8 quants, 4 per word, weight k of a row in
//                     byte k % 4 of word k / 4 (chunk c = words 2c, 2c + 1). stride_q = cols / 4.
//   @binding(2) w_s : the f16 block scales (matmul_f16_scales.wgsl, appended by the host,
//                     declares and documents it). stride_s = ceil(cols / 64).
// Override constants: none of its own.
// Decoding is f32(q) · d, the CPU reference's one rounding: gather_rows is bit-exact.
// dot32_row comes from matmul_dot32.wgsl (appended by the host).

@group(0) @binding(1) var<storage, read> w_q: array<u32>;

fn decode8(row: u32, c: u32) -> Chunk8 {
    let d = block_scale(row, c);
    let i = row * params.stride_q + 2u * c;
    return Chunk8(bytes_i8(w_q[i]) * d, bytes_i8(w_q[i + 1u]) * d);
}

// Row-sharing GEMVs only (gemv_rows, gemv_subgroup): row[8c..8c+8] · a.v with the block scale applied
// once to the integer-valued dot product, d·Σ q·v; dot16_row: chunks c, c + 1 (c even: one
// block), the scale loaded once.
fn dot8_row(row: u32, c: u32, a: Act8) -> f32 {
    let d = block_scale(row, c);
    let i = row * params.stride_q + 2u * c;
    return d * (dot(bytes_i8(w_q[i]), a.v.lo) + dot(bytes_i8(w_q[i + 1u]), a.v.hi));
}

fn dot16_row(row: u32, c: u32, a0: Act8, a1: Act8) -> f32 {
    let d = block_scale(row, c);
    let i = row * params.stride_q + 2u * c;
    let q = dot(bytes_i8(w_q[i]), a0.v.lo) + dot(bytes_i8(w_q[i + 1u]), a0.v.hi);
    return d * (q + dot(bytes_i8(w_q[i + 2u]), a1.v.lo) + dot(bytes_i8(w_q[i + 3u]), a1.v.hi));
}
