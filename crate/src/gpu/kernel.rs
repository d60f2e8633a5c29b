//! The catalogue of WGSL kernels. Each variant names one file in `shaders/`; pipelines are
//! specialised with WGSL `override` constants, never by editing shader text.

use super::{GpuContext, GpuError};

/// Every compute kernel quantlab ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// `shaders/axpy.wgsl`: y = a·x + y (device smoke test; CPU twin `axpy::axpy_cpu`).
    Axpy,
    // ---- the forward pass (gpu::forward; CPU twins in model::forward and gpu::forward::kernels) ----
    /// `shaders/rmsnorm.wgsl`: RMSNorm of n rows.
    RmsNorm,
    /// `shaders/rope.wgsl`: rotary embedding of queries and keys (adjacent pairs, host cos/sin table).
    Rope,
    /// `shaders/kv_write.wgsl`: store keys/values into the KV cache (f32, f16 or int8).
    KvWrite,
    /// `shaders/attention.wgsl`: causal GQA attention (decode and prefill) with softmax.
    Attention,
    /// `shaders/swiglu.wgsl`: gate = silu(gate) · up.
    SwiGlu,
    /// `shaders/residual_add.wgsl`: x += delta.
    ResidualAdd,
    /// `shaders/sample.wgsl`: greedy argmax or top-k/top-p sampling of one logits row.
    Sample,
    /// `shaders/scratch_linear_f32.wgsl`: temporary f32 matmul until GpuMatrix lands.
    ScratchLinearF32,
}

impl Kernel {
    pub const fn source(self) -> &'static str {
        match self {
            Kernel::Axpy => include_str!("../../../shaders/axpy.wgsl"),
            Kernel::RmsNorm => include_str!("../../../shaders/rmsnorm.wgsl"),
            Kernel::Rope => include_str!("../../../shaders/rope.wgsl"),
            Kernel::KvWrite => include_str!("../../../shaders/kv_write.wgsl"),
            Kernel::Attention => include_str!("../../../shaders/attention.wgsl"),
            Kernel::SwiGlu => include_str!("../../../shaders/swiglu.wgsl"),
            Kernel::ResidualAdd => include_str!("../../../shaders/residual_add.wgsl"),
            Kernel::Sample => include_str!("../../../shaders/sample.wgsl"),
            Kernel::ScratchLinearF32 => include_str!("../../../shaders/scratch_linear_f32.wgsl"),
        }
    }

    pub const fn file_name(self) -> &'static str {
        match self {
            Kernel::Axpy => "shaders/axpy.wgsl",
            Kernel::RmsNorm => "shaders/rmsnorm.wgsl",
            Kernel::Rope => "shaders/rope.wgsl",
            Kernel::KvWrite => "shaders/kv_write.wgsl",
            Kernel::Attention => "shaders/attention.wgsl",
            Kernel::SwiGlu => "shaders/swiglu.wgsl",
            Kernel::ResidualAdd => "shaders/residual_add.wgsl",
            Kernel::Sample => "shaders/sample.wgsl",
            Kernel::ScratchLinearF32 => "shaders/scratch_linear_f32.wgsl",
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
