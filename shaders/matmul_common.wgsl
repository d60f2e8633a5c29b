// matmul_common.wgsl — the entry points every weight format shares but the GEMM (its tile loop
// is shaders/matmul_gemm.wgsl, in the same modules). It is never compiled alone:
// `Kernel::source()` appends it to one format file (shaders/matmul_<format>.wgsl), which
// declares the weight bindings 1..3 and `fn decode8(row, chunk) -> Chunk8` (the 8 weights
// row[8·chunk .. 8·chunk + 8] decoded to f32; zeros past the end of a padded row) and
// `fn dot8_row(row, chunk, a: Act8) -> f32` (those 8 weights · the activation chunk a, below;
// formats with an offset or a block scale factor them out), `fn dot16_row(row, chunk, a0, a1)`
// (chunks chunk and chunk + 1, chunk even: one scale load where they share a block) and
// `fn dot32_row(row, chunk, a0, a1, a2, a3)` (chunks chunk..chunk + 3, chunk a multiple of 4;
// most formats: two dot16_row), which the row-sharing GEMVs call: `gemv_rows` below and the
// subgroup GEMV (shaders/matmul_gemv_subgroup.wgsl, appended in a separate module on adapters
// with subgroups).
// WGSL module-scope declarations may appear in any order, so plain concatenation is enough.
// `gemv` takes its chunk dot (`gemv_dot8`) from the module's activation file:
// matmul_activations_f32.wgsl in the base module, matmul_f16_activations.wgsl (f16 activations,
// devices with shader-f16) in the f16 module, whose `gemv` is thereby the f16 GEMV.
//
// Bindings (group 0; each entry point's automatic layout keeps only what it uses):
//   @binding(0) params   : uniform MatmulParams (below)
//   @binding(1..3)       : the repacked weights (declared by the format file: 1 and 2 storage,
//                          3 a uniform table; WebGPU's downlevel limit is 4 storage buffers)
//   @binding(4) x        : storage, read        array<f32>  x[t·cols + k], t < n      (gemv*, gemm)
//   @binding(5) y        : storage, read_write  array<f32>  y[t·y_stride + row0 + r]  (gemv*, gemm)
//   @binding(6) ids      : storage, read        array<u32>  n row ids                 (gather_rows)
//   @binding(7) gathered : storage, read_write  array<f32>  gathered[i·cols + k]      (gather_rows)
// Override constants:
//   WG_SIZE (u32, default 64, power of two ≤ 256) — threads per GEMV workgroup.
//   ROW_THREADS (u32, default 64, power of two dividing WG_SIZE) — GEMV threads sharing one row.
//     GPUs want many (coalesced loads, a workgroup-memory reduction); CPU adapters (lavapipe,
//     SwiftShader) want 1: each invocation streams its own row and no barrier is needed.
//   ROWS_PER_THREAD (u32, 1..=16, default 4) — consecutive output rows one gemv_rows invocation
//     computes, sharing each activation chunk.
//   ROWS_RUN (u32, 2 or 4, default 2) — 8-weight chunks gemv_rows takes per step: 4 through the
//     format's `dot32_row` (INT: one vec4 of codes, one scale), 2 through `dot16_row`.
// Entry points:
//   gemv        — n = 1: WG_SIZE / ROW_THREADS output rows per workgroup (grid split over y past
//                 65535 workgroups: workgroup wid.y·num_workgroups.x + wid.x); the ROW_THREADS
//                 threads of a row stride over its 8-weight chunks and their partial sums are
//                 reduced in workgroup memory (a fixed-order tree).
//   gemv_rows   — n = 1, for adapters without subgroups that emulate the GPU on a CPU (SwiftShader):
//                 invocation i of workgroup g (numbered as in gemv) computes the ROWS_PER_THREAD
//                 rows from (g·WG_SIZE + i)·ROWS_PER_THREAD over the whole K, each activation
//                 chunk loaded (and its Σ v and nibble scaling, `act8`) once for all of them, like
//                 the subgroup GEMV but with no cross-lane sum: no workgroup memory, no barrier.
//                 Rows past the end are read clamped and never written.
//   gemm        — n > 1: shaders/matmul_gemm.wgsl.
//   gather_rows — gathered[i, :] = W[ids[i], :] decoded to f32 (the embedding lookup). Dispatch
//                 (ceil(chunks/64), n). A matrix split into row parts runs it once per part; each
//                 part writes the ids it owns, and part 0 writes zeros for ids past the last row.

