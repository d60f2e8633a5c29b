//! The catalogue of WGSL kernels. Each variant names one file in `shaders/`; pipelines are
//! specialised with WGSL `override` constants ([`overrides`]), never by editing shader text, and
//! compiled once per device (the [`GpuContext`]'s cache).
//!
//! The only composition is whole-file concatenation, fixed at compile time (WGSL lets
//! module-scope declarations appear in any order, so nothing is edited or templated):
//! - the forward kernels start with `shaders/forward_step.wgsl` (the `Step` uniform, `WG`);
//!   attention and kv_write also take `shaders/kv_cache.wgsl` (the cache layout's overrides and
//!   offsets);
//! - a matmul kernel has up to three modules ([`MatmulModule`]), all built from its format file
//!   (`shaders/matmul_<format>.wgsl`: weight bindings, `decode8`, the row-sharing dots), the
//!   shared dots it takes (`matmul_dot_decoded.wgsl`, `matmul_dot32.wgsl`),
//!   `shaders/matmul_common.wgsl` (`gemv`, `gemv_rows`, `gather_rows`) and
//!   `shaders/matmul_gemm.wgsl` (`gemm`, its tiles of the module's `GemmTile` type):
//!   - [`MatmulModule::Base`]: those + `matmul_activations_f32.wgsl` (f32 tiles and GEMV dots), on every device;
//!   - [`MatmulModule::Subgroup`]: the base module + `shaders/matmul_gemv_subgroup.wgsl`
//!     (`gemv_subgroup`), created only on devices with the SUBGROUP feature;
//!   - [`MatmulModule::F16Activations`]: `shaders/matmul_f16_activations.wgsl` (`enable f16;`,
//!     f16 tiles and GEMV dots, so its `gemv` is the f16 GEMV) + those, created only on devices with SHADER_F16.
//!
//! The base module never mentions subgroups or f16 arithmetic.

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
    /// `matmul_bf16.wgsl` + `matmul_common.wgsl`.
    MatmulBf16,
    /// `matmul_q8_0.wgsl` + `matmul_common.wgsl`.
    MatmulQ8_0,
    /// `matmul_q4_0.wgsl` + `matmul_common.wgsl`.
    MatmulQ4_0,
    /// `matmul_q4_1.wgsl` + `matmul_common.wgsl`.
    MatmulQ4_1,
    /// `matmul_q5_0.wgsl` + `matmul_q5_codes.wgsl` + `matmul_common.wgsl`.
    MatmulQ5_0,
    /// `matmul_q5_1.wgsl` + `matmul_q5_codes.wgsl` + `matmul_common.wgsl`.
    MatmulQ5_1,
    /// `matmul_iq4_nl.wgsl` + `matmul_table16.wgsl` + `matmul_common.wgsl`.
    MatmulIq4Nl,
    /// `matmul_iq4_xs.wgsl` + `matmul_iq4_nl.wgsl` + `matmul_table16.wgsl` + `matmul_common.wgsl`.
    MatmulIq4Xs,
    /// `matmul_mxfp4.wgsl` + `matmul_iq4_nl.wgsl` + `matmul_table16.wgsl` + `matmul_common.wgsl`.
    MatmulMxfp4,
    /// `matmul_q4_k.wgsl` + `matmul_k_scales.wgsl` + `matmul_common.wgsl`.
    MatmulQ4K,
    /// `matmul_q5_k.wgsl` + `matmul_k_scales.wgsl` + `matmul_q5_codes.wgsl` + `matmul_common.wgsl`.
    MatmulQ5K,
    /// `matmul_q6_k.wgsl` + `matmul_common.wgsl`.
    MatmulQ6K,
    /// `matmul_q3_k.wgsl` + `matmul_common.wgsl`.
    MatmulQ3K,
    /// `matmul_q2_k.wgsl` + `matmul_common.wgsl`.
    MatmulQ2K,
    /// `matmul_int.wgsl` + `matmul_common.wgsl` (INT4/INT8, overrides BITS, GROUP_SIZE, ASYM).
    MatmulInt,
    /// `matmul_int_packed.wgsl` + `matmul_common.wgsl` (INT2/3/5/6/7, codes across word boundaries;
    /// overrides BITS, GROUP_SIZE, ASYM).
    MatmulIntPacked,
    /// `matmul_codebook.wgsl` + `matmul_table16.wgsl` + `matmul_common.wgsl` (NF4/FP4, override BLOCK).
    MatmulCodebook,
    /// `matmul_fp8.wgsl` + `matmul_common.wgsl` (FP8 E4M3/E5M2, override MANT_BITS).
    MatmulFp8,
    /// `int8_dot4_packed.wgsl` + `matmul_int8_dot4.wgsl`: W8A8 by dot4I8Packed (gpu/int8_dot4.rs).
    MatmulInt8Dot4Packed,
    /// `int8_dot4_unpacked.wgsl` + `matmul_int8_dot4.wgsl`: the same i32 sums without the extension.
    MatmulInt8Dot4Unpacked,
}

