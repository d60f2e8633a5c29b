//! Recording a [`GpuMatrix`]'s products and row gathers: a [`BoundMatmul`] holds, for fixed
//! input and output buffers, each part's `MatmulParams` uniform and the bind groups of the
//! pipelines it runs, built once; recording it sets pipelines and dispatches, nothing more.
//!
//! The token count `n` is part of the uniform. A [`BoundMatmul`] recorded with another `n` than
//! last time rewrites its uniforms with `queue.write_buffer`, which takes effect at the next
//! submit, before the submitted commands run: so within one submission a [`BoundMatmul`] runs
//! with one `n` (the forward records each of its products once per submission; a second
//! [`BoundMatmul`] of the same matrix serves another `n`, as the tied embedding's gather and
//! classifier do).

use std::sync::atomic::{AtomicU32, Ordering};

use wgpu::util::DeviceExt;

use super::{GpuMatrix, Params, Part, GATHER_WG_SIZE, GEMM_TILE};
use crate::gpu::{GpuContext, GpuError};

/// What a [`BoundMatmul`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `y[n, rows] = x[n, cols] · Wᵀ`: pipelines `[gemv, gemm]`, inputs at bindings 4 (x) and 5 (y).
    Product,
    /// `out[i, :] = W[ids[i], :]`: pipeline `[gather_rows]`, bindings 6 (ids) and 7 (out).
    Gather,
}

/// One part (row range) of the matrix, bound.
struct BoundPart {
    /// The part's parameters with the `n` last written.
    params: Params,
    uniform: wgpu::Buffer,
    /// One bind group per pipeline of [`BoundMatmul::pipelines`], in its order.
    groups: Vec<wgpu::BindGroup>,
}

/// A matrix's product (or gather) bound to fixed input and output buffers (see the module docs).
pub struct BoundMatmul {
    name: String,
    op: Op,
    rows: usize,
    cols: usize,
    /// Rows one GEMV workgroup covers.
    gemv_rows_per_group: u32,
    pipelines: Vec<wgpu::ComputePipeline>,
    parts: Vec<BoundPart>,
    input_bytes: u64,
    output_bytes: u64,
    /// The `n` the uniforms hold.
    n: AtomicU32,
}

impl GpuMatrix {
    /// Binds `y[n, rows] = x[n, cols] · Wᵀ` (x, y: f32 STORAGE buffers, row-major, from offset 0)
    /// for recording with [`BoundMatmul::encode`]: `n == 1` runs the GEMV, `n > 1` the tiled GEMM.
    pub fn bind_product(&self, gpu: &GpuContext, x: &wgpu::Buffer, y: &wgpu::Buffer) -> BoundMatmul {
        self.bind(gpu, Op::Product, [x, y], 1)
    }

    /// Binds `out[i, :] = W[ids[i], :]` decoded to f32, for `i < n` (`ids`: u32 storage buffer; an
    /// id past the last row gives a row of zeros), for recording with [`BoundMatmul::encode`].
    pub fn bind_gather(&self, gpu: &GpuContext, ids: &wgpu::Buffer, out: &wgpu::Buffer) -> BoundMatmul {
        self.bind(gpu, Op::Gather, [ids, out], 1)
    }

    /// Records `y[n, rows] = x[n, cols] · Wᵀ` once ([`Self::bind_product`] for this call alone);
    /// `n == 0` records nothing.
    pub fn encode(
        &self,
        gpu: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        n: u32,
    ) -> Result<(), GpuError> {
        self.bind(gpu, Op::Product, [x, y], n).encode(gpu, enc, n)
    }

    /// Records `out[i, :] = W[ids[i], :]` once ([`Self::bind_gather`] for this call alone).
    pub fn encode_gather_rows(
        &self,
        gpu: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        ids: &wgpu::Buffer,
        out: &wgpu::Buffer,
        n: u32,
    ) -> Result<(), GpuError> {
        self.bind(gpu, Op::Gather, [ids, out], n).encode(gpu, enc, n)
    }

    fn params(&self, part: &Part, n: u32) -> Params {
        Params {
            rows: part.rows,
            cols: self.cols as u32,
            n,
            chunks: self.cols.div_ceil(8) as u32,
            row0: part.row0,
            y_stride: self.rows as u32,
            strides: part.strides,
            _pad: [0; 3],
        }
    }

