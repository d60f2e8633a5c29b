//! W8A8 integer products on the GPU (quantlab::gpu::int8_dot4) against the float products of the
//! same shapes (quantlab::gpu::matmul, default GEMV strategy): f32 weights, int8-sym-channel
//! weights through the float kernel (`matmul_int.wgsl`, f32 activations), and int8 × int8 with
//! i32 sums by `dot4I8Packed` and by the unpacked fallback. The integer rows include the per-token
//! quantization of the activations (a second dispatch): it is part of every W8A8 product.
//!
//!     scripts/bench-gpu.sh --w8a8
//!     cargo run --release --example bench_gpu_int8
//!
//! Integer GEMVs run with the adapter's default split (`Int8Gemv::default_for`) and with one row
//! per invocation. Shapes n×K×rows: GEMV 1×576×1536 and 1×4096×4096, GEMM 16×576×1536 and
//! 64×1024×1024 (small: lavapipe runs well under 1 GFLOP/s). Times are the fastest of several wall-clock runs, each a
//! submit of `reps` products and a wait, every product timed once per round, rounds interleaved
//! (the machine is shared; as in bench_gpu.rs). Ratios are against f32 and against int8 weights
//! with f32 activations, on this one adapter.

use std::time::Instant;

use quantlab::gpu::bench::{bench_matrix, bench_values};
use quantlab::gpu::int8_dot4::{GpuInt8Matrix, Int8Gemv, IntDotVariant};
use quantlab::gpu::matmul::GpuMatrix;
use quantlab::gpu::GpuContext;
use wgpu::util::DeviceExt;

const MIN_RUN_SECONDS: f64 = 0.15;
const ROUNDS: usize = 7;
const SHAPES: [(usize, usize, usize); 4] = [(1, 576, 1536), (1, 4096, 4096), (16, 576, 1536), (64, 1024, 1024)];

/// What multiplies.
enum Kernel {
    Float(GpuMatrix),
    Int8(GpuInt8Matrix),
}

struct Product {
    what: String,
    kernel: Kernel,
    shape: (usize, usize, usize),
    x: wgpu::Buffer,
    acts: wgpu::Buffer,
    y: wgpu::Buffer,
    reps: usize,
    best: f64,
}

impl Product {
    fn new(gpu: &GpuContext, what: String, kernel: Kernel, shape: (usize, usize, usize)) -> Product {
        let (n, cols, rows) = shape;
        let buffer = |label: &str, size: usize| {
            gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: size as u64,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            })
        };
        let x = gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("x"),
            contents: bytemuck::cast_slice(&bench_values(n * cols)),
            usage: wgpu::BufferUsages::STORAGE,
        });
        let acts = buffer("acts", 4 * (n * cols.div_ceil(4) + n));
        let y = buffer("y", 4 * n * rows);
        Product { what, kernel, shape, x, acts, y, reps: 1, best: f64::INFINITY }
    }

    fn run(&self, gpu: &GpuContext, reps: usize) -> f64 {
        let start = Instant::now();
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        let n = self.shape.0;
        for _ in 0..reps {
            match &self.kernel {
                Kernel::Float(g) => g.encode(gpu, &mut enc, &self.x, &self.y, n as u32),
                Kernel::Int8(g) => g.encode(gpu, &mut enc, &self.x, n, &self.acts, &self.y),
            }
            .expect("encode");
        }
        gpu.queue.submit([enc.finish()]);
        gpu.device.poll(wgpu::PollType::wait_indefinitely()).expect("poll");
        start.elapsed().as_secs_f64() / reps as f64
    }

    fn label(&self) -> String {
        match &self.kernel {
            Kernel::Float(g) => g.kernel_label(),
            Kernel::Int8(g) => g.kernel_label(),
        }
    }
}

fn main() {
    let gpu = GpuContext::acquire_blocking().unwrap_or_else(|e| panic!("no GPU: {e}"));
    let a = &gpu.adapter;
    let variants = IntDotVariant::supported(&gpu);
    println!(
        "adapter: {} ({}, {}, driver {}); WGSL language features {:?}; integer dot default: {}",
        a.name,
        a.backend,
        a.device_type,
        a.driver,
        gpu.wgsl_features,
        IntDotVariant::default_for(&gpu).name()
    );
    let mut products = Vec::new();
    for shape in SHAPES {
        let (_, cols, rows) = shape;
        for format in ["f32", "int8-sym-channel"] {
            let m = bench_matrix(format, rows, cols).unwrap_or_else(|e| panic!("{e}"));
            let g = pollster::block_on(GpuMatrix::upload(&gpu, format, &m)).unwrap_or_else(|e| panic!("{e}"));
            products.push(Product::new(&gpu, format!("{format}, f32 act."), Kernel::Float(g), shape));
            if format == "int8-sym-channel" {
                // GEMVs also with one row per invocation (no shared activation loads), for comparison.
                let default = Int8Gemv::default_for(&gpu);
                let one_row = Int8Gemv::RowRun { rows: 1 };
                let gemvs = if shape.0 == 1 && default != one_row { vec![default, one_row] } else { vec![default] };
                for &v in &variants {
                    for &gemv in &gemvs {
                        let g = pollster::block_on(GpuInt8Matrix::upload_with(&gpu, format, &m, v, gemv))
                            .unwrap_or_else(|e| panic!("{e}"));
                        let what = match shape.0 {
                            1 => format!("{format}, int8-token act., GEMV {gemv:?}"),
                            _ => format!("{format}, int8-token act."),
                        };
                        products.push(Product::new(&gpu, what, Kernel::Int8(g), shape));
                    }
                }
            }
        }
    }
    for p in products.iter_mut() {
        let once = p.run(&gpu, 1);
        p.reps = (MIN_RUN_SECONDS / once).ceil().max(1.0) as usize;
    }
    for _ in 0..ROUNDS {
        for p in products.iter_mut() {
            p.best = p.best.min(p.run(&gpu, p.reps));
        }
    }
    println!();
    println!("| weights, activations | kernel | n×K×rows | time ms | GOP/s | vs f32 | vs int8 weights, f32 act. |");
    println!("|---|---|---|--:|--:|--:|--:|");
    for p in &products {
        let (n, cols, rows) = p.shape;
        let same = |what: &str| products.iter().find(|q| q.shape == p.shape && q.what == what).map(|q| q.best);
        let ratio = |base: Option<f64>| base.map_or("-".to_string(), |b| format!("{:.2}×", b / p.best));
        println!(
            "| {} | {} | {n}×{cols}×{rows} | {:.3} | {:.2} | {} | {} |",
            p.what,
            p.label(),
            p.best * 1e3,
            2.0 * (n * cols * rows) as f64 / p.best / 1e9,
            ratio(same("f32, f32 act.")),
            ratio(same("int8-sym-channel, f32 act."))
        );
    }
}
