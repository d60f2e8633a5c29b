// scratch_linear_f32.wgsl — TEMPORARY stand-in for gpu-mm's GpuMatrix while it lands:
// y[r, o] = Σ_c x[r, c] · w[o, c] with f32 weights. One thread per output value.
//
// Bindings (group 0):
//   @binding(0) dims : uniform { n, rows, cols, _pad: u32 }
//   @binding(1) w    : storage, read array<f32>       — [rows, cols]
//   @binding(2) x    : storage, read array<f32>       — [n, cols]
//   @binding(3) y    : storage, read_write array<f32> — [n, rows]
// Dispatch: (ceil(rows / 64), n, 1).

struct Dims { n: u32, rows: u32, cols: u32, _pad: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let o = gid.x;
    let r = gid.y;
    if (o >= dims.rows || r >= dims.n) {
        return;
    }
    var acc = 0.0;
    for (var c = 0u; c < dims.cols; c++) {
        acc += x[r * dims.cols + c] * w[o * dims.cols + c];
    }
    y[r * dims.rows + o] = acc;
}
