// matmul_dot_decoded.wgsl — the row-sharing GEMVs' dots (gemv_rows in matmul_common.wgsl,
// gemv_subgroup) for formats that have no factored form: decode the weights with the format's
// `decode8`, then multiply. `Kernel::source()` appends it to the format files that take it
// (f32, f16, Q6_K, NF4/FP4; see the kernel list in gpu/kernel.rs); the others write their own
// dot8_row/dot16_row, scale and offset factored out.
//
// dot8_row(row, c, a)       = row[8c..8c+8] · a.v
// dot16_row(row, c, a0, a1) = chunks c and c + 1

fn dot8_row(row: u32, c: u32, a: Act8) -> f32 {
    return dot8(decode8(row, c), a.v);
}

fn dot16_row(row: u32, c: u32, a0: Act8, a1: Act8) -> f32 {
    return dot8_row(row, c, a0) + dot8_row(row, c + 1u, a1);
}
