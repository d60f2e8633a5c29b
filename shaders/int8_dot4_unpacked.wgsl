// int8_dot4_unpacked.wgsl — `idot4` without the packed_4x8_integer_dot_product language extension:
// each signed byte sign-extended by shifts, four integer multiply-adds. The same i32 as
// dot4I8Packed (every product and partial sum is exact: |Σ| ≤ 4·127² here). Prepended to
// shaders/matmul_int8_dot4.wgsl; the other variant is shaders/int8_dot4_packed.wgsl.
// No bindings, no override constants. CPU twin: `quantlab::gpu::int8_dot4::idot4`.

// The four signed bytes of a word, byte 0 (bits 0..8) first.
fn sbytes(w: u32) -> vec4<i32> {
    let s = bitcast<i32>(w);
    return vec4<i32>((s << 24u) >> 24u, (s << 16u) >> 24u, (s << 8u) >> 24u, s >> 24u);
}

// Σ_j a_j·b_j over the four signed bytes of each word, exact in i32.
fn idot4(a: u32, b: u32) -> i32 {
    let p = sbytes(a) * sbytes(b);
    return (p.x + p.y) + (p.z + p.w);
}
