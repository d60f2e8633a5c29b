//! GPU weight-matmul throughput per format (quantlab::gpu::matmul::GpuMatrix) on whatever adapter
//! wgpu finds (lavapipe here): GEMV (one token) and tiled GEMM (many tokens) time, effective
//! GB/s (repacked weight bytes + activations read and written, per second) and GFLOP/s
//! (2·n·K·rows per second), at the shapes n×K×rows of issue #5: 1×576×1536, 1×4096×4096 and
//! 512×4096×4096.
//!
//!     scripts/bench-gpu.sh [--quick] [--gemv-only] [--no-f16] [--formats f32,q4_1,...]
//!     cargo run --release --example bench_gpu -- [--quick] [--gemv-only] [--no-f16] [--formats ...]
//!
//! GEMV runs with every strategy the adapter supports (`GemvStrategy::supported`: 1, 4 and 64
//! threads per row; with subgroups also 1, 4, 8, 16, 32 and 64 rows per subgroup), the default one marked `*`;
//! GEMM runs once per shape. `--quick` runs the big GEMM with 64 tokens instead of 512
//! (lavapipe manages well under 1 GFLOP/s, so 512 tokens take tens of seconds per format);
//! `--gemv-only` skips it. On adapters with shader-f16 each format also runs with f16
//! activations (`MatmulSetup::default_for(.., F16)`: the portable GEMV, and the GEMM), rows marked
//! "f16 act."; `--no-f16` skips them. The summary (f32 activations) gives every format's 4096² GEMV speed-up over f32 per
//! strategy and best against best. Times are the fastest of a few
//! wall-clock runs (this machine is shared: the minimum is the least disturbed run), each one
//! submit of `reps` dispatches followed by a wait, after one warm-up run (pipeline compilation
//! excluded); all matrices are uploaded first and the runs interleaved in rounds (see
//! `time_all`). Weights are deterministic pseudo-random values.

use std::time::Instant;

use quantlab::formats::GgmlType;
use quantlab::gpu::bench::{bench_matrix, bench_values};
use quantlab::gpu::matmul::{ActivationPrecision, GemvStrategy, GpuMatrix, MatmulSetup};
use quantlab::gpu::GpuContext;
use wgpu::util::DeviceExt;

/// The dedicated kernels (Q5_0, Q5_1 and IQ4_NL through `--formats`), INT3 and INT2 (codes across
/// word boundaries), the decode-only IQ4_XS and MXFP4 (random valid blocks, `bench_matrix`).
const DEFAULT_FORMATS: &str =
    "f32,f16,q8_0,q4_0,q4_1,q2_k,q3_k,q4_k,q5_k,q6_k,int8-sym-channel,int4-sym-g128,int4-asym-g128,nf4,int3-asym-g64,int2-asym-g64,iq4_xs,mxfp4";

const MIN_RUN_SECONDS: f64 = 0.15;

/// One timed product: a resident matrix, its x and y buffers, and the fastest time so far.
struct Product {
    format: String,
    strategy: GemvStrategy,
    g: std::rc::Rc<GpuMatrix>,
    n: usize,
    reps: usize,
    runs: usize,
    x: wgpu::Buffer,
    y: wgpu::Buffer,
    best: f64,
}

impl Product {
    fn new(
        gpu: &GpuContext,
        format: &str,
        strategy: GemvStrategy,
        g: std::rc::Rc<GpuMatrix>,
        shape: (usize, usize, usize),
    ) -> Self {
        let (n, reps, runs) = shape;
        let x = gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("x"),
            contents: bytemuck::cast_slice(&bench_values(n * g.cols())),
            usage: wgpu::BufferUsages::STORAGE,
        });
        let y = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("y"),
            size: (4 * n * g.rows()) as u64,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        Product { format: format.to_string(), strategy, g, n, reps, runs, x, y, best: f64::INFINITY }
    }

    /// Seconds per product of one submit of `reps` products and a wait.
    fn run(&self, gpu: &GpuContext, reps: usize) -> f64 {
        let start = Instant::now();
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        for _ in 0..reps {
            self.g.encode(gpu, &mut enc, &self.x, &self.y, self.n as u32).expect("encode");
        }
        gpu.queue.submit([enc.finish()]);
        gpu.device.poll(wgpu::PollType::wait_indefinitely()).expect("poll");
        start.elapsed().as_secs_f64() / reps as f64
    }
}

