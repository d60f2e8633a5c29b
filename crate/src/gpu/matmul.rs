//! Weight matrices resident on the GPU and the products the forward needs from them:
//! `y[n, rows] = x[n, cols] · Wᵀ` and the embedding lookup `out[i, :] = W[ids[i], :]`.
//!
//! [`GpuMatrix::upload`] repacks a [`Matrix`] once ([`super::repack`] documents every layout),
//! uploads the arrays and takes the three pipelines of its format (`gemv`, `gemm`, `gather_rows`;
//! modules in [`super::kernel`]) from the [`GpuContext`]'s cache, so all matrices of one format
//! share them.
//!
//! Recording: [`GpuMatrix::bind_product`] / [`GpuMatrix::bind_gather`] build a [`BoundMatmul`]
//! once for fixed input and output buffers (each part's uniform and bind groups), so the forward
//! records a token's ~200 products without creating a buffer or bind group;
//! [`GpuMatrix::encode`] and [`GpuMatrix::encode_gather_rows`] are the one-shot forms (tests,
//! benchmarks), which build one per call.
//!
//! Binding limits: a matrix whose arrays exceed `maxStorageBufferBindingSize` (or
//! `maxBufferSize`) is split into row ranges that each fit, every range dispatched on its own
//! and writing its own columns of `y`; a matrix one of whose *rows* does not fit is refused with
//! [`GpuError::BufferTooLarge`]. `kernel_label()` says when a matrix was split.
//!
//! GEMV strategies ([`GemvStrategy`]): the portable `gemv` (threads per row + workgroup-memory
//! reduction) and `gemv_rows` (several rows per invocation sharing each activation load; the
//! default on software adapters without subgroups) run everywhere; on adapters with the SUBGROUP
//! feature the default is `gemv_subgroup` (subgroupAdd), whose WGSL is a separate module
//! (`Kernel::matmul_source(MatmulModule::Subgroup)`) created only on such devices.
//! [`GemvStrategy::default_for`] explains the choice.
//!
//! CPU twins: [`Matrix::matvec`] (products) and [`Matrix::row`] (gather); `tests/rust/gpu_matmul.rs`
//! compares them over awkward shapes.

use wgpu::util::DeviceExt;

use super::kernel::{entry, overrides, MatmulModule};
use super::repack::{repack, Layout, Repacked};
use super::{GpuContext, GpuError};
use crate::model::Matrix;

mod encode;
mod gemv;
pub use encode::BoundMatmul;
use gemv::{chunk_run, SUBGROUP_ROW_SETS};
pub use gemv::{GemvStrategy, GEMV_WG_SIZE};

/// What a matmul's activations (its x input) and products are computed in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivationPrecision {
    /// f32 activations and products: the CPU reference's arithmetic, every adapter.
    #[default]
    F32,
    /// Weights and activations rounded to f16, f16 products summed in f32
    /// (`shaders/matmul_f16_activations.wgsl`; CPU twin [`matvec_f16_activations`]); adapters
    /// with shader-f16 only. The portable GEMV runs it (there is no subgroup f16 variant).
    F16,
}

impl ActivationPrecision {
    pub fn name(self) -> &'static str {
        match self {
            ActivationPrecision::F32 => "f32",
            ActivationPrecision::F16 => "f16",
        }
    }

    /// `"f32"` or `"f16"`, with the accepted names in the error.
    pub fn parse(s: &str) -> Result<ActivationPrecision, String> {
        match s {
            "f32" => Ok(ActivationPrecision::F32),
            "f16" => Ok(ActivationPrecision::F16),
            _ => Err(format!("unknown activation precision '{s}' (expected f32 or f16)")),
        }
    }

    /// A clear error when `gpu` can't run this precision.
    pub fn check(self, gpu: &GpuContext) -> Result<(), GpuError> {
        if self == ActivationPrecision::F16 && !gpu.adapter.shader_f16 {
            return Err(GpuError::MissingFeature {
                what: "f16 activations".to_string(),
                adapter: gpu.adapter.name.clone(),
                feature: "shader-f16".to_string(),
                hint: "use f32 activations".to_string(),
            });
        }
        Ok(())
    }
}

/// How a [`GpuMatrix`] runs: its GEMV strategy and its activation precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MatmulSetup {
    pub gemv: GemvStrategy,
    pub activations: ActivationPrecision,
}

impl MatmulSetup {
    /// `gemv` with f32 activations.
    pub fn f32(gemv: GemvStrategy) -> MatmulSetup {
        MatmulSetup { gemv, activations: ActivationPrecision::F32 }
    }

