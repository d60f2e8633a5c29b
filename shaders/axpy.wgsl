// axpy.wgsl — y[i] = a * x[i] + y[i]. The smallest real kernel: it proves a device compiles
// WGSL with override constants, binds storage buffers, dispatches and reads back.
//
// Bindings (group 0):
//   @binding(0) params : uniform  { a: f32, n: u32 }        — scale and element count
//   @binding(1) x      : storage, read        array<f32>    — n values
//   @binding(2) y      : storage, read_write  array<f32>    — n values, updated in place
// Layout: plain f32 arrays, element i at index i.
// Override constants:
//   WORKGROUP_SIZE (u32, default 64) — threads per workgroup; dispatch ceil(n / WORKGROUP_SIZE)
//   workgroups along x (the host splits larger grids over y, see gpu/axpy.rs).
// CPU twin: `quantlab::gpu::axpy::axpy_cpu`.

override WORKGROUP_SIZE: u32 = 64u;

struct Params {
    a: f32,
    n: u32,
    // Row pitch of the dispatch grid in elements: group_id.y * pitch + global x.
    pitch: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.y * params.pitch + gid.x;
    if (i < params.n) {
        y[i] = params.a * x[i] + y[i];
    }
}
