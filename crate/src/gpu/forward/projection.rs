//! A layer matrix of the GPU forward and its product, bound to the activations it reads and
//! writes: the f32 (or f16) products of `gpu::matmul`, or with [`LayerInputs::Int8Token`] the
//! W8A8 integer products of `gpu::int8_dot4` (each input quantized per token on the GPU, then
//! int8 × int8 in i32), the GPU form of the CPU forward's `--activations int8-token --matmul
//! int8`. Only the seven matrices of each block take that path; the embedding and the classifier
//! stay as they are, as on the CPU (whose LM head input is left in f32 by default).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::gpu::int8_dot4::{int8_channel, BoundInt8, GpuInt8Matrix, IntDotVariant};
use crate::gpu::matmul::{BoundMatmul, GpuMatrix, MatmulSetup};
use crate::gpu::{GpuContext, GpuError};
use crate::model::Matrix;

use super::GpuModelError;

/// What the block matrices' inputs are on the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LayerInputs {
    /// The activations as they are (f32, or f16 with f16 activations).
    #[default]
    Float,
    /// Quantized per token to int8 (`int8-token`), multiplied in i32 by int8-sym-channel weights
    /// with the given integer dot.
    Int8Token(IntDotVariant),
}

/// A block matrix on the GPU, in the form its products take.
pub(super) enum LayerMatrix {
    Float(GpuMatrix),
    Int8(GpuInt8Matrix),
}

impl LayerMatrix {
    /// Uploads `m` for `inputs`: with int8-token inputs the matrix must be int8-sym-channel.
    pub(super) async fn upload(
        gpu: &GpuContext,
        name: &str,
        m: &Matrix,
        setup: MatmulSetup,
        inputs: LayerInputs,
    ) -> Result<LayerMatrix, GpuModelError> {
        match inputs {
            LayerInputs::Float => Ok(LayerMatrix::Float(GpuMatrix::upload_with(gpu, name, m, setup).await?)),
            LayerInputs::Int8Token(_) if int8_channel(m).is_none() => Err(GpuModelError::Unsupported(format!(
                "int8-token activations on the GPU run integer products, which need int8-sym-channel layer \
                 matrices; {name} is {} (quantize with -f int8-sym-channel, or use the CPU forward)",
                m.type_name()
            ))),
            LayerInputs::Int8Token(variant) => {
                Ok(LayerMatrix::Int8(GpuInt8Matrix::upload(gpu, name, m, variant).await?))
            }
        }
    }

    pub(super) fn gpu_bytes(&self) -> u64 {
        match self {
            LayerMatrix::Float(m) => m.gpu_bytes(),
            LayerMatrix::Int8(m) => m.gpu_bytes(),
        }
    }

    pub(super) fn kernel_label(&self) -> String {
        match self {
            LayerMatrix::Float(m) => m.kernel_label(),
            LayerMatrix::Int8(m) => m.kernel_label(),
        }
    }
}

/// A block matrix and its product, bound.
pub(super) struct Projection {
    pub(super) matrix: LayerMatrix,
    product: Bound,
}

enum Bound {
    Float(BoundMatmul),
    Int8(BoundInt8),
}

impl Projection {
    /// Binds `y = x · Wᵀ`; integer products quantize `x` into `acts` (shared scratch: the
    /// products run one after another).
    pub(super) fn new(
        gpu: &GpuContext,
        matrix: LayerMatrix,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        acts: &wgpu::Buffer,
    ) -> Projection {
        let product = match &matrix {
            LayerMatrix::Float(m) => Bound::Float(m.bind_product(gpu, x, y)),
            LayerMatrix::Int8(m) => Bound::Int8(m.bind(gpu, x, acts, y, 1)),
        };
        Projection { matrix, product }
    }

    /// Records the product of `n` rows, counting integer products in `integer`.
    pub(super) fn encode(
        &self,
        gpu: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        n: u32,
        integer: &AtomicU64,
    ) -> Result<(), GpuError> {
        match &self.product {
            Bound::Float(b) => b.encode(gpu, enc, n),
            Bound::Int8(b) => {
                integer.fetch_add(1, Ordering::Relaxed);
                b.encode(gpu, enc, n)
            }
        }
    }
}

/// Bytes of the shared activation-code scratch for rows of up to `cols` values and `max_batch`
/// tokens (at least one word: a buffer may not be empty).
pub(super) fn acts_bytes(inputs: LayerInputs, cols: usize, max_batch: usize) -> u64 {
    match inputs {
        LayerInputs::Float => 4,
        LayerInputs::Int8Token(_) => 4 * (max_batch as u64 * cols.div_ceil(4) as u64 + max_batch as u64),
    }
}