/// Times every product: one warm-up each, then rounds in which every product still due runs
/// once, keeping its fastest run. Interleaving the rounds spreads the shared machine's load
/// changes over all formats and strategies alike, so the ratios of one run compare like with
/// like (timing one format after another let a load change favour whichever ran in the quiet).
/// Every run lasts at least [`MIN_RUN_SECONDS`] (more reps for fast products), so that a short
/// quiet spell favours fast and slow products alike.
fn time_all(gpu: &GpuContext, products: &mut [Product]) {
    for p in products.iter_mut() {
        let once = p.run(gpu, 1);
        p.reps = p.reps.max((MIN_RUN_SECONDS / once).ceil() as usize);
    }
    let rounds = products.iter().map(|p| p.runs).max().unwrap_or(0);
    for round in 0..rounds {
        for p in products.iter_mut().filter(|p| round < p.runs) {
            p.best = p.best.min(p.run(gpu, p.reps));
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let gemv_only = args.iter().any(|a| a == "--gemv-only");
    let f16 = !args.iter().any(|a| a == "--no-f16");
    let formats = args
        .iter()
        .position(|a| a == "--formats")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| DEFAULT_FORMATS.to_string());
    let gpu = GpuContext::acquire_blocking().unwrap_or_else(|e| panic!("no GPU: {e}"));
    let a = &gpu.adapter;
    let big_n = if quick { 64 } else { 512 };
    let strategies = GemvStrategy::supported(&gpu);
    let default = GemvStrategy::default_for(&gpu);
    println!(
        "adapter: {} ({}, {}, driver {}), shader-f16 {}, subgroups {}; default GEMV strategy: {}",
        a.name,
        a.backend,
        a.device_type,
        a.driver,
        a.shader_f16,
        a.subgroups,
        default.label()
    );
    println!("shapes n×K×rows; GB/s counts repacked weight bytes + x + y; fastest of several wall-clock runs");
    println!();
    println!("| format | kernel | n×K×rows | GEMV strategy | GPU bytes | time ms | GB/s | GFLOP/s |");
    println!("|--------|--------|----------|---------------|----------:|--------:|-----:|--------:|");
    let mut products: Vec<Product> = Vec::new();
    for format in formats.split(',') {
        for &(cols, rows) in &[(576usize, 1536usize), (4096, 4096)] {
            // K-quants and IQ4_XS: 256-value super-blocks.
            let block = GgmlType::from_name(format).map_or(1, |t| t.block_size());
            if !cols.is_multiple_of(block) {
                println!(
                    "| {format} | rows must be whole {block}-value blocks | 1×{cols}×{rows} | - | - | - | - | - |"
                );
                continue;
            }
            let m = bench_matrix(format, rows, cols).unwrap_or_else(|e| panic!("{e}"));
            for &strategy in &strategies {
                let g = pollster::block_on(GpuMatrix::upload_with(&gpu, format, &m, MatmulSetup::f32(strategy)))
                    .unwrap_or_else(|e| panic!("{e}"));
                let g = std::rc::Rc::new(g);
                products.push(Product::new(
                    &gpu,
                    format,
                    strategy,
                    g.clone(),
                    if cols == 4096 { (1, 5, 5) } else { (1, 20, 5) },
                ));
                // GEMM does not depend on the GEMV strategy: once, with the default one.
                if cols == 4096 && strategy == default && !gemv_only {
                    products.push(Product::new(&gpu, format, strategy, g, (big_n, 1, 1)));
                }
            }
            if f16 && gpu.adapter.shader_f16 {
                let setup = MatmulSetup::default_for(&gpu, ActivationPrecision::F16);
                let g = pollster::block_on(GpuMatrix::upload_with(&gpu, format, &m, setup))
                    .unwrap_or_else(|e| panic!("{e}"));
                let g = std::rc::Rc::new(g);
                let shape = if cols == 4096 { (1, 5, 5) } else { (1, 20, 5) };
                products.push(Product::new(&gpu, format, setup.gemv, g.clone(), shape));
                if cols == 4096 && !gemv_only {
                    products.push(Product::new(&gpu, format, setup.gemv, g, (big_n, 1, 1)));
                }
            }
        }
    }
    time_all(&gpu, &mut products);
    // (format, strategy, seconds) of the 1×4096×4096 GEMVs.
    let mut gemv_4096: Vec<(String, GemvStrategy, f64)> = Vec::new();
    for p in &products {
        let (n, cols, rows, t) = (p.n, p.g.cols(), p.g.rows(), p.best);
        let bytes = p.g.gpu_bytes() as f64 + 4.0 * (n * (cols + rows)) as f64;
        let flops = 2.0 * (n * cols * rows) as f64;
        let f16_act = p.g.activations() == ActivationPrecision::F16;
        if n == 1 && cols == 4096 && !f16_act {
            gemv_4096.push((p.format.clone(), p.strategy, t));
        }
        let mark = if p.strategy == default && !f16_act { " *" } else { "" };
        let act = if f16_act { ", f16 act." } else { "" };
        let what = if n == 1 { format!("{}{mark}{act}", p.strategy.label()) } else { format!("GEMM{act}") };
        println!(
            "| {} | {} | {n}×{cols}×{rows} | {what} | {:.1} MB | {:.2} | {:.2} | {:.2} |",
            p.format,
            p.g.kernel_label(),
            p.g.gpu_bytes() as f64 / 1e6,
            t * 1e3,
            bytes / t / 1e9,
            flops / t / 1e9
        );
    }
    summary(&strategies, &gemv_4096);
}

/// GEMV 4096² speed-ups over f32: per strategy (same kernel shape), then best against best.
fn summary(strategies: &[GemvStrategy], gemv: &[(String, GemvStrategy, f64)]) {
    let time = |f: &str, s: GemvStrategy| gemv.iter().find(|(g, t, _)| g == f && *t == s).map(|r| r.2);
    let best =
        |f: &str| gemv.iter().filter(|(g, _, _)| g == f).min_by(|a, b| a.2.total_cmp(&b.2)).map(|(_, s, t)| (*s, *t));
    let mut formats: Vec<&str> = Vec::new();
    for (f, _, _) in gemv {
        if !formats.contains(&f.as_str()) {
            formats.push(f);
        }
    }
    let Some((f32_best, f32_time)) = best("f32") else { return };
    println!();
    println!("GEMV 1×4096×4096 speed-up over f32 (target for INT4: ≥ 3×), same strategy for both:");
    println!();
    print!("| format |");
    for s in strategies {
        print!(" {} |", s.label());
    }
    println!(" best vs best f32 ({}, {:.1} ms) |", f32_best.label(), f32_time * 1e3);
    println!("|--------|{}---|", "---|".repeat(strategies.len()));
    for f in formats {
        print!("| {f} |");
        for &s in strategies {
            match (time("f32", s), time(f, s)) {
                (Some(base), Some(t)) => print!(" {:.2}× |", base / t),
                _ => print!(" - |"),
            }
        }
        let (s, t) = best(f).expect("measured");
        println!(" {:.2}× ({}, {:.1} ms) |", f32_time / t, s.label(), t * 1e3);
    }
}
