// matmul_q4_1.wgsl — ggml Q4_1 (blocks of 32: f16 scale d and minimum m, 4-bit q; x = q·d + m),
// repacked. Concatenated with matmul_common.wgsl (entry points gemv, gemm, gather_rows; bindings 0
// and 4..7 and the override WG_SIZE are documented there).
//
// Bindings (group 0):
//   @binding(1) w_q : storage, read array<u32> — the 4-bit quants in row order, 8 per word, weight
//                     k of a row in bits 4(k % 8).. of word k / 8 (ggml's lo/hi nibble split undone).
//                     stride_q = cols / 8.
//   @binding(2) w_s : storage, read array<u32> — one word per block: d in the low half, m in the
//                     high half (as ggml stores them). stride_s = cols / 32.
// Override constants: none of its own.
// Decoding is q·d + m like the CPU reference, but a GPU compiler may fuse it into one fma
// (Vulkan and WebGPU allow that), so gather_rows can differ from the CPU by one rounding.
// dot32_row comes from matmul_dot32.wgsl (appended by the host).

@group(0) @binding(1) var<storage, read> w_q: array<u32>;
@group(0) @binding(2) var<storage, read> w_s: array<u32>;

fn decode8(row: u32, c: u32) -> Chunk8 {
    let dm = unpack2x16float(w_s[row * params.stride_s + c / 4u]);
    let q = nibbles(w_q[row * params.stride_q + c]);
    return Chunk8(q.lo * dm.x + dm.y, q.hi * dm.x + dm.y);
}

// Row-sharing GEMVs only (gemv_rows, gemv_subgroup): row[8c..8c+8] · a.v factored as d·Σ q·v + m·Σ v
// (llama.cpp's form; Σ v shared by the subgroup's rows); dot16_row: chunks c, c + 1 (c even: one
// block), d and m loaded once.
fn dot8_row(row: u32, c: u32, a: Act8) -> f32 {
    let dm = unpack2x16float(w_s[row * params.stride_s + c / 4u]);
    return dm.x * nibble_dot(w_q[row * params.stride_q + c], a) + dm.y * a.sum;
}

fn dot16_row(row: u32, c: u32, a0: Act8, a1: Act8) -> f32 {
    let dm = unpack2x16float(w_s[row * params.stride_s + c / 4u]);
    let i = row * params.stride_q + c;
    return dm.x * (nibble_dot(w_q[i], a0) + nibble_dot(w_q[i + 1u], a1)) + dm.y * (a0.sum + a1.sum);
}