    /// The default GEMV strategy of `gpu` for f32 activations ([`GemvStrategy::default_for`]);
    /// for f16 activations the portable `gemv` of the f16 module (it has no row-sharing variant) with 1
    /// thread per row on a software adapter (no barriers on a CPU), 64 on a GPU.
    pub fn default_for(gpu: &GpuContext, activations: ActivationPrecision) -> MatmulSetup {
        let gemv = match activations {
            ActivationPrecision::F32 => GemvStrategy::default_for(gpu),
            ActivationPrecision::F16 if gpu.adapter.is_fallback => GemvStrategy::Workgroup { row_threads: 1 },
            ActivationPrecision::F16 => GemvStrategy::Workgroup { row_threads: GEMV_WG_SIZE },
        };
        MatmulSetup { gemv, activations }
    }

    fn check(self, gpu: &GpuContext, name: &str) -> Result<(), GpuError> {
        self.gemv.check(gpu, name)?;
        self.activations.check(gpu)?;
        if let (GemvStrategy::Subgroup { .. } | GemvStrategy::Rows { .. }, ActivationPrecision::F16) =
            (self.gemv, self.activations)
        {
            return Err(GpuError::Validation {
                what: name.to_string(),
                message: format!(
                    "the GEMV '{}' has no f16-activation variant; use a Workgroup strategy",
                    self.gemv.label()
                ),
            });
        }
        Ok(())
    }
}

/// CPU twin of the f16-activation products (`gemv` and `gemm` of the f16 module): `y[r] = Σ_k
/// f16(f16(w[r,k])·f16(x[k]))`, summed in f64 (the GPU sums in f32 in its own order). `w` is the
/// decoded matrix (`Matrix::to_f32`), row-major `[rows, x.len()]`.
pub fn matvec_f16_activations(w: &[f32], x: &[f32], y: &mut [f32]) {
    use half::f16;
    let xh: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
    for (r, out) in y.iter_mut().enumerate() {
        let row = &w[r * x.len()..(r + 1) * x.len()];
        let sum: f64 = row
            .iter()
            .zip(&xh)
            .map(|(&wv, &xv)| {
                // f16 × f16 is exact in f32; rounding it to f16 is the f16 multiply's one rounding.
                f64::from(f16::from_f32(f16::from_f32(wv).to_f32() * xv.to_f32()).to_f32())
            })
            .sum();
        *out = sum as f32;
    }
}

/// Output rows and tokens per GEMM workgroup (`TILE_ROWS`, `TILE_TOKENS` in matmul_common.wgsl).
const GEMM_TILE: u32 = 32;
/// Threads per gather_rows workgroup (each decodes 8 values).
const GATHER_WG_SIZE: u32 = 64;

/// `MatmulParams` in shaders/matmul_common.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    n: u32,
    chunks: u32,
    row0: u32,
    y_stride: u32,
    strides: [u32; 3],
    _pad: [u32; 3],
}

/// One row range of the matrix with its own buffers (one range unless the matrix was split).
struct Part {
    row0: u32,
    rows: u32,
    /// Bound at bindings 1, 2, 3.
    buffers: Vec<wgpu::Buffer>,
    strides: [u32; 3],
}

#[derive(Clone)]
struct Pipelines {
    gemv: wgpu::ComputePipeline,
    gemm: wgpu::ComputePipeline,
    gather: wgpu::ComputePipeline,
}

/// One weight matrix `[rows, cols]` resident on the GPU in a repacked layout.
pub struct GpuMatrix {
    name: String,
    rows: usize,
    cols: usize,
    label: String,
    bytes: u64,
    parts: Vec<Part>,
    pipelines: Pipelines,
    setup: MatmulSetup,
}

async fn pipelines_for(gpu: &GpuContext, layout: Layout, setup: MatmulSetup) -> Result<Pipelines, GpuError> {
    let kernel = layout.kernel();
    let mut constants = layout.constants();
    let gather = kernel.matmul_pipeline(gpu, MatmulModule::Base, entry::GATHER_ROWS, &constants).await?;
    // The activation precision picks the module; its `gemv` and `gemm` use that arithmetic.
    let activation_module = match setup.activations {
        ActivationPrecision::F32 => MatmulModule::Base,
        ActivationPrecision::F16 => MatmulModule::F16Activations,
    };
    let gemm = kernel.matmul_pipeline(gpu, activation_module, entry::GEMM, &constants).await?;
    constants.push((overrides::WG_SIZE, f64::from(GEMV_WG_SIZE)));
    let (module, entry) = match setup.gemv {
        GemvStrategy::Workgroup { row_threads } => {
            constants.push((overrides::ROW_THREADS, f64::from(row_threads)));
            (activation_module, entry::GEMV)
        }
        GemvStrategy::Subgroup { rows } => {
            constants.push((overrides::SG_ROWS, f64::from(rows)));
            constants.push((overrides::GROUP_ROWS, f64::from(SUBGROUP_ROW_SETS * rows)));
            constants.push((overrides::SG_CHUNKS, chunk_run(layout, rows)));
            (MatmulModule::Subgroup, entry::GEMV_SUBGROUP)
        }
        GemvStrategy::Rows { rows } => {
            constants.push((overrides::ROWS_PER_THREAD, f64::from(rows)));
            constants.push((overrides::ROWS_RUN, chunk_run(layout, rows)));
            (MatmulModule::Base, entry::GEMV_ROWS)
        }
    };
    let gemv = kernel.matmul_pipeline(gpu, module, entry, &constants).await?;
    Ok(Pipelines { gemv, gemm, gather })
}

