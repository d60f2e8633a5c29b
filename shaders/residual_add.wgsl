// residual_add.wgsl — x[i] += delta[i] for the first step.n · WIDTH values (the residual
// connections after attention and after the FFN).
//
// Bindings (group 0):
//   @binding(0) step  : uniform Step                   — n = rows
//   @binding(1) x     : storage, read_write array<f32> — [n, WIDTH] residual stream, in place
//   @binding(2) delta : storage, read array<f32>       — [n, WIDTH]
// Override constants: WIDTH (u32) — the model width.
// Dispatch: n·WIDTH threads in workgroups of 64, the grid split over y beyond the x limit.
// CPU twin: the residual loops of `model::forward` (`gpu::forward::kernels::residual_add_cpu`).

override WIDTH: u32;
const WG: u32 = 64u;

struct Step { pos0: u32, n: u32, top_k: u32, _pad: u32, temperature: f32, top_p: f32, u: f32, _pad2: f32 }

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> delta: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
    if (i >= step.n * WIDTH) {
        return;
    }
    x[i] = x[i] + delta[i];
}
