//! The forward's state buffers: the activations of one batch, the step uniform, the readback
//! copies ([`Activations`]), and the small buffer helpers the model's upload uses.

use wgpu::util::DeviceExt;

use super::kernels::{rope_table, Step};
use crate::gpu::GpuContext;
use crate::model::Config;

pub(super) fn bytes_f32(n: usize) -> u64 {
    (n * 4) as u64
}

/// Activations for up to B = `max_batch` rows (row-major, row r = position pos0 + r).
pub(super) struct Activations {
    /// uniform [`Step`]: pos0, n and the sampling parameters.
    pub(super) step: wgpu::Buffer,
    /// (B,) u32 token ids of the batch.
    pub(super) ids: wgpu::Buffer,
    /// (B, dim) the residual stream.
    pub(super) x: wgpu::Buffer,
    /// (B, dim) RMS-normed x, the matmuls' input.
    pub(super) xb: wgpu::Buffer,
    /// (B, q_dim) queries; (B, kv_dim) keys and values of this batch.
    pub(super) q: wgpu::Buffer,
    pub(super) k: wgpu::Buffer,
    pub(super) v: wgpu::Buffer,
    /// (B, q_dim) attention output of all heads.
    pub(super) att: wgpu::Buffer,
    /// (B, n_heads, capacity) attention scores / weights (scratch).
    pub(super) scores: wgpu::Buffer,
    /// (B, dim) a projection's output before the residual add.
    pub(super) xb2: wgpu::Buffer,
    /// (B, hidden_dim) FFN gate branch, then silu(gate)·up; (B, hidden_dim) up branch.
    pub(super) hb: wgpu::Buffer,
    pub(super) hb2: wgpu::Buffer,
    /// (1, dim) the normed last row, the classifier's input.
    pub(super) last: wgpu::Buffer,
    /// (1, vocab) logits of the last row.
    pub(super) logits: wgpu::Buffer,
    /// (1,) u32 the sampled token id.
    pub(super) token: wgpu::Buffer,
    /// (capacity, rope_dim/2, 2) cos/sin table.
    pub(super) rope: wgpu::Buffer,
    /// MAP_READ copies of logits and token.
    pub(super) logits_read: wgpu::Buffer,
    pub(super) token_read: wgpu::Buffer,
}

pub(super) fn norm_buffer(gpu: &GpuContext, name: &str, values: &[f32]) -> wgpu::Buffer {
    gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(name),
        contents: bytemuck::cast_slice(values),
        usage: wgpu::BufferUsages::STORAGE,
    })
}

pub(super) fn zeroed(gpu: &GpuContext, name: &str, bytes: u64) -> wgpu::Buffer {
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(name),
        size: bytes.max(4),
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    })
}

impl Activations {
    pub(super) fn new(gpu: &GpuContext, c: &Config, capacity: usize, b: usize) -> Activations {
        let buf = |name: &str, floats: usize| zeroed(gpu, name, bytes_f32(floats));
        let read = |name: &str, bytes: u64| {
            gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(name),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        Activations {
            step: gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("step"),
                size: std::mem::size_of::<Step>() as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            ids: buf("token ids", b),
            x: buf("x", b * c.dim),
            xb: buf("xb", b * c.dim),
            q: buf("q", b * c.q_dim()),
            k: buf("k", b * c.kv_dim()),
            v: buf("v", b * c.kv_dim()),
            att: buf("att", b * c.q_dim()),
            scores: buf("scores", b * c.n_heads * capacity),
            xb2: buf("xb2", b * c.dim),
            hb: buf("hb", b * c.hidden_dim),
            hb2: buf("hb2", b * c.hidden_dim),
            last: buf("last", c.dim),
            logits: buf("logits", c.vocab_size),
            token: buf("token", 1),
            rope: gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("rope table"),
                contents: bytemuck::cast_slice(&rope_table(capacity, c.rope_dim, c.rope_theta)),
                usage: wgpu::BufferUsages::STORAGE,
            }),
            logits_read: read("logits readback", bytes_f32(c.vocab_size)),
            token_read: read("token readback", 4),
        }
    }
}
