// matmul_f32.wgsl — weights in f32. Concatenated with matmul_common.wgsl (entry points gemv,
// gemm, gather_rows; bindings 0 and 4..7 and the override WG_SIZE are documented there).
//
// Bindings (group 0):
//   @binding(1) w_q : storage, read array<u32> — f32 bit patterns, row-major, each row padded
//                     with zeros to a multiple of 8 values: row r, column k at r·stride_q + k.
// Layout (gpu/repack.rs, "F32"): stride_q = 8·ceil(cols / 8) words.
// Override constants: none of its own.
// Also the generic path's target when a decoded value does not fit f16.

@group(0) @binding(1) var<storage, read> w_q: array<u32>;

fn decode8(row: u32, c: u32) -> Chunk8 {
    let i = row * params.stride_q + 8u * c;
    return Chunk8(
        bitcast<vec4<f32>>(vec4<u32>(w_q[i], w_q[i + 1u], w_q[i + 2u], w_q[i + 3u])),
        bitcast<vec4<f32>>(vec4<u32>(w_q[i + 4u], w_q[i + 5u], w_q[i + 6u], w_q[i + 7u])),
    );
}

// Row-sharing GEMVs only (gemv_rows, gemv_subgroup): row[8c..8c+8] · a.v, and chunks c, c + 1.
fn dot8_row(row: u32, c: u32, a: Act8) -> f32 {
    return dot8(decode8(row, c), a.v);
}

fn dot16_row(row: u32, c: u32, a0: Act8, a1: Act8) -> f32 {
    return dot8_row(row, c, a0) + dot8_row(row, c + 1u, a1);
}

fn dot32_row(row: u32, c: u32, a0: Act8, a1: Act8, a2: Act8, a3: Act8) -> f32 {
    return dot16_row(row, c, a0, a1) + dot16_row(row, c + 2u, a2, a3);
}
