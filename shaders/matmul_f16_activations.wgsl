// matmul_f16_activations.wgsl — the one-token and many-token products with f16 activations, for
// adapters with the shader-f16 feature. It is never compiled alone and never on a device without
// shader-f16: `Kernel::matmul_source(MatmulModule::F16Activations)` puts it in front of a
// format file + matmul_common.wgsl (the `enable` directive must open the module; WGSL
// module-scope declarations may come in any order), and gpu/matmul.rs creates that module only when
// `GpuContext::adapter.shader_f16` is set. The base module never mentions f16 arithmetic, so
// SwiftShader (Chromium without shader-f16) compiles exactly what it did before.
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
// Override constants: WG_SIZE and ROW_THREADS (gemv_f16, as gemv in matmul_common.wgsl) and the
// format's own.
// Entry points:
//   gemv_f16 — n = 1, laid out exactly as `gemv` (ROW_THREADS threads per row, a workgroup-memory
//              tree when > 1, the same dispatch).
//   gemm_f16 — n > 1, laid out exactly as `gemm` (32 rows × 32 tokens per workgroup of 64
//              threads, 4×4 outputs per thread, K in steps of 32), with the workgroup tiles in
//              f16 (half the workgroup memory of `gemm`).

enable f16;

fn half8(v: Chunk8) -> array<vec4<f16>, 2> {
    return array<vec4<f16>, 2>(vec4<f16>(v.lo), vec4<f16>(v.hi));
}

// Σ f16(w_j)·f16(v_j) over one chunk: f16 products, f32 sum (4 lanes, then the two halves).
fn dot8_f16(w: Chunk8, v: Chunk8) -> f32 {
    let wh = half8(w);
    let vh = half8(v);
    let p = vec4<f32>(wh[0] * vh[0]) + vec4<f32>(wh[1] * vh[1]);
    return (p.x + p.y) + (p.z + p.w);
}

@compute @workgroup_size(WG_SIZE)
fn gemv_f16(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let lane = lid % ROW_THREADS;
    let row = (wid.y * nwg.x + wid.x) * (WG_SIZE / ROW_THREADS) + lid / ROW_THREADS;
    var acc = 0.0;
    if (row < params.rows) {
        for (var c = lane; c < params.chunks; c += ROW_THREADS) {
            acc += dot8_f16(decode8(row, c), load_x8(0u, c));
        }
    }
    gemv_reduce_store(lid, lane, row, acc);
}

var<workgroup> w_tile_h: array<f16, 1024>; // [TILE_ROWS][TILE_K]
var<workgroup> x_tile_h: array<f16, 1024>; // [TILE_TOKENS][TILE_K]

// (Workgroup pointers can't be function arguments in WebGPU, hence two writers.)
fn store_w8_h(o: u32, v: Chunk8) {
    let h = half8(v);
    for (var j = 0u; j < 4u; j++) {
        w_tile_h[o + j] = h[0][j];
        w_tile_h[o + 4u + j] = h[1][j];
    }
}

fn store_x8_h(o: u32, v: Chunk8) {
    let h = half8(v);
    for (var j = 0u; j < 4u; j++) {
        x_tile_h[o + j] = h[0][j];
        x_tile_h[o + 4u + j] = h[1][j];
    }
}

@compute @workgroup_size(64)
fn gemm_f16(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row_base = wid.x * TILE_ROWS;
    let tok_base = wid.y * TILE_TOKENS;
    let tr = (lid / 8u) * 4u; // this thread's first row within the tile
    let tt = (lid % 8u) * 4u; // and first token
    var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    let steps = (params.chunks + 3u) / 4u;
    for (var s = 0u; s < steps; s++) {
        for (var l = lid; l < 128u; l += 64u) {
            let t = tile_chunks(l, s, row_base, tok_base);
            store_w8_h(t.offset, t.w);
            store_x8_h(t.offset, t.x);
        }
        workgroupBarrier();
        for (var k = 0u; k < TILE_K; k++) {
            let xv = vec4<f16>(
                x_tile_h[tt * TILE_K + k],
                x_tile_h[(tt + 1u) * TILE_K + k],
                x_tile_h[(tt + 2u) * TILE_K + k],
                x_tile_h[(tt + 3u) * TILE_K + k],
            );
            acc[0] += vec4<f32>(w_tile_h[tr * TILE_K + k] * xv);
            acc[1] += vec4<f32>(w_tile_h[(tr + 1u) * TILE_K + k] * xv);
            acc[2] += vec4<f32>(w_tile_h[(tr + 2u) * TILE_K + k] * xv);
            acc[3] += vec4<f32>(w_tile_h[(tr + 3u) * TILE_K + k] * xv);
        }
        workgroupBarrier();
    }
    store_gemm_outputs(row_base + tr, tok_base + tt, acc);
}
