// matmul_gemm_f32.wgsl — the base matmul module's GEMM tiles hold f32 (see matmul_gemm.wgsl; the
// f16-activation module declares f16 instead).

alias GemmTile = f32;