    /// `io`: input and output buffers; `n`: the token count the uniforms start with.
    fn bind(&self, gpu: &GpuContext, op: Op, io: [&wgpu::Buffer; 2], n: u32) -> BoundMatmul {
        let (pipelines, first_io_binding) = match op {
            Op::Product => (vec![self.pipelines.gemv.clone(), self.pipelines.gemm.clone()], 4),
            Op::Gather => (vec![self.pipelines.gather.clone()], 6),
        };
        let parts = self
            .parts
            .iter()
            .map(|part| {
                let params = self.params(part, n);
                let uniform = gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("matmul params"),
                    contents: bytemuck::bytes_of(&params),
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                });
                let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() }];
                for (i, b) in part.buffers.iter().enumerate() {
                    entries.push(wgpu::BindGroupEntry { binding: i as u32 + 1, resource: b.as_entire_binding() });
                }
                for (i, b) in io.iter().enumerate() {
                    entries.push(wgpu::BindGroupEntry {
                        binding: first_io_binding + i as u32,
                        resource: b.as_entire_binding(),
                    });
                }
                let groups = pipelines
                    .iter()
                    .map(|pipeline| {
                        gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                            label: Some(&self.name),
                            layout: &pipeline.get_bind_group_layout(0),
                            entries: &entries,
                        })
                    })
                    .collect();
                BoundPart { params, uniform, groups }
            })
            .collect();
        BoundMatmul {
            name: self.name.clone(),
            op,
            rows: self.rows,
            cols: self.cols,
            gemv_rows_per_group: self.setup.gemv.rows_per_group(),
            pipelines,
            parts,
            input_bytes: io[0].size(),
            output_bytes: io[1].size(),
            n: AtomicU32::new(n),
        }
    }
}

impl BoundMatmul {
    /// Records the bound product (or gather) for `n` tokens (ids); `n == 0` records nothing. A
    /// buffer too small for `n` is an error, not a GPU fault.
    pub fn encode(&self, gpu: &GpuContext, enc: &mut wgpu::CommandEncoder, n: u32) -> Result<(), GpuError> {
        gpu.check_alive()?;
        if n == 0 {
            return Ok(());
        }
        let (cols, rows, n64) = (self.cols as u64, self.rows as u64, u64::from(n));
        let max_groups = gpu.device.limits().max_compute_workgroups_per_dimension;
        match self.op {
            Op::Product => {
                self.check_size("x", self.input_bytes, n64 * cols)?;
                self.check_size("y", self.output_bytes, n64 * rows)?;
                if n > 1 && n.div_ceil(GEMM_TILE) > max_groups {
                    return Err(self.too_many_groups(n));
                }
            }
            Op::Gather => {
                self.check_size("ids", self.input_bytes, n64)?;
                self.check_size("gather output", self.output_bytes, n64 * cols)?;
                if n > max_groups {
                    return Err(self.too_many_groups(n));
                }
            }
        }
        if self.n.swap(n, Ordering::Relaxed) != n {
            for part in &self.parts {
                let params = Params { n, ..part.params };
                gpu.queue.write_buffer(&part.uniform, 0, bytemuck::bytes_of(&params));
            }
        }
        let (index, label) = match (self.op, n) {
            (Op::Product, 1) => (0, "gemv"),
            (Op::Product, _) => (1, "gemm"),
            (Op::Gather, _) => (0, "gather_rows"),
        };
        let mut pass =
            enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(label), timestamp_writes: None });
        pass.set_pipeline(&self.pipelines[index]);
        for part in &self.parts {
            pass.set_bind_group(0, &part.groups[index], &[]);
            let part_rows = part.params.rows;
            match (self.op, n) {
                (Op::Product, 1) => {
                    let groups = part_rows.div_ceil(self.gemv_rows_per_group);
                    let gx = groups.min(max_groups);
                    pass.dispatch_workgroups(gx, groups.div_ceil(gx), 1);
                }
                (Op::Product, _) => pass.dispatch_workgroups(part_rows.div_ceil(GEMM_TILE), n.div_ceil(GEMM_TILE), 1),
                (Op::Gather, _) => {
                    pass.dispatch_workgroups((self.cols.div_ceil(8) as u32).div_ceil(GATHER_WG_SIZE), n, 1)
                }
            }
        }
        Ok(())
    }

    fn check_size(&self, what: &str, bytes: u64, values: u64) -> Result<(), GpuError> {
        if bytes < 4 * values {
            return Err(GpuError::Validation {
                what: format!("{} ({})", self.name, what),
                message: format!("needs {} bytes ({values} values) but the buffer has {bytes}", 4 * values),
            });
        }
        Ok(())
    }

    fn too_many_groups(&self, n: u32) -> GpuError {
        GpuError::Validation {
            what: self.name.clone(),
            message: format!("{n} tokens exceed one dispatch; split the batch"),
        }
    }
}