fn to_u32(what: &str, v: usize) -> Result<u32, GpuError> {
    u32::try_from(v).map_err(|_| GpuError::Validation {
        what: what.to_string(),
        message: format!("{v} does not fit the kernels' 32-bit indices"),
    })
}

/// Row ranges `[r0, r1)` whose arrays each fit `limit` bytes, or the error for a row that can't.
fn split_rows(gpu: &GpuContext, name: &str, r: &Repacked) -> Result<Vec<(usize, usize)>, GpuError> {
    let limit = gpu.adapter.max_storage_buffer_binding_size.min(gpu.adapter.max_buffer_size);
    let mut row_bytes = 0u64;
    for a in &r.arrays {
        if a.row_words == 0 {
            gpu.check_binding_size(&format!("{name} (shared table)"), 4 * a.words.len() as u64)?;
        }
        row_bytes = row_bytes.max(4 * a.row_words as u64);
    }
    gpu.check_binding_size(&format!("one row of {name}"), row_bytes)?;
    let rows_per_part = (limit / row_bytes.max(1)).max(1) as usize;
    Ok((0..r.rows).step_by(rows_per_part).map(|r0| (r0, (r0 + rows_per_part).min(r.rows))).collect())
}

impl GpuMatrix {
    /// Repacks `m` (F32 / Ggml of any decodable type / Quantized int, bnb, fp8) and uploads it,
    /// compiling (or reusing cached) pipelines. Formats without a dedicated kernel are
    /// dequantized to f16 at upload (the generic path); [`Self::kernel_label`] says so.
    pub async fn upload(gpu: &GpuContext, name: &str, m: &Matrix) -> Result<GpuMatrix, GpuError> {
        Self::upload_with(gpu, name, m, MatmulSetup::default_for(gpu, ActivationPrecision::F32)).await
    }

    /// [`Self::upload`] with an explicit GEMV strategy and activation precision, to test and
    /// benchmark every combination on one adapter. A subgroup strategy (or f16 activations) on
    /// an adapter without subgroups (or shader-f16) is an error: no module using them is ever
    /// created there.
    pub async fn upload_with(
        gpu: &GpuContext,
        name: &str,
        m: &Matrix,
        setup: MatmulSetup,
    ) -> Result<GpuMatrix, GpuError> {
        setup.check(gpu, name)?;
        let r = repack(name, m)?;
        to_u32(name, r.rows)?;
        to_u32(name, r.cols)?;
        let ranges = split_rows(gpu, name, &r)?;
        let pipelines = pipelines_for(gpu, r.layout, setup).await?;
        let mut parts = Vec::with_capacity(ranges.len());
        for &(r0, r1) in &ranges {
            let slice = if ranges.len() == 1 { None } else { Some(r.slice_rows(r0, r1)) };
            let arrays = slice.as_ref().unwrap_or(&r);
            let buffers = gpu
                .scoped(&format!("uploading {name}"), || {
                    arrays
                        .arrays
                        .iter()
                        .enumerate()
                        .map(|(i, a)| {
                            gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                                label: Some(&format!("{name} w{}", i + 1)),
                                contents: bytemuck::cast_slice(&a.words),
                                // Binding 3 (the shared tables) is a uniform, see repack.rs.
                                usage: if i == 2 { wgpu::BufferUsages::UNIFORM } else { wgpu::BufferUsages::STORAGE },
                            })
                        })
                        .collect::<Vec<_>>()
                })
                .await?;
            let mut strides = [0u32; 3];
            for (s, a) in strides.iter_mut().zip(&r.arrays) {
                *s = to_u32(name, a.row_words)?;
            }
            parts.push(Part { row0: r0 as u32, rows: (r1 - r0) as u32, buffers, strides });
        }
        let label = if parts.len() == 1 {
            r.label.clone()
        } else {
            format!("{}, split into {} row ranges (binding size limit)", r.label, parts.len())
        };
        Ok(GpuMatrix {
            name: name.to_string(),
            rows: r.rows,
            cols: r.cols,
            label,
            bytes: r.bytes(),
            parts,
            pipelines,
            setup,
        })
    }

    /// How one-token products run.
    pub fn gemv_strategy(&self) -> GemvStrategy {
        self.setup.gemv
    }

    /// What the products' activations are computed in.
    pub fn activations(&self) -> ActivationPrecision {
        self.setup.activations
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes of the repacked weight buffers on the GPU.
    pub fn gpu_bytes(&self) -> u64 {
        self.bytes
    }

    /// What runs, e.g. `"Q4_1 (dedicated)"`, `"TQ2_0 → f16 (generic dequantize path)"`.
    pub fn kernel_label(&self) -> String {
        self.label.clone()
    }
}
