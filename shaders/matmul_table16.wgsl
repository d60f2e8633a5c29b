// matmul_table16.wgsl — a 16-entry table of values indexed by 4-bit codes, shared by the formats
// that store table indices instead of integers: bitsandbytes NF4/FP4 (matmul_codebook.wgsl) and
// ggml IQ4_NL (matmul_iq4_nl.wgsl). `Kernel::source()` appends it to their format files.
//
// Binding (group 0):
//   @binding(3) table : uniform array<vec4<f32>, 4> — the 16 values (code i at [i / 4][i % 4]),
//                       shared by all rows. A uniform, not a storage buffer: WebGPU's downlevel
//                       limit is 4 storage buffers per stage, x and y included.

@group(0) @binding(3) var<uniform> table: array<vec4<f32>, 4>;

fn table_value(c: u32) -> f32 {
    return table[c >> 2u][c & 3u];
}

// The table values of the 8 codes of one word (code j in bits 4j.., row order).
fn table8(w: u32) -> Chunk8 {
    return Chunk8(
        vec4<f32>(table_value(w & 15u), table_value((w >> 4u) & 15u), table_value((w >> 8u) & 15u), table_value((w >> 12u) & 15u)),
        vec4<f32>(table_value((w >> 16u) & 15u), table_value((w >> 20u) & 15u), table_value((w >> 24u) & 15u), table_value(w >> 28u)),
    );
}
