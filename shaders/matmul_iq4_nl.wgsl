// matmul_iq4_nl.wgsl — ggml IQ4_NL (blocks of 32: f16 scale d, 4-bit indices i into the fixed
// 16-level table kvalues_iq4nl; x = d·kvalues[i]), repacked. Concatenated with
// matmul_common.wgsl (entry points gemv, gemm, gather_rows; bindings 0 and 4..7 and the override
// WG_SIZE are documented there). The other formats of a 32-value block scale times a 16-entry
// table take this file's decoding and dots too, appended after their own file, which declares
// w_s and `block_scale` instead of matmul_f16_scales.wgsl: IQ4_XS (matmul_iq4_xs.wgsl) and
// MXFP4 (matmul_mxfp4.wgsl).
//
// Bindings (group 0):
//   @binding(1) w_q : storage, read array<u32> — the 4-bit indices in row order, 8 per word (ggml's
//                     j / j+16 split undone), as Q4_0. stride_q = cols / 8.
//   @binding(2) w_s : the f16 block scales (matmul_f16_scales.wgsl, appended by the host,
//                     declares and documents it, with `block_scale`). stride_s = ceil(cols / 64).
//   @binding(3) table : kvalues_iq4nl as f32 (matmul_table16.wgsl, appended by the host, declares
//                     and documents it).
// Override constants: none of its own.
// Decoding is d · kvalues[i], the CPU reference's one rounding: gather_rows is bit-exact.
// dot32_row comes from matmul_dot32.wgsl (appended by the host).

@group(0) @binding(1) var<storage, read> w_q: array<u32>;

fn decode8(row: u32, c: u32) -> Chunk8 {
    let d = block_scale(row, c);
    let v = table8(w_q[row * params.stride_q + c]);
    return Chunk8(d * v.lo, d * v.hi);
}

// Row-sharing GEMVs only (gemv_rows, gemv_subgroup): row[8c..8c+8] · a.v factored as
// d·Σ kvalues[i]·v (the levels are integers); dot16_row: chunks c, c + 1 (c even: one block), the
// scale loaded once.
fn dot8_row(row: u32, c: u32, a: Act8) -> f32 {
    return block_scale(row, c) * dot8(table8(w_q[row * params.stride_q + c]), a.v);
}

fn dot16_row(row: u32, c: u32, a0: Act8, a1: Act8) -> f32 {
    let i = row * params.stride_q + c;
    return block_scale(row, c) * (dot8(table8(w_q[i]), a0.v) + dot8(table8(w_q[i + 1u]), a1.v));
}
