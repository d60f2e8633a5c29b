//! Weight-matmul timing in the browser, for scripts/bench-gpu-browser.mjs: the products of
//! crate/examples/bench_gpu.rs (a `GpuMatrix` GEMV or GEMM on the same matrices,
//! `gpu::bench::bench_matrix`), uploaded once and run on demand; the page times `run`.
//!
//! GpuMatmulBench.create(format, n, cols, rows, rowThreads?, rowsPerThread?) -> Promise<GpuMatmulBench>
//!     (rowThreads: the portable GEMV's threads per row; rowsPerThread instead: `gemv_rows`'s rows
//!     per invocation; neither: the adapter's default strategy)
//! bench.run(reps) -> Promise<void>   records `reps` products in one submit and resolves once the
//!                                     GPU has finished them (a 4-byte readback of y)
//! bench.info() -> {format, kernel, strategy, gpuBytes, n, cols, rows}

use std::rc::Rc;
use std::sync::Arc;

use serde::Serialize;
use tsify_next::Tsify;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use wgpu::util::DeviceExt;

use super::gpu_bindings::gpu_context;
use super::{js_err, to_js, Js, LabJsError};
use crate::error::Input;
use crate::gpu::bench::{bench_matrix, bench_values};
use crate::gpu::matmul::{GemvStrategy, GpuMatrix, MatmulSetup};
use crate::gpu::GpuContext;

#[wasm_bindgen]
extern "C" {
    /// The promises of `create` and `run`, typed by what they resolve to.
    #[wasm_bindgen(typescript_type = "Promise<GpuMatmulBench>")]
    pub type GpuMatmulBenchPromise;
    #[wasm_bindgen(typescript_type = "Promise<void>")]
    pub type DonePromise;
}

#[wasm_bindgen]
pub struct GpuMatmulBench {
    inner: Rc<Bench>,
}

struct Bench {
    gpu: Arc<GpuContext>,
    format: String,
    matrix: GpuMatrix,
    n: u32,
    x: wgpu::Buffer,
    y: wgpu::Buffer,
    readback: wgpu::Buffer,
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct BenchInfo {
    format: String,
    kernel: String,
    strategy: String,
    gpu_bytes: u64,
    n: u32,
    cols: usize,
    rows: usize,
}

#[wasm_bindgen]
impl GpuMatmulBench {
    /// Builds `format`'s `rows × cols` benchmark matrix, uploads it with f32 activations, and
    /// allocates x (`n × cols` values) and y. Rejects with the reason for an unknown format, a
    /// shape the format can't take, a `rowThreads` that is not a power of two ≤ 64, a
    /// `rowsPerThread` not in 1..=16, both given, or a matrix over the adapter's limits.
    pub fn create(
        format: String,
        n: u32,
        cols: u32,
        rows: u32,
        row_threads: Option<u32>,
        rows_per_thread: Option<u32>,
    ) -> GpuMatmulBenchPromise {
        future_to_promise(async move {
            if n == 0 || cols == 0 || rows == 0 {
                return Err(LabJsError::bad(Input::Options, "n, cols and rows must be at least 1").into());
            }
            let gpu = gpu_context().await?;
            let m =
                bench_matrix(&format, rows as usize, cols as usize).map_err(|e| LabJsError::bad(Input::Options, e))?;
            let gemv = match (row_threads, rows_per_thread) {
                (Some(row_threads), None) => GemvStrategy::Workgroup { row_threads },
                (None, Some(rows)) => GemvStrategy::Rows { rows },
                (None, None) => GemvStrategy::default_for(&gpu),
                (Some(_), Some(_)) => {
                    return Err(LabJsError::bad(Input::Options, "give rowThreads or rowsPerThread, not both").into())
                }
            };
            let matrix = GpuMatrix::upload_with(&gpu, &format, &m, MatmulSetup::f32(gemv)).await.map_err(js_err)?;
            let values = bench_values(n as usize * cols as usize);
            let y_bytes = 4 * u64::from(n) * u64::from(rows);
            gpu.check_binding_size("the benchmark's activations", 4 * values.len() as u64).map_err(js_err)?;
            gpu.check_binding_size("the benchmark's output", y_bytes).map_err(js_err)?;
            let x = gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("bench x"),
                contents: bytemuck::cast_slice(&values),
                usage: wgpu::BufferUsages::STORAGE,
            });
            let buffer = |label, size, usage| {
                gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size,
                    usage,
                    mapped_at_creation: false,
                })
            };
            let y = buffer("bench y", y_bytes, wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC);
            let readback = buffer("bench readback", 4, wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
            let inner = Rc::new(Bench { gpu, format, matrix, n, x, y, readback });
            Ok(GpuMatmulBench { inner }.into())
        })
        .unchecked_into()
    }

    /// Records `reps` products into one command buffer, submits it, and resolves when the GPU is
    /// done (it waits on a 4-byte copy of y, which follows the products in the queue).
    pub fn run(&self, reps: u32) -> DonePromise {
        let b = Rc::clone(&self.inner);
        future_to_promise(async move {
            let mut enc = b.gpu.device.create_command_encoder(&Default::default());
            for _ in 0..reps.max(1) {
                b.matrix.encode(&b.gpu, &mut enc, &b.x, &b.y, b.n).map_err(js_err)?;
            }
            enc.copy_buffer_to_buffer(&b.y, 0, &b.readback, 0, 4);
            b.gpu.queue.submit([enc.finish()]);
            b.gpu.read_buffer(&b.readback).await.map_err(js_err)?;
            Ok(JsValue::UNDEFINED)
        })
        .unchecked_into()
    }

    /// What is being timed: the kernel, the GEMV strategy, the bytes on the GPU and the shape.
    pub fn info(&self) -> Result<Js<BenchInfo>, LabJsError> {
        let b = &self.inner;
        to_js(&BenchInfo {
            format: b.format.clone(),
            kernel: b.matrix.kernel_label(),
            strategy: b.matrix.gemv_strategy().label(),
            gpu_bytes: b.matrix.gpu_bytes(),
            n: b.n,
            cols: b.matrix.cols(),
            rows: b.matrix.rows(),
        })
    }
}