/// The three modules of a matmul kernel (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatmulModule {
    /// `gemv`, `gemv_rows`, `gemm` (f32 tiles), `gather_rows`: every device. Also the one module
    /// of the kernels that are not matmuls.
    Base,
    /// `gemv_subgroup`: devices with the SUBGROUP feature.
    Subgroup,
    /// `gemv` and `gemm` with f16 arithmetic: devices with the SHADER_F16 feature.
    F16Activations,
}

/// The WGSL entry points (function names) the host asks for.
pub mod entry {
    /// The one entry point of the kernels that are not matmuls.
    pub const MAIN: &str = "main";
    /// Matmul modules (shaders/matmul_common.wgsl unless noted).
    pub const GEMV: &str = "gemv";
    pub const GEMV_ROWS: &str = "gemv_rows";
    /// shaders/matmul_gemv_subgroup.wgsl.
    pub const GEMV_SUBGROUP: &str = "gemv_subgroup";
    /// shaders/matmul_gemm.wgsl: f32 tiles in the base module, f16 in the f16-activation one.
    pub const GEMM: &str = "gemm";
    pub const GATHER_ROWS: &str = "gather_rows";
    /// shaders/matmul_int8_dot4.wgsl.
    pub const QUANTIZE_TOKENS: &str = "quantize_tokens";
}

/// The WGSL `override` constants the host sets (each shader's opening comment documents its own).
pub mod overrides {
    /// rmsnorm.wgsl
    pub const DIM: &str = "DIM";
    pub const EPS: &str = "EPS";
    /// rope.wgsl, attention.wgsl, kv_cache.wgsl (attention and kv_write)
    pub const N_HEADS: &str = "N_HEADS";
    pub const N_KV_HEADS: &str = "N_KV_HEADS";
    pub const HEAD_DIM: &str = "HEAD_DIM";
    pub const ROPE_DIM: &str = "ROPE_DIM";
    pub const CAPACITY: &str = "CAPACITY";
    pub const KV_FORMAT: &str = "KV_FORMAT";
    /// elementwise.wgsl
    pub const WIDTH: &str = "WIDTH";
    pub const OP: &str = "OP";
    /// sample.wgsl
    pub const VOCAB: &str = "VOCAB";
    /// axpy.wgsl
    pub const WORKGROUP_SIZE: &str = "WORKGROUP_SIZE";
    /// The GEMVs (matmul_common.wgsl, matmul_gemv_subgroup.wgsl)
    pub const WG_SIZE: &str = "WG_SIZE";
    pub const ROW_THREADS: &str = "ROW_THREADS";
    pub const ROWS_PER_THREAD: &str = "ROWS_PER_THREAD";
    /// matmul_int8_dot4.wgsl's gemv
    pub const GEMV_ROWS: &str = "GEMV_ROWS";
    pub const ROWS_RUN: &str = "ROWS_RUN";
    pub const SG_ROWS: &str = "SG_ROWS";
    pub const GROUP_ROWS: &str = "GROUP_ROWS";
    pub const SG_CHUNKS: &str = "SG_CHUNKS";
    /// Format files: matmul_int.wgsl, matmul_int_packed.wgsl, matmul_codebook.wgsl
    pub const BITS: &str = "BITS";
    pub const GROUP_SIZE: &str = "GROUP_SIZE";
    pub const ASYM: &str = "ASYM";
    pub const BLOCK: &str = "BLOCK";
    /// matmul_fp8.wgsl
    pub const MANT_BITS: &str = "MANT_BITS";
}

/// What a pipeline is compiled from: the key of [`GpuContext`]'s pipeline cache (override values
/// by their bits).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PipelineKey {
    kernel: Kernel,
    module: MatmulModule,
    entry: &'static str,
    constants: Vec<(&'static str, u64)>,
}

/// The WGSL of one matmul kernel's modules and the name of its format file.
struct MatmulSources {
    file: &'static str,
    base: &'static str,
    subgroup: &'static str,
    f16_activations: &'static str,
}

/// A shader file's text, by its name in `shaders/`.
macro_rules! shader {
    ($f:literal) => {
        include_str!(concat!("../../../shaders/", $f))
    };
}

/// The preamble of the forward kernels: the `Step` uniform at binding 0 and the workgroup size `WG`.
macro_rules! forward_source {
    ($($f:literal),+) => {
        concat!(shader!("forward_step.wgsl"), $(shader!($f)),+)
    };
}

