// matmul_dot32.wgsl — dot32_row (chunks c..c + 3, c a multiple of 4) as two of the format's
// dot16_row, for every format whose codes gain nothing from one wider load (all but INT, whose
// matmul_int.wgsl reads the 4 chunks' codes as one vec4). `Kernel::source()` appends it to the
// format files that take it (see the kernel list in gpu/kernel.rs).

fn dot32_row(row: u32, c: u32, a0: Act8, a1: Act8, a2: Act8, a3: Act8) -> f32 {
    return dot16_row(row, c, a0, a1) + dot16_row(row, c + 2u, a2, a3);
}
