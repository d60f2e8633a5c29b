// elementwise.wgsl — a[i] = f(a[i], b[i]) for the first step.n · WIDTH values, f chosen by OP:
//   OP 0, residual add (after attention and after the FFN): a = a + b;
//   OP 1, SwiGLU (the FFN's gate):                           a = a / (1 + exp(−a)) · b
//         (silu(gate) · up, written like the CPU twin).
//
// Bindings (group 0):
//   @binding(0) step : uniform Step                   — n = rows
//   @binding(1) a    : storage, read_write array<f32> — [n, WIDTH], updated in place
//   @binding(2) b    : storage, read array<f32>       — [n, WIDTH]
// Override constants: WIDTH (u32) — row width (dim for OP 0, hidden_dim for OP 1); OP (u32).
// Dispatch: n·WIDTH threads in workgroups of 64, the grid split over y beyond the x limit.
// CPU twins: the residual and SwiGLU loops of `model::forward`
//   (`gpu::forward::kernels::{residual_add_cpu, swiglu_cpu}`).
// Preamble (shaders/forward_step.wgsl, prepended by the host): the Step uniform at binding 0 and WG.

override WIDTH: u32;
override OP: u32;

@group(0) @binding(1) var<storage, read_write> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
    if (i >= step.n * WIDTH) {
        return;
    }
    let x = a[i];
    if (OP == 0u) {
        a[i] = x + b[i];
    } else {
        a[i] = x / (1.0 + exp(-x)) * b[i];
    }
}
