// matmul_f16.wgsl — weights in f16, two per u32, decoded with unpack2x16float (core WGSL: no
// `shader-f16` feature needed). Concatenated with matmul_common.wgsl (entry points gemv, gemm,
// gather_rows; bindings 0 and 4..7 and the override WG_SIZE are documented there).
//
// Bindings (group 0):
//   @binding(1) w_q : storage, read array<u32> — f16 pairs, value 2j in the low half of word j,
//                     each row padded with zeros to a multiple of 8 values.
// Layout (gpu/repack.rs, "F16"): stride_q = 4·ceil(cols / 8) words; chunk c = words 4c..4c+4.
// Override constants: none of its own.
// Used for GGML F16 tensors and for the generic path (any format dequantized to f16 at upload).
// The row-sharing GEMVs' dots (dot8_row, dot16_row, dot32_row) come from matmul_dot_decoded.wgsl
// and matmul_dot32.wgsl (appended by the host).

@group(0) @binding(1) var<storage, read> w_q: array<u32>;

fn decode8(row: u32, c: u32) -> Chunk8 {
    let i = row * params.stride_q + 4u * c;
    return Chunk8(
        vec4<f32>(unpack2x16float(w_q[i]), unpack2x16float(w_q[i + 1u])),
        vec4<f32>(unpack2x16float(w_q[i + 2u]), unpack2x16float(w_q[i + 3u])),
    );
}
