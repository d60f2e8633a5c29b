// matmul_bf16.wgsl — weights in bfloat16, two per u32: a bf16 value is the high half of an f32, so
// the low half of word j decodes as bitcast<f32>(w << 16) and the high half as
// bitcast<f32>(w & 0xffff0000), exactly (every bf16 value is an f32 value). Concatenated with
// matmul_common.wgsl (entry points gemv, gemm, gather_rows; bindings 0 and 4..7 and the override
// WG_SIZE are documented there).
//
// Bindings (group 0):
//   @binding(1) w_q : storage, read array<u32> — bf16 pairs, value 2j in the low half of word j,
//                     each row padded with zeros to a multiple of 8 values.
// Layout (gpu/repack.rs, "BF16"): stride_q = 4·ceil(cols / 8) words; chunk c = words 4c..4c+4.
// Override constants: none of its own.
// Used for GGML BF16 tensors. The row-sharing GEMVs' dots (dot8_row, dot16_row, dot32_row) come
// from matmul_dot_decoded.wgsl and matmul_dot32.wgsl (appended by the host).

@group(0) @binding(1) var<storage, read> w_q: array<u32>;

fn unpack2x16bf(w: u32) -> vec2<f32> {
    return vec2<f32>(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u));
}

fn decode8(row: u32, c: u32) -> Chunk8 {
    let i = row * params.stride_q + 4u * c;
    return Chunk8(
        vec4<f32>(unpack2x16bf(w_q[i]), unpack2x16bf(w_q[i + 1u])),
        vec4<f32>(unpack2x16bf(w_q[i + 2u]), unpack2x16bf(w_q[i + 3u])),
    );
}