struct MatmulParams {
    rows: u32,       // rows in this part of the matrix
    cols: u32,       // row length K
    n: u32,          // tokens (gemv, gemm) or ids (gather_rows)
    chunks: u32,     // ceil(cols / 8): 8-weight chunks per row
    row0: u32,       // first row of this part in the whole matrix
    y_stride: u32,   // rows of the whole matrix: the row pitch of y
    stride_q: u32,   // u32 words per row in binding 1
    stride_s: u32,   // u32 words per row in binding 2
    stride_e: u32,   // u32 words per row in binding 3 (0: binding 3 is a shared table)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

struct Chunk8 {
    lo: vec4<f32>,
    hi: vec4<f32>,
}

@group(0) @binding(0) var<uniform> params: MatmulParams;
@group(0) @binding(4) var<storage, read> x: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read> ids: array<u32>;
@group(0) @binding(7) var<storage, read_write> gathered: array<f32>;

override WG_SIZE: u32 = 64u;
override ROW_THREADS: u32 = 64u;
override ROWS_PER_THREAD: u32 = 4u;
override ROWS_RUN: u32 = 2u;

// Helpers the format files share (codes packed least significant bits first).
fn nibbles(w: u32) -> Chunk8 {
    return Chunk8(
        vec4<f32>(vec4<u32>(w, w >> 4u, w >> 8u, w >> 12u) & vec4<u32>(15u)),
        vec4<f32>(vec4<u32>(w >> 16u, w >> 20u, w >> 24u, w >> 28u) & vec4<u32>(15u)),
    );
}

// The 2-bit codes in bits 0..16 of w (code j in bits 2j..; Q2_K, Q3_K, Q6_K's high bits).
fn crumbs(w: u32) -> Chunk8 {
    return Chunk8(
        vec4<f32>((vec4<u32>(w) >> vec4<u32>(0u, 2u, 4u, 6u)) & vec4<u32>(3u)),
        vec4<f32>((vec4<u32>(w) >> vec4<u32>(8u, 10u, 12u, 14u)) & vec4<u32>(3u)),
    );
}

// Bits 0..8 of h as 0.0 / 1.0, in row order (the fifth bits of Q5_*, Q3_K's high bits).
fn bits8(h: u32) -> Chunk8 {
    return Chunk8(
        vec4<f32>((vec4<u32>(h) >> vec4<u32>(0u, 1u, 2u, 3u)) & vec4<u32>(1u)),
        vec4<f32>((vec4<u32>(h) >> vec4<u32>(4u, 5u, 6u, 7u)) & vec4<u32>(1u)),
    );
}

fn bytes_u8(w: u32) -> vec4<f32> {
    return vec4<f32>(vec4<u32>(w, w >> 8u, w >> 16u, w >> 24u) & vec4<u32>(255u));
}

fn bytes_i8(w: u32) -> vec4<f32> {
    let s = bitcast<i32>(w);
    return vec4<f32>(vec4<i32>(extractBits(s, 0u, 8u), extractBits(s, 8u, 8u), extractBits(s, 16u, 8u), extractBits(s, 24u, 8u)));
}

fn dot8(w: Chunk8, v: Chunk8) -> f32 {
    return dot(w.lo, v.lo) + dot(w.hi, v.hi);
}

// One activation chunk as the row-sharing GEMVs hand it to `dot8_row`/`dot16_row`, prepared once
// for all the rows that share it: the values, their sum (for formats with an offset), and the
// values scaled by 16^−j for nibble j < 7 (exact: powers of two), so `nibble_dot` can multiply
// masked, unshifted nibbles (q_j·16^j) by them and skip the shifts.
struct Act8 {
    v: Chunk8,
    sum: f32,
    nib: Chunk8,
}

fn act8(c: u32) -> Act8 {
    let v = load_x8(0u, c);
    let nib = Chunk8(
        v.lo * vec4<f32>(1.0, 0.0625, 0.00390625, 0.000244140625),
        v.hi * vec4<f32>(1.52587890625e-5, 9.5367431640625e-7, 5.9604644775390625e-8, 1.0),
    );
    return Act8(v, dot(v.lo + v.hi, vec4<f32>(1.0)), nib);
}

// Σ_j nibble_j(w)·v_j for 8 nibbles in row order (bits 4j..): q_j·16^j = w & (15 << 4j) is an
// exact f32 (4 significant bits, < 2^31 for j < 7, so a signed conversion), times v_j·16^−j;
// nibble 7 is shifted down instead. Bit-identical products to f32(q_j)·v_j unless v_j·16^−j
// underflows (|v_j| < 2^−102, a term below 2^−98·|scale|).
fn nibble_dot(w: u32, a: Act8) -> f32 {
    let lo = vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(w) & vec4<u32>(0xFu, 0xF0u, 0xF00u, 0xF000u)));
    let hi = vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(w & 0xF0000u, w & 0xF00000u, w & 0xF000000u, w >> 28u)));
    return dot(lo, a.nib.lo) + dot(hi, a.nib.hi);
}

