//! The catalogue of WGSL kernels. Each variant names one file in `shaders/`; pipelines are
//! specialised with WGSL `override` constants, never by editing shader text.
//!
//! The only composition is whole-file concatenation, fixed at compile time. A matmul kernel has
//! up to three modules ([`MatmulModule`]), all built from its format file
//! (`shaders/matmul_<format>.wgsl`: weight bindings and `decode8`) and
//! `shaders/matmul_common.wgsl` (the `gemv`, `gemm` and `gather_rows` entry points):
//! - [`MatmulModule::Base`]: format file + common, on every device;
//! - [`MatmulModule::Subgroup`]: + `shaders/matmul_gemv_subgroup.wgsl` (`gemv_subgroup`), created
//!   only on devices with the SUBGROUP feature;
//! - [`MatmulModule::F16Activations`]: `shaders/matmul_f16_activations.wgsl` (`enable f16;`,
//!   `gemv_f16`, `gemm_f16`) + format file + common, created only on devices with SHADER_F16.
//!
//! WGSL lets module-scope declarations appear in any order, so nothing is edited or templated,
//! and the base module never mentions subgroups or f16 arithmetic.

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

/// The three modules of a matmul kernel (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatmulModule {
    /// `gemv`, `gemm`, `gather_rows`: every device.
    Base,
    /// `gemv_subgroup`: devices with the SUBGROUP feature.
    Subgroup,
    /// `gemv_f16`, `gemm_f16`: devices with the SHADER_F16 feature.
    F16Activations,
}

/// The WGSL of one matmul kernel's modules and the name of its format file.
struct MatmulSources {
    file: &'static str,
    base: &'static str,
    subgroup: &'static str,
    f16_activations: &'static str,
}

/// One list of the matmul kernels and their format files; every module is built from it.
macro_rules! matmul_kernels {
    ($($kernel:ident => $file:literal),* $(,)?) => {
        impl Kernel {
            /// `None` for the kernels that are not weight matmuls.
            const fn matmul_sources(self) -> Option<MatmulSources> {
                macro_rules! base {
                    ($f:literal) => {
                        concat!(
                            include_str!(concat!("../../../shaders/", $f)),
                            include_str!("../../../shaders/matmul_common.wgsl")
                        )
                    };
                }
                Some(match self {
                    $(Kernel::$kernel => MatmulSources {
                        file: concat!("shaders/", $file),
                        base: base!($file),
                        subgroup: concat!(base!($file), include_str!("../../../shaders/matmul_gemv_subgroup.wgsl")),
                        f16_activations: concat!(
                            include_str!("../../../shaders/matmul_f16_activations.wgsl"),
                            base!($file)
                        ),
                    },)*
                    _ => return None,
                })
            }
        }
    };
}

matmul_kernels! {
    MatmulF32 => "matmul_f32.wgsl",
    MatmulF16 => "matmul_f16.wgsl",
    MatmulQ8_0 => "matmul_q8_0.wgsl",
    MatmulQ4_0 => "matmul_q4_0.wgsl",
    MatmulQ4_1 => "matmul_q4_1.wgsl",
    MatmulQ4K => "matmul_q4_k.wgsl",
    MatmulQ6K => "matmul_q6_k.wgsl",
    MatmulInt => "matmul_int.wgsl",
    MatmulCodebook => "matmul_codebook.wgsl",
}

impl Kernel {
    /// The WGSL of the kernel (for a matmul, its [`MatmulModule::Base`] module).
    pub const fn source(self) -> &'static str {
        if let Some(m) = self.matmul_sources() {
            return m.base;
        }
        match self {
            Kernel::Axpy => include_str!("../../../shaders/axpy.wgsl"),
            Kernel::RmsNorm => include_str!("../../../shaders/rmsnorm.wgsl"),
            Kernel::Rope => include_str!("../../../shaders/rope.wgsl"),
            Kernel::KvWrite => include_str!("../../../shaders/kv_write.wgsl"),
            Kernel::Attention => include_str!("../../../shaders/attention.wgsl"),
            Kernel::Elementwise => include_str!("../../../shaders/elementwise.wgsl"),
            Kernel::Sample => include_str!("../../../shaders/sample.wgsl"),
            _ => panic!("matmul kernels returned above"),
        }
    }

    /// The WGSL of one module of a matmul kernel; `None` for the other kernels.
    pub const fn matmul_source(self, module: MatmulModule) -> Option<&'static str> {
        match self.matmul_sources() {
            None => None,
            Some(m) => Some(match module {
                MatmulModule::Base => m.base,
                MatmulModule::Subgroup => m.subgroup,
                MatmulModule::F16Activations => m.f16_activations,
            }),
        }
    }

    pub const fn file_name(self) -> &'static str {
        if let Some(m) = self.matmul_sources() {
            return m.file;
        }
        match self {
            Kernel::Axpy => "shaders/axpy.wgsl",
            Kernel::RmsNorm => "shaders/rmsnorm.wgsl",
            Kernel::Rope => "shaders/rope.wgsl",
            Kernel::KvWrite => "shaders/kv_write.wgsl",
            Kernel::Attention => "shaders/attention.wgsl",
            Kernel::Elementwise => "shaders/elementwise.wgsl",
            Kernel::Sample => "shaders/sample.wgsl",
            _ => panic!("matmul kernels returned above"),
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

    /// A pipeline from one module of a matmul kernel; a clear error, before any module is
    /// created, for a module the device can't compile (subgroups or f16 missing) or a kernel
    /// that is not a matmul.
    pub async fn matmul_pipeline(
        self,
        gpu: &GpuContext,
        module: MatmulModule,
        entry_point: &str,
        constants: &[(&str, f64)],
    ) -> Result<wgpu::ComputePipeline, GpuError> {
        let refuse = |why: String| GpuError::Validation { what: self.file_name().to_string(), message: why };
        let source =
            self.matmul_source(module).ok_or_else(|| refuse("this kernel is not a weight matmul".to_string()))?;
        let a = &gpu.adapter;
        match module {
            MatmulModule::Subgroup if !a.subgroups => {
                return Err(refuse(format!(
                    "the subgroup GEMV needs the SUBGROUP feature, which adapter '{}' lacks",
                    a.name
                )))
            }
            MatmulModule::F16Activations if !a.shader_f16 => {
                return Err(refuse(format!(
                    "f16 activations need the shader-f16 feature, which adapter '{}' lacks",
                    a.name
                )))
            }
            _ => {}
        }
        self.compile(gpu, source, entry_point, constants).await
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
