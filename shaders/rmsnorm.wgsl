// rmsnorm.wgsl — out[r, :] = x[r, :] / sqrt(mean(x[r, :]²) + EPS) · weight, for rows r < step.n.
// One workgroup per row; the sum of squares is reduced in workgroup memory (f32; the CPU twin
// `model::rmsnorm` sums in f64, so results agree to a few f32 ulps).
//
// Bindings (group 0):
//   @binding(0) step   : uniform Step               — n = rows to normalise (other fields unused)
//   @binding(1) x      : storage, read  array<f32>  — [n, DIM] row-major
//   @binding(2) weight : storage, read  array<f32>  — [DIM]
//   @binding(3) out    : storage, read_write array<f32> — [n, DIM] row-major (may not alias x)
// Override constants:
//   DIM (u32) — row width;  EPS (f32) — the model's rms epsilon.
// Dispatch: (n, 1, 1) workgroups of 64 threads.
// CPU twin: `quantlab::model::rmsnorm`.
// Preamble (shaders/forward_step.wgsl, prepended by the host): the Step uniform at binding 0 and WG.

override DIM: u32;
override EPS: f32;

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = wid.x;
    if (row >= step.n) {
        return;
    }
    let base = row * DIM;
    var ss = 0.0;
    for (var i = lid.x; i < DIM; i += WG) {
        let v = x[base + i];
        ss += v * v;
    }
    partial[lid.x] = ss;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        if (lid.x < stride) {
            partial[lid.x] += partial[lid.x + stride];
        }
        workgroupBarrier();
    }
    let inv = 1.0 / sqrt(partial[0] / f32(DIM) + EPS);
    for (var i = lid.x; i < DIM; i += WG) {
        out[base + i] = x[base + i] * inv * weight[i];
    }
}
