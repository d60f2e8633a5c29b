//! The catalogue of WGSL kernels. Each variant names one file in `shaders/`; pipelines are
//! specialised with WGSL `override` constants, never by editing shader text.
//!
//! The only composition is whole-file concatenation, fixed at compile time: each matmul variant
//! is its format file (`shaders/matmul_<format>.wgsl`: weight bindings and `decode8`) followed by
//! `shaders/matmul_common.wgsl` (the `gemv`, `gemm` and `gather_rows` entry points). WGSL lets
//! module-scope declarations appear in any order, so nothing is edited or templated. A second
//! module per matmul variant, [`Kernel::subgroup_source`], appends
//! `shaders/matmul_gemv_subgroup.wgsl` (the `gemv_subgroup` entry point): it is only created on
//! devices with the SUBGROUP feature, so the base module never mentions subgroups.

use super::{GpuContext, GpuError};

/// Every compute kernel quantlab ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// `shaders/elementwise.wgsl`: residual add (x += delta) or SwiGLU (gate = silu(gate) · up).
    Elementwise,
    /// `shaders/sample.wgsl`: greedy argmax or top-k/top-p sampling of one logits row.
    Sample,
    // --- Weight matmuls (gpu/matmul.rs; layouts in gpu/repack.rs; CPU twin Matrix::matvec/row).
    /// `matmul_f32.wgsl` + `matmul_common.wgsl`.
    MatmulF32,
    /// `matmul_f16.wgsl` + `matmul_common.wgsl` (also the generic dequantize path).
    MatmulF16,
    /// `matmul_q8_0.wgsl` + `matmul_common.wgsl`.
    MatmulQ8_0,
    /// `matmul_q4_0.wgsl` + `matmul_common.wgsl`.
    MatmulQ4_0,
    /// `matmul_q4_1.wgsl` + `matmul_common.wgsl`.
    MatmulQ4_1,
    /// `matmul_q4_k.wgsl` + `matmul_common.wgsl`.
    MatmulQ4K,
    /// `matmul_q6_k.wgsl` + `matmul_common.wgsl`.
    MatmulQ6K,
    /// `matmul_int.wgsl` + `matmul_common.wgsl` (INT4/INT8, overrides BITS, GROUP_SIZE, ASYM).
    MatmulInt,
    /// `matmul_codebook.wgsl` + `matmul_common.wgsl` (NF4/FP4, override BLOCK).
    MatmulCodebook,
}

/// A matmul format file followed by the shared entry points (see the module docs).
macro_rules! matmul_source {
    ($file:literal) => {
        concat!(include_str!(concat!("../../../shaders/", $file)), include_str!("../../../shaders/matmul_common.wgsl"))
    };
}

/// [`matmul_source!`] followed by the subgroup GEMV.
macro_rules! matmul_subgroup_source {
    ($file:literal) => {
        concat!(matmul_source!($file), include_str!("../../../shaders/matmul_gemv_subgroup.wgsl"))
    };
}

