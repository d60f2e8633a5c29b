//! The catalogue of WGSL kernels. Each variant names one file in `shaders/`; pipelines are
//! specialised with WGSL `override` constants, never by editing shader text.

use super::{GpuContext, GpuError};

/// Every compute kernel quantlab ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// `shaders/axpy.wgsl`: y = a·x + y (device smoke test; CPU twin `axpy::axpy_cpu`).
    Axpy,
}

impl Kernel {
    pub const fn source(self) -> &'static str {
        match self {
            Kernel::Axpy => include_str!("../../../shaders/axpy.wgsl"),
        }
    }

    pub const fn file_name(self) -> &'static str {
        match self {
            Kernel::Axpy => "shaders/axpy.wgsl",
        }
    }

    pub const fn entry_point(self) -> &'static str {
        "main"
    }

    /// Compiles the kernel with the given override constants, reporting WGSL or validation
    /// errors as [`GpuError::Validation`] naming the shader file.
    pub async fn pipeline(
        self,
        gpu: &GpuContext,
        constants: &[(&str, f64)],
    ) -> Result<wgpu::ComputePipeline, GpuError> {
        gpu.scoped(self.file_name(), || {
            let module = gpu.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(self.file_name()),
                source: wgpu::ShaderSource::Wgsl(self.source().into()),
            });
            gpu.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(self.file_name()),
                layout: None,
                module: &module,
                entry_point: Some(self.entry_point()),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    zero_initialize_workgroup_memory: true,
                },
                cache: None,
            })
        })
        .await
    }
}
