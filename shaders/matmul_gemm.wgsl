// matmul_gemm.wgsl — the many-token product (n > 1), shared by the f32 and f16-activation modules.
// It is never compiled alone: `Kernel::source()` puts it after the format file and
// matmul_common.wgsl (params, x, y, decode8, load_x8), and the module names the value type of
// the workgroup tiles:
//   - base module: `alias GemmTile = f32;` (matmul_activations_f32.wgsl) — the CPU reference's arithmetic;
//   - f16-activation module: `alias GemmTile = f16;` (matmul_f16_activations.wgsl) — weights and
//     activations rounded to f16 as they enter the tiles, each product an f16 multiply (one
//     rounding), the sums in f32 (CPU twin `gpu::matmul::matvec_f16_activations`); half the
//     workgroup memory.
//
// Bindings: those of matmul_common.wgsl (0 params, 1..3 weights, 4 x, 5 y).
// Entry point:
//   gemm — 64 threads compute a 32-row × 32-token tile, 4×4 outputs per thread, stepping K by 32
//          through workgroup tiles of decoded weights and activations.
//          Dispatch (ceil(rows/32), ceil(n/32)).

const TILE_ROWS: u32 = 32u;
const TILE_TOKENS: u32 = 32u;
const TILE_K: u32 = 32u;
var<workgroup> w_tile: array<GemmTile, 1024>; // [TILE_ROWS][TILE_K]
var<workgroup> x_tile: array<GemmTile, 1024>; // [TILE_TOKENS][TILE_K]

// Chunk l (< 128) of GEMM step s: row (or token) l / 4 of the tile, chunk s·4 + l % 4 of K,
// decoded weights and activations (zeros past the matrix, the batch or K) and their offset in
// the [32][TILE_K] workgroup tiles.
struct TileChunks {
    w: Chunk8,
    x: Chunk8,
    offset: u32,
}

fn tile_chunks(l: u32, s: u32, row_base: u32, tok_base: u32) -> TileChunks {
    let r = l / 4u;
    let c = s * 4u + l % 4u;
    var t = TileChunks(Chunk8(vec4<f32>(0.0), vec4<f32>(0.0)), Chunk8(vec4<f32>(0.0), vec4<f32>(0.0)), r * TILE_K + (l % 4u) * 8u);
    if (row_base + r < params.rows && c < params.chunks) {
        t.w = decode8(row_base + r, c);
    }
    if (tok_base + r < params.n && c < params.chunks) {
        t.x = load_x8(tok_base + r, c);
    }
    return t;
}

// Stores one chunk of weights and activations into the tiles, converted to GemmTile.
// (Workgroup pointers can't be function arguments in WebGPU, so one writer fills both tiles.)
fn store_tiles(t: TileChunks) {
    let o = t.offset;
    for (var j = 0u; j < 4u; j++) {
        w_tile[o + j] = GemmTile(t.w.lo[j]);
        w_tile[o + 4u + j] = GemmTile(t.w.hi[j]);
        x_tile[o + j] = GemmTile(t.x.lo[j]);
        x_tile[o + 4u + j] = GemmTile(t.x.hi[j]);
    }
}

@compute @workgroup_size(64)
fn gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row_base = wid.x * TILE_ROWS;
    let tok_base = wid.y * TILE_TOKENS;
    let tr = (lid / 8u) * 4u; // this thread's first row within the tile
    let tt = (lid % 8u) * 4u; // and first token
    var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    let steps = (params.chunks + 3u) / 4u;
    for (var s = 0u; s < steps; s++) {
        // 32 rows (or tokens) × 4 chunks = 128 chunk loads per tile, two per thread.
        for (var l = lid; l < 128u; l += 64u) {
            store_tiles(tile_chunks(l, s, row_base, tok_base));
        }
        workgroupBarrier();
        for (var k = 0u; k < TILE_K; k++) {
            let xv = vec4<GemmTile>(
                x_tile[tt * TILE_K + k],
                x_tile[(tt + 1u) * TILE_K + k],
                x_tile[(tt + 2u) * TILE_K + k],
                x_tile[(tt + 3u) * TILE_K + k],
            );
            // Products in GemmTile, sums in f32.
            acc[0] += vec4<f32>(w_tile[tr * TILE_K + k] * xv);
            acc[1] += vec4<f32>(w_tile[(tr + 1u) * TILE_K + k] * xv);
            acc[2] += vec4<f32>(w_tile[(tr + 2u) * TILE_K + k] * xv);
            acc[3] += vec4<f32>(w_tile[(tr + 3u) * TILE_K + k] * xv);
        }
        workgroupBarrier();
    }
    // This thread's 4 rows × 4 tokens (skipping those past the end).
    let row = row_base + tr;
    let tok = tok_base + tt;
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            if (row + i < params.rows && tok + j < params.n) {
                y[(tok + j) * params.y_stride + params.row0 + row + i] = acc[i][j];
            }
        }
    }
}
