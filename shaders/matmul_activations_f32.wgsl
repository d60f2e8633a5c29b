// matmul_activations_f32.wgsl — the base matmul module's activation arithmetic: f32 GEMM tiles
// (see matmul_gemm.wgsl) and the GEMV's chunk dot in f32. The f16-activation module
// (matmul_f16_activations.wgsl) declares both in f16 instead, so `gemv` and `gemm` are written once.

alias GemmTile = f32;

// Σ w_j·v_j over one chunk of 8, in f32 (the CPU reference's arithmetic).
fn gemv_dot8(w: Chunk8, v: Chunk8) -> f32 {
    return dot(w.lo, v.lo) + dot(w.hi, v.hi);
}
