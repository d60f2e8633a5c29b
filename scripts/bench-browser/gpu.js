// Page side of scripts/bench-gpu-browser.mjs, exposed as window.gpuBench.*; each call returns
// plain JSON. `measure` uploads one benchmark matrix (GpuMatmulBench.create: the matrices of
// crate/examples/bench_gpu.rs), runs one untimed product (pipeline compilation, first dispatch),
// sizes a run to last at least MIN_RUN_MS, and returns the fastest of `runs` runs per product.
// A run = one submit of `reps` products + waiting for the GPU (GpuMatmulBench.run).
import init, { GpuMatmulBench } from '/pkg/quantlab.js';

const MIN_RUN_MS = 150;

async function env() {
  const adapter = await navigator.gpu?.requestAdapter();
  return {
    userAgent: navigator.userAgent,
    // GPUAdapterInfo's fields are getters: copy them by name (a spread copies nothing).
    webgpu: adapter
      ? { vendor: adapter.info.vendor, architecture: adapter.info.architecture, isFallbackAdapter: adapter.info.isFallbackAdapter, features: [...adapter.features] }
      : null,
  };
}

async function measure({ format, n, cols, rows, rowThreads, rowsPerThread, runs }) {
  const bench = await GpuMatmulBench.create(format, n, cols, rows, rowThreads, rowsPerThread);
  try {
    await bench.run(1);
    const timed = async (reps) => {
      const t0 = performance.now();
      await bench.run(reps);
      return (performance.now() - t0) / reps;
    };
    const once = await timed(1);
    const reps = Math.max(1, Math.ceil(MIN_RUN_MS / Math.max(once, 1e-3)));
    let best = once;
    for (let i = 0; i < runs; i++) best = Math.min(best, await timed(reps));
    return { ...bench.info(), reps, ms: best };
  } finally {
    bench.free();
  }
}

await init({ module_or_path: '/pkg/quantlab_bg.wasm' });
window.gpuBench = { env, measure };
window.benchReady = true;
document.querySelector('#status').textContent = 'ready';
