// matmul_q4_0.wgsl — ggml Q4_0 (blocks of 32: f16 scale d, 4-bit q; x = (q − 8)·d), repacked.
// Concatenated with matmul_common.wgsl (entry points gemv, gemm, gather_rows; bindings 0 and 4..7
// and the override WG_SIZE are documented there).
//
// Bindings (group 0):
//   @binding(1) w_q : storage, read array<u32> — the 4-bit quants in row order, 8 per word, weight
//                     k of a row in bits 4(k % 8).. of word k / 8 (ggml's lo/hi nibble split undone).
//                     stride_q = cols / 8.
//   @binding(2) w_s : the f16 block scales (matmul_f16_scales.wgsl, appended by the host,
//                     declares and documents it). stride_s = ceil(cols / 64).
// Override constants: none of its own.
// Decoding is (f32(q) − 8) · d, exact like the CPU reference: gather_rows is bit-exact.
// dot32_row comes from matmul_dot32.wgsl (appended by the host).

@group(0) @binding(1) var<storage, read> w_q: array<u32>;

fn decode8(row: u32, c: u32) -> Chunk8 {
    let d = block_scale(row, c);
    let q = nibbles(w_q[row * params.stride_q + c]);
    return Chunk8((q.lo - 8.0) * d, (q.hi - 8.0) * d);
}

// Row-sharing GEMVs only (gemv_rows, gemv_subgroup): row[8c..8c+8] · a.v factored as
// d·(Σ q·v − 8·Σ v) (llama.cpp's form; Σ v shared by the subgroup's rows); dot16_row: chunks
// c, c + 1 (c even: one block), the scale loaded once.
fn dot8_row(row: u32, c: u32, a: Act8) -> f32 {
    let d = block_scale(row, c);
    return d * (nibble_dot(w_q[row * params.stride_q + c], a) - 8.0 * a.sum);
}

fn dot16_row(row: u32, c: u32, a0: Act8, a1: Act8) -> f32 {
    let d = block_scale(row, c);
    let i = row * params.stride_q + c;
    return d * (nibble_dot(w_q[i], a0) + nibble_dot(w_q[i + 1u], a1) - 8.0 * (a0.sum + a1.sum));
}
