//! `--device cpu|gpu|auto` for `quantlab generate` and `quantlab eval`: where the forward runs,
//! said out loud on stderr.
//!
//! - `cpu`: the CPU reference forward.
//! - `gpu`: the GPU forward ([`crate::gpu::forward::GpuModel`]); no adapter, or a model that
//!   does not fit, is an error.
//! - `auto` (default): the GPU when an adapter exists, the model fits and a short decode probe
//!   ([`crate::gpu::forward::probe`]) finds it faster than the CPU; otherwise the CPU, with the
//!   reason (e.g. "GPU adapter 'llvmpipe …' (Vulkan, software fallback, shader-f16) decodes
//!   0.3 tok/s vs CPU 20.1 tok/s → using the CPU"). The adapter's name is always printed.
//!
//! Built without the `gpu` feature, `auto` is the CPU and `gpu` an error.

use std::io::Write;

use super::CliError;
use crate::model::Model;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceArg {
    /// The CPU reference forward.
    Cpu,
    /// The GPU forward (error if there is no adapter or the model does not fit).
    Gpu,
    /// The GPU if an adapter exists and a short decode probe finds it faster than the CPU.
    Auto,
}

/// Decode steps the `auto` probe times on each backend (after one warm-up step).
pub const PROBE_STEPS: usize = 3;

#[cfg(feature = "gpu")]
pub use crate::gpu::{forward::GpuModel, GpuContext as Gpu};

/// Never constructed: builds without the `gpu` feature have no GPU.
#[cfg(not(feature = "gpu"))]
pub enum Gpu {}
#[cfg(not(feature = "gpu"))]
pub struct GpuModel<'g>(std::convert::Infallible, std::marker::PhantomData<&'g ()>);

fn msg(s: impl Into<String>) -> CliError {
    CliError::Message(s.into())
}

/// Acquires the GPU for `gpu`/`auto` (naming the adapter on `err`); `None` means the CPU.
pub fn acquire(device: DeviceArg, err: &mut dyn Write) -> Result<Option<Gpu>, CliError> {
    if device == DeviceArg::Cpu {
        let _ = writeln!(err, "device: cpu (--device cpu)");
        return Ok(None);
    }
    #[cfg(feature = "gpu")]
    match Gpu::acquire_blocking() {
        Ok(gpu) => {
            let a = &gpu.adapter;
            let _ = writeln!(
                err,
                "GPU adapter: '{}' ({}, {}{}, {})",
                a.name,
                a.backend,
                a.device_type,
                if a.is_fallback { ", software fallback" } else { "" },
                if a.shader_f16 { "shader-f16" } else { "no shader-f16: f32 path" }
            );
            Ok(Some(gpu))
        }
        Err(e) if device == DeviceArg::Gpu => Err(msg(format!("--device gpu: {e}"))),
        Err(e) => {
            let _ = writeln!(err, "device: cpu ({e})");
            Ok(None)
        }
    }
    #[cfg(not(feature = "gpu"))]
    match device {
        DeviceArg::Gpu => Err(msg("--device gpu: this quantlab was built without GPU support (feature 'gpu')")),
        _ => {
            let _ = writeln!(err, "device: cpu (built without GPU support)");
            Ok(None)
        }
    }
}

/// Uploads `model` with a KV cache of `capacity` positions; for `auto`, probes decode speed and
/// returns `None` (the CPU) when the CPU is faster or the model does not fit the GPU.
#[cfg_attr(not(feature = "gpu"), allow(unused_variables))]
pub fn load<'g>(
    device: DeviceArg,
    gpu: Option<&'g Gpu>,
    model: &Model,
    capacity: usize,
    threads: usize,
    probe: bool,
    err: &mut dyn Write,
) -> Result<Option<GpuModel<'g>>, CliError> {
    let Some(gpu) = gpu else { return Ok(None) };
    #[cfg(feature = "gpu")]
    {
        use crate::gpu::forward::{probe::probe_decode, KvFormat};
        let mut g = match GpuModel::new_blocking(gpu, model, capacity, KvFormat::F32) {
            Ok(g) => g,
            Err(e) if device == DeviceArg::Auto => {
                let _ = writeln!(err, "device: cpu (the model cannot run on the GPU: {e})");
                return Ok(None);
            }
            Err(e) => return Err(msg(format!("--device gpu: {e}"))),
        };
        let _ =
            writeln!(err, "GPU kernels: {} ({:.1} MB on the device)", g.kernel_summary(), g.gpu_bytes() as f64 / 1e6);
        if device == DeviceArg::Gpu || !probe {
            let _ = writeln!(err, "device: gpu ({})", if probe { "--device gpu" } else { "as for the base model" });
            return Ok(Some(g));
        }
        let result = probe_decode(model, threads, &mut g, PROBE_STEPS).map_err(|e| msg(format!("GPU probe: {e}")))?;
        let _ = writeln!(err, "device: {} — {}", if result.use_gpu { "gpu" } else { "cpu" }, result.reason);
        Ok(result.use_gpu.then_some(g))
    }
    #[cfg(not(feature = "gpu"))]
    match *gpu {}
}
