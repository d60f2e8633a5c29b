// matmul_gemv_subgroup.wgsl — the subgroup GEMV (n = 1), for adapters with the SUBGROUP feature.
// It is never compiled alone and never on a device without subgroups:
// `Kernel::matmul_source(Subgroup)` appends it to the base module (weight bindings, `decode8`,
// the dots, `load_x8`, `params`, x, y, WG_SIZE), and gpu/matmul.rs creates that module only when
// `GpuContext::adapter.subgroups` is set. The base module (format + common) never contains it, so
// devices without subgroups compile exactly what they compiled before.
//
// No `enable subgroups;` directive: naga 30 (wgpu's WGSL front end natively) rejects it as "not yet
// implemented" and gates the subgroup builtins on the device feature instead. The browser path
// never reaches this file: wgpu 30's WebGPU backend does not map the `subgroups` feature, so
// `adapter.subgroups` is false on wasm32 (gpu/mod.rs) and the portable gemv runs there.
//
// Bindings: those of matmul_common.wgsl used by gemv (0 params, 1..3 weights, 4 x, 5 y).
// Override constants (besides the format's own and WG_SIZE from matmul_common.wgsl):
//   SG_ROWS (u32, 1..64, default 4) — consecutive output rows one subgroup computes together: each
//     activation chunk is loaded once and multiplied with SG_ROWS rows, which cuts the x loads per
//     weight by SG_ROWS (what bounds a CPU adapter such as lavapipe, where every load is an
//     instruction per lane and per value).
//   SG_CHUNKS (u32, 2 or 4, default 2) — 8-weight chunks a lane takes per step: 4 for formats
//     whose `dot32_row` loads them at once (INT: one vec4 of codes, one scale), 2 for the others
//     (their dot32_row would be two dot16_row, and the longer runs measured slower for f32).
//   GROUP_ROWS (u32, default 32, a multiple of SG_ROWS) — output rows per workgroup (the host
//     passes 8·SG_ROWS).
// Entry point:
//   gemv_subgroup — workgroup g = wid.y·num_workgroups.x + wid.x owns rows [g·GROUP_ROWS, +GROUP_ROWS);
//     its subgroups take SG_ROWS of them at a time (subgroup s: rows s·SG_ROWS, then
//     + num_subgroups·SG_ROWS, ...), so the result does not depend on the subgroup size. Lane l of
//     a subgroup of size S reads the runs of n = SG_CHUNKS 8-weight chunks nl.., then nl + nS..,
//     ... of the rows: consecutive lanes read consecutive runs and multiply them through the
//     format's `dot32_row` (n = 4: the INT codes as one vec4 load, the scale and zero once) or
//     `dot16_row` (n = 2: one scale load where both chunks share a block), scale and offset
//     factored out and Σ v computed once for all SG_ROWS rows; a row's last chunks go through
//     `dot16_row` and `dot8_row`. The per-lane partial sums are reduced with subgroupAdd (no workgroup
//     memory, no barrier) and lane 0 writes them.
//     Dispatch ceil(rows / GROUP_ROWS) workgroups (split over y past 65535).

override SG_ROWS: u32 = 4u;
override SG_CHUNKS: u32 = 2u;
override GROUP_ROWS: u32 = 32u;

@compute @workgroup_size(WG_SIZE)
fn gemv_subgroup(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(subgroup_id) sg: u32,
    @builtin(num_subgroups) nsg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) sg_size: u32,
) {
    let first = (wid.y * nwg.x + wid.x) * GROUP_ROWS;
    let last = params.rows - 1u;
    for (var r = sg * SG_ROWS; r < GROUP_ROWS; r += nsg * SG_ROWS) {
        let row = first + r;
        if (row > last) {
            break; // uniform across the subgroup: every lane has the same row
        }
        // acc[i / 4][i % 4]: this lane's partial sum of row `row + i` (SG_ROWS ≤ 64).
        var acc = array<vec4<f32>, 16>();
        for (var c = SG_CHUNKS * lane; c < params.chunks; c += SG_CHUNKS * sg_size) {
            let a0 = act8(c);
            if (SG_CHUNKS == 4u && c + 4u <= params.chunks) {
                let a1 = act8(c + 1u);
                let a2 = act8(c + 2u);
                let a3 = act8(c + 3u);
                for (var i = 0u; i < SG_ROWS; i++) {
                    // Rows past the end are read clamped (in bounds) and never written.
                    acc[i / 4u][i % 4u] += dot32_row(min(row + i, last), c, a0, a1, a2, a3);
                }
            } else if (c + 1u < params.chunks) {
                let a1 = act8(c + 1u);
                for (var i = 0u; i < SG_ROWS; i++) {
                    acc[i / 4u][i % 4u] += dot16_row(min(row + i, last), c, a0, a1);
                }
                if (SG_CHUNKS == 4u && c + 2u < params.chunks) {
                    let a2 = act8(c + 2u);
                    for (var i = 0u; i < SG_ROWS; i++) {
                        acc[i / 4u][i % 4u] += dot8_row(min(row + i, last), c + 2u, a2);
                    }
                }
            } else {
                for (var i = 0u; i < SG_ROWS; i++) {
                    acc[i / 4u][i % 4u] += dot8_row(min(row + i, last), c, a0);
                }
            }
        }
        for (var j = 0u; j < (SG_ROWS + 3u) / 4u; j++) {
            let sums = subgroupAdd(acc[j]);
            for (var i = 0u; i < 4u; i++) {
                let o = row + 4u * j + i;
                if (lane == 0u && 4u * j + i < SG_ROWS && o <= last) {
                    y[params.row0 + o] = sums[i];
                }
            }
        }
    }
}