/// One module of a matmul kernel: `before`, the format file and the shared pieces it takes,
/// the entry points (matmul_common.wgsl) and the GEMM tile loop (matmul_gemm.wgsl), `after`.
macro_rules! matmul_module {
    ([$($before:literal),*] $file:literal [$($extra:literal),*] [$($after:literal),*]) => {
        concat!(
            $(shader!($before),)*
            shader!($file),
            $(shader!($extra),)*
            shader!("matmul_common.wgsl"),
            shader!("matmul_gemm.wgsl")
            $(, shader!($after))*
        )
    };
}

/// One list of the matmul kernels, their format files and the shared pieces each takes
/// (`matmul_dot_decoded.wgsl`: `dot8_row`/`dot16_row` through `decode8`; `matmul_dot32.wgsl`:
/// `dot32_row` as two `dot16_row`; `matmul_q5_codes.wgsl`: the 5-bit codes of Q5_0/Q5_1/Q5_K;
/// `matmul_table16.wgsl`: the 16-value table of NF4/FP4, IQ4_NL, IQ4_XS, MXFP4; `matmul_iq4_nl.wgsl`:
/// a block scale times a table value, also for IQ4_XS and MXFP4; `matmul_f16_scales.wgsl`:
/// the f16 block scales of Q8_0, Q4_0, Q5_0, IQ4_NL; `matmul_k_scales.wgsl`: the super-block
/// scales and minimums of Q4_K/Q5_K); every module is built from it. The module's activation file
/// names the GEMM tiles' type and the GEMV's chunk dot: `matmul_activations_f32.wgsl` in the base
/// module, f16 in `matmul_f16_activations.wgsl`.
macro_rules! matmul_kernels {
    ($($kernel:ident => $file:literal $(+ $extra:literal)*),* $(,)?) => {
        impl Kernel {
            /// `None` for the kernels that are not weight matmuls.
            const fn matmul_sources(self) -> Option<MatmulSources> {
                Some(match self {
                    $(Kernel::$kernel => MatmulSources {
                        file: concat!("shaders/", $file),
                        base: matmul_module!([] $file [$($extra),*] ["matmul_activations_f32.wgsl"]),
                        subgroup: matmul_module!(
                            [] $file [$($extra),*] ["matmul_activations_f32.wgsl", "matmul_gemv_subgroup.wgsl"]
                        ),
                        f16_activations: matmul_module!(["matmul_f16_activations.wgsl"] $file [$($extra),*] []),
                    },)*
                    _ => return None,
                })
            }
        }
    };
}

matmul_kernels! {
    MatmulF32 => "matmul_f32.wgsl" + "matmul_dot_decoded.wgsl" + "matmul_dot32.wgsl",
    MatmulF16 => "matmul_f16.wgsl" + "matmul_dot_decoded.wgsl" + "matmul_dot32.wgsl",
    MatmulBf16 => "matmul_bf16.wgsl" + "matmul_dot_decoded.wgsl" + "matmul_dot32.wgsl",
    MatmulQ8_0 => "matmul_q8_0.wgsl" + "matmul_f16_scales.wgsl" + "matmul_dot32.wgsl",
    MatmulQ4_0 => "matmul_q4_0.wgsl" + "matmul_f16_scales.wgsl" + "matmul_dot32.wgsl",
    MatmulQ4_1 => "matmul_q4_1.wgsl" + "matmul_dot32.wgsl",
    MatmulQ5_0 => "matmul_q5_0.wgsl" + "matmul_f16_scales.wgsl" + "matmul_q5_codes.wgsl" + "matmul_dot32.wgsl",
    MatmulQ5_1 => "matmul_q5_1.wgsl" + "matmul_q5_codes.wgsl" + "matmul_dot32.wgsl",
    MatmulIq4Nl => "matmul_iq4_nl.wgsl" + "matmul_f16_scales.wgsl" + "matmul_table16.wgsl" + "matmul_dot32.wgsl",
    MatmulIq4Xs => "matmul_iq4_xs.wgsl" + "matmul_iq4_nl.wgsl" + "matmul_table16.wgsl" + "matmul_dot32.wgsl",
    MatmulMxfp4 => "matmul_mxfp4.wgsl" + "matmul_iq4_nl.wgsl" + "matmul_table16.wgsl" + "matmul_dot32.wgsl",
    MatmulQ4K => "matmul_q4_k.wgsl" + "matmul_k_scales.wgsl" + "matmul_dot32.wgsl",
    MatmulQ5K => "matmul_q5_k.wgsl" + "matmul_k_scales.wgsl" + "matmul_q5_codes.wgsl" + "matmul_dot32.wgsl",
    MatmulQ6K => "matmul_q6_k.wgsl" + "matmul_dot_decoded.wgsl" + "matmul_dot32.wgsl",
    MatmulQ3K => "matmul_q3_k.wgsl" + "matmul_dot32.wgsl",
    MatmulQ2K => "matmul_q2_k.wgsl" + "matmul_dot32.wgsl",
    MatmulInt => "matmul_int.wgsl",
    MatmulIntPacked => "matmul_int_packed.wgsl" + "matmul_dot32.wgsl",
    MatmulCodebook => "matmul_codebook.wgsl" + "matmul_table16.wgsl" + "matmul_dot_decoded.wgsl" + "matmul_dot32.wgsl",
    MatmulFp8 => "matmul_fp8.wgsl",
}

