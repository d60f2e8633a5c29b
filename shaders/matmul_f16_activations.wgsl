// matmul_f16_activations.wgsl — the one-token and many-token products with f16 activations, for
// adapters with the shader-f16 feature. It is never compiled alone and never on a device without
// shader-f16: `Kernel::matmul_source(F16Activations)` puts it in front of a format file, its
// shared dots, matmul_common.wgsl and matmul_gemm.wgsl (the `enable` directive must open the
// module; WGSL module-scope declarations may come in any order), and gpu/matmul.rs creates that
// module only when `GpuContext::adapter.shader_f16` is set. The base module never mentions f16
// arithmetic, so SwiftShader (Chromium without shader-f16) compiles exactly what it did before.
//
// Arithmetic (the CPU twin is `gpu::matmul::matvec_f16_activations`): each weight (the format's
// `decode8`, f32) and each activation (x, f32 in memory) is rounded to f16, each product w·x is
// an f16 multiply (one rounding), and the products are summed in f32. Summing in f16 would lose
// ~3 digits over K = 4096 terms; f16 operands and products are what halve register and
// workgroup-memory traffic and double ALU throughput on GPUs with fast f16. Values past f16's
// range (65504) become ±inf, as in every f16 pipeline; the lab reports such logits as non-finite.
//
// Bindings: those of matmul_common.wgsl (0 params, 1..3 weights, 4 x, 5 y); x and y stay f32 in
// memory (the rest of the forward is f32), the conversion happens on load.
// Override constants: those of matmul_common.wgsl's `gemv` and the format's own.
// This file declares the two pieces of arithmetic the shared entry points leave open (the base
// module takes them from matmul_activations_f32.wgsl instead):
//   gemv_dot8 — used by matmul_common.wgsl's `gemv` (n = 1): f16 products, f32 sum;
//   GemmTile  — the tile type of matmul_gemm.wgsl's `gemm` (n > 1): f16 tiles, half the workgroup
//               memory of the base module's.

enable f16;

// The GEMM (shaders/matmul_gemm.wgsl, in this module too) rounds its tiles to f16.
alias GemmTile = f16;

fn half8(v: Chunk8) -> array<vec4<f16>, 2> {
    return array<vec4<f16>, 2>(vec4<f16>(v.lo), vec4<f16>(v.hi));
}

// Σ f16(w_j)·f16(v_j) over one chunk: f16 products, f32 sum (4 lanes, then the two halves).
fn gemv_dot8(w: Chunk8, v: Chunk8) -> f32 {
    let wh = half8(w);
    let vh = half8(v);
    let p = vec4<f32>(wh[0] * vh[0]) + vec4<f32>(wh[1] * vh[1]);
    return (p.x + p.y) + (p.z + p.w);
}
