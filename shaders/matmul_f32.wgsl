// matmul_f32.wgsl — weights in f32. Concatenated with matmul_common.wgsl (entry points gemv,
// gemm, gather_rows; bindings 0 and 4..7 and the override WG_SIZE are documented there).
//
// Bindings (group 0):
//   @binding(1) w_q : storage, read array<u32> — f32 bit patterns, row-major, each row padded
//                     with zeros to a multiple of 8 values: row r, column k at r·stride_q + k.
// Layout (gpu/repack.rs, "F32"): stride_q = 8·ceil(cols / 8) words.
// Override constants: none of its own.
// Also the generic path's target when a decoded value does not fit f16.
// The row-sharing GEMVs' dots (dot8_row, dot16_row, dot32_row) come from matmul_dot_decoded.wgsl
// and matmul_dot32.wgsl (appended by the host).

@group(0) @binding(1) var<storage, read> w_q: array<u32>;

fn decode8(row: u32, c: u32) -> Chunk8 {
    let i = row * params.stride_q + 8u * c;
    return Chunk8(
        bitcast<vec4<f32>>(vec4<u32>(w_q[i], w_q[i + 1u], w_q[i + 2u], w_q[i + 3u])),
        bitcast<vec4<f32>>(vec4<u32>(w_q[i + 4u], w_q[i + 5u], w_q[i + 6u], w_q[i + 7u])),
    );
}