impl Kernel {
    /// The WGSL of the kernel (for a matmul, its [`MatmulModule::Base`] module).
    pub const fn source(self) -> &'static str {
        if let Some(m) = self.matmul_sources() {
            return m.base;
        }
        match self {
            Kernel::Axpy => shader!("axpy.wgsl"),
            Kernel::RmsNorm => forward_source!("rmsnorm.wgsl"),
            Kernel::Rope => forward_source!("rope.wgsl"),
            Kernel::KvWrite => forward_source!("kv_cache.wgsl", "kv_write.wgsl"),
            Kernel::Attention => forward_source!("kv_cache.wgsl", "attention.wgsl"),
            Kernel::Elementwise => forward_source!("elementwise.wgsl"),
            Kernel::Sample => forward_source!("sample.wgsl"),
            Kernel::MatmulInt8Dot4Packed => concat!(shader!("int8_dot4_packed.wgsl"), shader!("matmul_int8_dot4.wgsl")),
            Kernel::MatmulInt8Dot4Unpacked => {
                concat!(shader!("int8_dot4_unpacked.wgsl"), shader!("matmul_int8_dot4.wgsl"))
            }
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
            Kernel::MatmulInt8Dot4Packed | Kernel::MatmulInt8Dot4Unpacked => "shaders/matmul_int8_dot4.wgsl",
            _ => panic!("matmul kernels returned above"),
        }
    }

    /// The kernel's [`entry::MAIN`] pipeline with the given override constants, compiled once per
    /// device (the context's cache); WGSL or validation errors are [`GpuError::Validation`]
    /// naming the shader file.
    pub async fn pipeline(
        self,
        gpu: &GpuContext,
        constants: &[(&'static str, f64)],
    ) -> Result<wgpu::ComputePipeline, GpuError> {
        self.cached_pipeline(gpu, MatmulModule::Base, entry::MAIN, constants).await
    }

    /// [`Self::pipeline`] at another entry point (kernels with several, outside the matmul
    /// modules: shaders/matmul_int8_dot4.wgsl).
    pub async fn pipeline_at(
        self,
        gpu: &GpuContext,
        entry_point: &'static str,
        constants: &[(&'static str, f64)],
    ) -> Result<wgpu::ComputePipeline, GpuError> {
        self.cached_pipeline(gpu, MatmulModule::Base, entry_point, constants).await
    }

    /// A pipeline from one module of a matmul kernel, compiled once per device; a clear error,
    /// before any module is created, for a module the device can't compile (subgroups or f16
    /// missing) or a kernel that is not a matmul.
    pub async fn matmul_pipeline(
        self,
        gpu: &GpuContext,
        module: MatmulModule,
        entry_point: &'static str,
        constants: &[(&'static str, f64)],
    ) -> Result<wgpu::ComputePipeline, GpuError> {
        let refuse = |why: String| GpuError::Validation { what: self.file_name().to_string(), message: why };
        if self.matmul_sources().is_none() {
            return Err(refuse("this kernel is not a weight matmul".to_string()));
        }
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
        self.cached_pipeline(gpu, module, entry_point, constants).await
    }

    async fn cached_pipeline(
        self,
        gpu: &GpuContext,
        module: MatmulModule,
        entry: &'static str,
        constants: &[(&'static str, f64)],
    ) -> Result<wgpu::ComputePipeline, GpuError> {
        let key = PipelineKey {
            kernel: self,
            module,
            entry,
            constants: constants.iter().map(|&(k, v)| (k, v.to_bits())).collect(),
        };
        if let Some(p) = gpu.cached(&key) {
            return Ok(p);
        }
        let source = self.matmul_source(module).unwrap_or(self.source());
        let pipeline = self.compile(gpu, source, entry, constants).await?;
        gpu.cache(key, &pipeline);
        Ok(pipeline)
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
