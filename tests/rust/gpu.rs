//! GPU kernels against their CPU twins, on whatever adapter wgpu finds (lavapipe in CI).
//!
//! With `QUANTLAB_REQUIRE_GPU=1` (set by `npm test`) a missing adapter fails the test; otherwise
//! the tests print why they were skipped, so `cargo test` still works on a machine without Vulkan.

use quantlab::gpu::axpy::{axpy_cpu, axpy_gpu};
use quantlab::gpu::{GpuContext, GpuError};
use std::sync::{Arc, OnceLock};

/// The device is acquired once for the whole test binary, as the application does (an `Arc`:
/// a `GpuModel` keeps one).
pub(crate) fn gpu() -> Option<&'static Arc<GpuContext>> {
    static GPU: OnceLock<Result<Arc<GpuContext>, GpuError>> = OnceLock::new();
    match GPU.get_or_init(|| GpuContext::acquire_blocking().map(Arc::new)) {
        Ok(gpu) => Some(gpu),
        Err(e) if std::env::var("QUANTLAB_REQUIRE_GPU").as_deref() == Ok("1") => {
            panic!("QUANTLAB_REQUIRE_GPU=1 but no GPU: {e} (install mesa-vulkan-drivers libvulkan1)")
        }
        Err(e) => {
            eprintln!("skipping GPU test: {e}");
            None
        }
    }
}

/// Deterministic values with varied magnitudes and signs (no RNG dependency).
pub(crate) fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state as f32 / u32::MAX as f32 - 0.5) * 8.0
        })
        .collect()
}

#[test]
fn adapter_reports_its_capabilities() {
    let Some(gpu) = gpu() else { return };
    let a = &gpu.adapter;
    eprintln!("adapter: {a:?}");
    assert!(!a.name.is_empty());
    assert!(a.max_storage_buffer_binding_size >= 128 << 20, "WebGPU guarantees at least 128 MiB");
    assert!(a.max_buffer_size >= a.max_storage_buffer_binding_size.min(256 << 20));
}

#[test]
fn axpy_matches_cpu_twin_on_awkward_sizes() {
    let Some(gpu) = gpu() else { return };
    // 1 element, around the workgroup size, and a grid too wide for one dispatch dimension.
    for n in [1usize, 63, 64, 65, 1000, 65_535 * 64 + 17] {
        let x = values(n, 1);
        let y = values(n, 2);
        let a = -1.75f32;
        let got = pollster::block_on(axpy_gpu(gpu, a, &x, &y)).expect("axpy on GPU");
        let mut want = y.clone();
        axpy_cpu(a, &x, &mut want);
        assert_eq!(got.len(), n);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            // One multiply and one add, both correctly rounded in WGSL; only a fused
            // multiply-add on the GPU could differ, by at most one rounding.
            let tol = w.abs() * f32::EPSILON * 2.0 + 1e-6;
            assert!((g - w).abs() <= tol, "n={n} i={i}: gpu {g} vs cpu {w}");
        }
    }
}

#[test]
fn oversized_buffer_is_refused_with_sizes_in_the_message() {
    let Some(gpu) = gpu() else { return };
    let too_big = gpu.adapter.max_storage_buffer_binding_size.min(gpu.adapter.max_buffer_size) + 4;
    let err = gpu.check_binding_size("a test tensor", too_big).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("a test tensor") && msg.contains(&too_big.to_string()), "{msg}");
}
