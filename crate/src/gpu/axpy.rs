//! y = a·x + y on the GPU (`shaders/axpy.wgsl`) and its CPU twin. Small on purpose: it is the
//! end-to-end check that a device compiles, dispatches and reads back correctly.

use wgpu::util::DeviceExt;

use super::kernel::{overrides, Kernel};
use super::{GpuContext, GpuError};

pub const WORKGROUP_SIZE: u32 = 64;

/// The CPU twin of `shaders/axpy.wgsl`.
pub fn axpy_cpu(a: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    a: f32,
    n: u32,
    pitch: u32,
    _pad: u32,
}

/// Computes a·x + y on the GPU and returns the new y.
pub async fn axpy_gpu(gpu: &GpuContext, a: f32, x: &[f32], y: &[f32]) -> Result<Vec<f32>, GpuError> {
    assert_eq!(x.len(), y.len(), "axpy: x and y differ in length");
    let bytes = std::mem::size_of_val(y) as u64;
    gpu.check_binding_size("axpy", bytes)?;
    if x.is_empty() {
        return Ok(Vec::new());
    }
    let n = u32::try_from(x.len()).map_err(|_| GpuError::BufferTooLarge {
        what: "axpy".into(),
        bytes,
        max: u64::from(u32::MAX),
    })?;
    // Split the grid over y once x would exceed the per-dimension workgroup limit.
    let groups = n.div_ceil(WORKGROUP_SIZE);
    let max_x = 65_535;
    let (gx, gy) = if groups <= max_x { (groups, 1) } else { (max_x, groups.div_ceil(max_x)) };
    let params = Params { a, n, pitch: gx * WORKGROUP_SIZE, _pad: 0 };

    let pipeline = Kernel::Axpy.pipeline(gpu, &[(overrides::WORKGROUP_SIZE, f64::from(WORKGROUP_SIZE))]).await?;
    let readback = gpu
        .scoped("axpy dispatch", || {
            let device = &gpu.device;
            let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("axpy params"),
                contents: bytemuck::bytes_of(&params),
                usage: wgpu::BufferUsages::UNIFORM,
            });
            let x_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("axpy x"),
                contents: bytemuck::cast_slice(x),
                usage: wgpu::BufferUsages::STORAGE,
            });
            let y_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("axpy y"),
                contents: bytemuck::cast_slice(y),
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            });
            let readback = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("axpy readback"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("axpy"),
                layout: &pipeline.get_bind_group_layout(0),
                entries: &[
                    wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 1, resource: x_buf.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 2, resource: y_buf.as_entire_binding() },
                ],
            });
            let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("axpy") });
            {
                let mut pass = encoder
                    .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("axpy"), timestamp_writes: None });
                pass.set_pipeline(&pipeline);
                pass.set_bind_group(0, &bind_group, &[]);
                pass.dispatch_workgroups(gx, gy, 1);
            }
            encoder.copy_buffer_to_buffer(&y_buf, 0, &readback, 0, bytes);
            gpu.queue.submit([encoder.finish()]);
            readback
        })
        .await?;
    let out = gpu.read_buffer(&readback).await?;
    Ok(bytemuck::pod_collect_to_vec(&out))
}
