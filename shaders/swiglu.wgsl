// swiglu.wgsl — gate[i] = silu(gate[i]) · up[i] = gate[i] / (1 + exp(−gate[i])) · up[i], for the
// first step.n · WIDTH values (the FFN's SwiGLU; silu written like the CPU twin).
//
// Bindings (group 0):
//   @binding(0) step : uniform Step                   — n = rows
//   @binding(1) gate : storage, read_write array<f32> — [n, WIDTH], updated in place
//   @binding(2) up   : storage, read array<f32>       — [n, WIDTH]
// Override constants: WIDTH (u32) — the FFN hidden width.
// Dispatch: n·WIDTH threads in workgroups of 64, the grid split over y beyond the x limit.
// CPU twin: the SwiGLU loop of `model::forward` (`gpu::forward::kernels::swiglu_cpu`).

override WIDTH: u32;
const WG: u32 = 64u;

struct Step { pos0: u32, n: u32, top_k: u32, _pad: u32, temperature: f32, top_p: f32, u: f32, _pad2: f32 }

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read_write> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
    if (i >= step.n * WIDTH) {
        return;
    }
    let g = gate[i];
    gate[i] = g / (1.0 + exp(-g)) * up[i];
}