fn load_x8(t: u32, c: u32) -> Chunk8 {
    let k = 8u * c;
    let base = t * params.cols + k;
    if (k + 8u <= params.cols) {
        return Chunk8(
            vec4<f32>(x[base], x[base + 1u], x[base + 2u], x[base + 3u]),
            vec4<f32>(x[base + 4u], x[base + 5u], x[base + 6u], x[base + 7u]),
        );
    }
    var v = array<f32, 8>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for (var j = 0u; j < 8u; j++) {
        if (k + j < params.cols) {
            v[j] = x[base + j];
        }
    }
    return Chunk8(vec4<f32>(v[0], v[1], v[2], v[3]), vec4<f32>(v[4], v[5], v[6], v[7]));
}

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(WG_SIZE)
fn gemv(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let lane = lid % ROW_THREADS;
    let row = (wid.y * nwg.x + wid.x) * (WG_SIZE / ROW_THREADS) + lid / ROW_THREADS;
    var acc = 0.0;
    if (row < params.rows) {
        for (var c = lane; c < params.chunks; c += ROW_THREADS) {
            acc += gemv_dot8(decode8(row, c), load_x8(0u, c));
        }
    }
    gemv_reduce_store(lid, lane, row, acc);
}

@compute @workgroup_size(WG_SIZE)
fn gemv_rows(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = ((wid.y * nwg.x + wid.x) * WG_SIZE + lid) * ROWS_PER_THREAD;
    if (row >= params.rows) {
        return; // no barrier below: an early return is safe
    }
    let last = params.rows - 1u;
    // acc[i / 4][i % 4]: row `row + i` (ROWS_PER_THREAD ≤ 16).
    var acc = array<vec4<f32>, 4>();
    var c = 0u;
    if (ROWS_RUN == 4u) {
        for (; c + 4u <= params.chunks; c += 4u) {
            let a0 = act8(c);
            let a1 = act8(c + 1u);
            let a2 = act8(c + 2u);
            let a3 = act8(c + 3u);
            for (var i = 0u; i < ROWS_PER_THREAD; i++) {
                acc[i / 4u][i % 4u] += dot32_row(min(row + i, last), c, a0, a1, a2, a3);
            }
        }
    }
    for (; c + 2u <= params.chunks; c += 2u) {
        let a0 = act8(c);
        let a1 = act8(c + 1u);
        for (var i = 0u; i < ROWS_PER_THREAD; i++) {
            acc[i / 4u][i % 4u] += dot16_row(min(row + i, last), c, a0, a1);
        }
    }
    if (c < params.chunks) {
        let a0 = act8(c);
        for (var i = 0u; i < ROWS_PER_THREAD; i++) {
            acc[i / 4u][i % 4u] += dot8_row(min(row + i, last), c, a0);
        }
    }
    for (var i = 0u; i < ROWS_PER_THREAD; i++) {
        if (row + i <= last) {
            y[params.row0 + row + i] = acc[i / 4u][i % 4u];
        }
    }
}

// The end of a GEMV: sums the ROW_THREADS partial sums of each row in a
// fixed-order tree in workgroup memory (nothing to sum when ROW_THREADS = 1) and writes y.
// Called from uniform control flow: every invocation reaches its barriers.
fn gemv_reduce_store(lid: u32, lane: u32, row: u32, acc: f32) {
    if (ROW_THREADS == 1u) {
        if (row < params.rows) {
            y[params.row0 + row] = acc;
        }
        return;
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var s = ROW_THREADS / 2u; s > 0u; s >>= 1u) {
        if (lane < s) {
            partial[lid] += partial[lid + s];
        }
        workgroupBarrier();
    }
    if (lane == 0u && row < params.rows) {
        y[params.row0 + row] = partial[lid];
    }
}

@compute @workgroup_size(64)
fn gather_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    let i = gid.y;
    if (c >= params.chunks || i >= params.n) {
        return;
    }
    let id = ids[i];
    var w = Chunk8(vec4<f32>(0.0), vec4<f32>(0.0));
    if (id >= params.row0 && id < params.row0 + params.rows) {
        w = decode8(id - params.row0, c);
    } else if (!(params.row0 == 0u && id >= params.y_stride)) {
        return; // another part's row
    }
    let k = 8u * c;
    let base = i * params.cols + k;
    let v = array<f32, 8>(w.lo.x, w.lo.y, w.lo.z, w.lo.w, w.hi.x, w.hi.y, w.hi.z, w.hi.w);
    for (var j = 0u; j < 8u; j++) {
        if (k + j < params.cols) {
            gathered[base + j] = v[j];
        }
    }
}
