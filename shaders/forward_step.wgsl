// forward_step.wgsl — the preamble of every forward kernel (rmsnorm, rope, kv_write, attention,
// elementwise, sample): `Kernel::source()` puts it in front of each, so the uniform they share is
// declared once. Its Rust twin is `gpu::forward::kernels::Step` (32 bytes).
//
// Bindings (group 0):
//   @binding(0) step : uniform Step — pos0 (position of the first row), n (rows in the batch);
//                      sampling only: top_k, temperature, top_p, u (the host's uniform draw)
// WG: threads per workgroup of the element-wise kernels (`kernels::WG` on the host; the sampler
//   has its own).

struct Step { pos0: u32, n: u32, top_k: u32, _pad: u32, temperature: f32, top_p: f32, u: f32, _pad2: f32 }

@group(0) @binding(0) var<uniform> step: Step;

const WG: u32 = 64u;
