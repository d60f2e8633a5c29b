//! TEMPORARY: an f32-only stand-in with the shape of gpu-mm's `GpuMatrix` (contract B), so the
//! forward runs end to end before the real matmul lands. Deleted once `gpu::matmul` exists.

use wgpu::util::DeviceExt;

use super::kernels::{bind, dispatch};
use crate::gpu::kernel::Kernel;
use crate::gpu::{GpuContext, GpuError};
use crate::model::Matrix;

pub struct GpuMatrix {
    w: wgpu::Buffer,
    rows: usize,
    cols: usize,
    pipeline: wgpu::ComputePipeline,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Dims {
    n: u32,
    rows: u32,
    cols: u32,
    _pad: u32,
}

impl GpuMatrix {
    pub async fn upload(gpu: &GpuContext, name: &str, m: &Matrix) -> Result<GpuMatrix, GpuError> {
        let shape = m.shape();
        let values = m.to_f32();
        gpu.check_binding_size(name, (values.len() * 4) as u64)?;
        let pipeline = Kernel::ScratchLinearF32.pipeline(gpu, &[]).await?;
        let w = gpu
            .scoped(name, || {
                gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(name),
                    contents: bytemuck::cast_slice(&values),
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                })
            })
            .await?;
        Ok(GpuMatrix { w, rows: shape.rows, cols: shape.cols, pipeline })
    }

    #[allow(dead_code)]
    pub fn rows(&self) -> usize {
        self.rows
    }

    #[allow(dead_code)]
    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn gpu_bytes(&self) -> u64 {
        self.w.size()
    }

    pub fn kernel_label(&self) -> String {
        "f32 (temporary scratch kernel)".into()
    }

    pub fn encode(
        &self,
        gpu: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        n: u32,
    ) -> Result<(), GpuError> {
        let dims = Dims { n, rows: self.rows as u32, cols: self.cols as u32, _pad: 0 };
        let uniform = gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("scratch dims"),
            contents: bytemuck::bytes_of(&dims),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let group = bind(gpu, &self.pipeline, "scratch linear", &[&uniform, &self.w, x, y]);
        dispatch(enc, &self.pipeline, &group, ((self.rows as u32).div_ceil(64), n, 1));
        Ok(())
    }

    /// Host-side ids (the real GpuMatrix reads them from a GPU buffer).
    pub fn encode_gather_rows_host(&self, enc: &mut wgpu::CommandEncoder, ids: &[u32], out: &wgpu::Buffer) {
        let row = (self.cols * 4) as u64;
        for (i, &id) in ids.iter().enumerate() {
            enc.copy_buffer_to_buffer(&self.w, u64::from(id) * row, out, i as u64 * row, row);
        }
    }
}
