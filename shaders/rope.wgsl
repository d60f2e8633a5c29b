// rope.wgsl — rotary position embedding of the queries and keys of rows r < step.n, in place.
// Row r is at position step.pos0 + r. In every head, the ADJACENT pairs (x[2i], x[2i+1]),
// 2i < ROPE_DIM, turn by θ = pos · theta^(−2i/ROPE_DIM) (see the module doc of model/forward.rs
// for why adjacent). cos θ and sin θ come from a table the host computes in f64 exactly like the
// CPU twin, so the only difference from the CPU is a possible fused multiply-add.
//
// Bindings (group 0):
//   @binding(0) step  : uniform Step                    — pos0, n
//   @binding(1) q     : storage, read_write array<f32>  — [n, N_HEADS·HEAD_DIM]
//   @binding(2) k     : storage, read_write array<f32>  — [n, N_KV_HEADS·HEAD_DIM]
//   @binding(3) table : storage, read array<f32>        — [capacity, ROPE_DIM/2, 2] (cos θ, sin θ)
// Override constants: N_HEADS, N_KV_HEADS, HEAD_DIM, ROPE_DIM (u32, ROPE_DIM even ≤ HEAD_DIM).
// Dispatch: one thread per (row, head of q then k, pair): n·(N_HEADS+N_KV_HEADS)·ROPE_DIM/2
//   threads in workgroups of 64, the grid split over y when x would exceed its limit.
// CPU twin: `quantlab::model::rope`.
// Preamble (shaders/forward_step.wgsl, prepended by the host): the Step uniform at binding 0 and WG.

override N_HEADS: u32;
override N_KV_HEADS: u32;
override HEAD_DIM: u32;
override ROPE_DIM: u32;

@group(0) @binding(1) var<storage, read_write> q: array<f32>;
@group(0) @binding(2) var<storage, read_write> k: array<f32>;
@group(0) @binding(3) var<storage, read> table: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
    let half = ROPE_DIM / 2u;
    let heads = N_HEADS + N_KV_HEADS;
    if (i >= step.n * heads * half) {
        return;
    }
    let pair = i % half;
    let head = (i / half) % heads;
    let row = i / (half * heads);
    let t = ((step.pos0 + row) * half + pair) * 2u;
    let c = table[t];
    let s = table[t + 1u];
    if (head < N_HEADS) {
        let at = row * N_HEADS * HEAD_DIM + head * HEAD_DIM + 2u * pair;
        let a = q[at];
        let b = q[at + 1u];
        q[at] = a * c - b * s;
        q[at + 1u] = a * s + b * c;
    } else {
        let at = row * N_KV_HEADS * HEAD_DIM + (head - N_HEADS) * HEAD_DIM + 2u * pair;
        let a = k[at];
        let b = k[at + 1u];
        k[at] = a * c - b * s;
        k[at + 1u] = a * s + b * c;
    }
}