impl Kernel {
    /// The matmul module with the `gemv_subgroup` entry point added, for devices with the
    /// SUBGROUP feature only (naga refuses subgroup builtins without it); `None` for the
    /// kernels that have no subgroup variant.
    pub const fn subgroup_source(self) -> Option<&'static str> {
        Some(match self {
            Kernel::MatmulF32 => matmul_subgroup_source!("matmul_f32.wgsl"),
            Kernel::MatmulF16 => matmul_subgroup_source!("matmul_f16.wgsl"),
            Kernel::MatmulQ8_0 => matmul_subgroup_source!("matmul_q8_0.wgsl"),
            Kernel::MatmulQ4_0 => matmul_subgroup_source!("matmul_q4_0.wgsl"),
            Kernel::MatmulQ4_1 => matmul_subgroup_source!("matmul_q4_1.wgsl"),
            Kernel::MatmulQ4K => matmul_subgroup_source!("matmul_q4_k.wgsl"),
            Kernel::MatmulQ6K => matmul_subgroup_source!("matmul_q6_k.wgsl"),
            Kernel::MatmulInt => matmul_subgroup_source!("matmul_int.wgsl"),
            Kernel::MatmulCodebook => matmul_subgroup_source!("matmul_codebook.wgsl"),
            _ => return None,
        })
    }

    pub const fn source(self) -> &'static str {
        match self {
            Kernel::Axpy => include_str!("../../../shaders/axpy.wgsl"),
            Kernel::RmsNorm => include_str!("../../../shaders/rmsnorm.wgsl"),
            Kernel::Rope => include_str!("../../../shaders/rope.wgsl"),
            Kernel::KvWrite => include_str!("../../../shaders/kv_write.wgsl"),
            Kernel::Attention => include_str!("../../../shaders/attention.wgsl"),
            Kernel::Elementwise => include_str!("../../../shaders/elementwise.wgsl"),
            Kernel::Sample => include_str!("../../../shaders/sample.wgsl"),
            Kernel::MatmulF32 => matmul_source!("matmul_f32.wgsl"),
            Kernel::MatmulF16 => matmul_source!("matmul_f16.wgsl"),
            Kernel::MatmulQ8_0 => matmul_source!("matmul_q8_0.wgsl"),
            Kernel::MatmulQ4_0 => matmul_source!("matmul_q4_0.wgsl"),
            Kernel::MatmulQ4_1 => matmul_source!("matmul_q4_1.wgsl"),
            Kernel::MatmulQ4K => matmul_source!("matmul_q4_k.wgsl"),
            Kernel::MatmulQ6K => matmul_source!("matmul_q6_k.wgsl"),
            Kernel::MatmulInt => matmul_source!("matmul_int.wgsl"),
            Kernel::MatmulCodebook => matmul_source!("matmul_codebook.wgsl"),
        }
    }

    pub const fn file_name(self) -> &'static str {
        match self {
            Kernel::Axpy => "shaders/axpy.wgsl",
            Kernel::RmsNorm => "shaders/rmsnorm.wgsl",
            Kernel::Rope => "shaders/rope.wgsl",
            Kernel::KvWrite => "shaders/kv_write.wgsl",
            Kernel::Attention => "shaders/attention.wgsl",
            Kernel::Elementwise => "shaders/elementwise.wgsl",
            Kernel::Sample => "shaders/sample.wgsl",
            Kernel::MatmulF32 => "shaders/matmul_f32.wgsl",
            Kernel::MatmulF16 => "shaders/matmul_f16.wgsl",
            Kernel::MatmulQ8_0 => "shaders/matmul_q8_0.wgsl",
            Kernel::MatmulQ4_0 => "shaders/matmul_q4_0.wgsl",
            Kernel::MatmulQ4_1 => "shaders/matmul_q4_1.wgsl",
            Kernel::MatmulQ4K => "shaders/matmul_q4_k.wgsl",
            Kernel::MatmulQ6K => "shaders/matmul_q6_k.wgsl",
            Kernel::MatmulInt => "shaders/matmul_int.wgsl",
            Kernel::MatmulCodebook => "shaders/matmul_codebook.wgsl",
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
        self.pipeline_at(gpu, self.entry_point(), constants).await
    }

    /// [`Self::pipeline`] for a named entry point (the matmul files have `gemv`, `gemm` and
    /// `gather_rows`).
    pub async fn pipeline_at(
        self,
        gpu: &GpuContext,
        entry_point: &str,
        constants: &[(&str, f64)],
    ) -> Result<wgpu::ComputePipeline, GpuError> {
        self.compile(gpu, self.source(), entry_point, constants).await
    }

    /// The `gemv_subgroup` pipeline of a matmul kernel ([`Self::subgroup_source`]); a clear error
    /// on a device without the SUBGROUP feature or for a kernel without that variant, before any
    /// module is created.
    pub async fn subgroup_pipeline(
        self,
        gpu: &GpuContext,
        constants: &[(&str, f64)],
    ) -> Result<wgpu::ComputePipeline, GpuError> {
        let refuse = |why: &str| GpuError::Validation { what: self.file_name().to_string(), message: why.to_string() };
        let source = self.subgroup_source().ok_or_else(|| refuse("this kernel has no subgroup variant"))?;
        if !gpu.adapter.subgroups {
            return Err(refuse("the subgroup GEMV needs the adapter's SUBGROUP feature, which this device lacks"));
        }
        self.compile(gpu, source, "gemv_subgroup", constants).await
    }

    async fn compile(
        self,
        gpu: &GpuContext,
        source: &'static str,
        entry_point: &str,
        constants: &[(&str, f64)],
    ) -> Result<wgpu::ComputePipeline, GpuError> {
        gpu.scoped(self.file_name(), || {
            let module = gpu.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(self.file_name()),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
            gpu.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(self.file_name()),
                layout: None,
                module: &module,
                entry_point: Some(entry_point),
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
