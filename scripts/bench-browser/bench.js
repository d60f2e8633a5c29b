// Benchmark steps for scripts/bench-browser.mjs, exposed as window.bench.*; each returns plain
// JSON. Both engines run the same GGUF bytes, the same prompt text, greedy, the same token
// budget; the driver runs one untimed warm-up generation of the same prompt per engine and
// device first (first-use costs: wasm tier-up, GPU pipelines, llama.cpp's buffers).
//
// Timing definitions (the engines' own counters, which agree):
// - prefill tokens/s = prompt tokens / time to run the prompt (and pick the first token);
// - decode tokens/s = generated tokens / time from the first token to the last.
// quantlab: GenerateStats (model::generate / gpu::forward::generate); wllama: llama-server's
// `timings` (prompt_per_second, predicted_per_second).
import init, { GpuLabModel, LabModel } from '/pkg/quantlab.js';
import { Wllama } from '/wllama/esm/index.js';

const state = { bytes: null, lab: null, gpu: null };

async function bytes(url) {
  if (!state.bytes || state.bytes.url !== url) {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    state.bytes = { url, data: new Uint8Array(await res.arrayBuffer()) };
  }
  return state.bytes.data;
}

const ms = () => performance.now();

/** quantlab's generate result → the common row shape. */
function qlRow(r, wallMs) {
  return {
    promptTokens: r.promptTokens,
    generated: r.tokenIds.length,
    prefillTps: r.prefillTokensPerSec,
    decodeTps: r.decodeTokensPerSec,
    wallMs,
    text: r.text,
  };
}

async function timed(f) {
  const t = ms();
  const r = await f();
  return [r, ms() - t];
}

window.bench = {
  env: async () => {
    const gpu = navigator.gpu;
    const adapter = gpu ? await gpu.requestAdapter({ powerPreference: 'high-performance' }) : null;
    const info = adapter?.info ?? {};
    return {
      userAgent: navigator.userAgent,
      hardwareConcurrency: navigator.hardwareConcurrency,
      crossOriginIsolated: self.crossOriginIsolated,
      webgpu: adapter
        ? {
            vendor: info.vendor,
            architecture: info.architecture,
            description: info.description,
            isFallback: info.isFallbackAdapter ?? adapter.isFallbackAdapter ?? null,
            shaderF16: adapter.features.has('shader-f16'),
            subgroups: adapter.features.has('subgroups'),
          }
        : null,
    };
  },

  /** Loads the wasm core and the model (untimed setup; load time reported). */
  quantlabLoad: async (modelUrl) => {
    await init({ module_or_path: '/pkg/quantlab_bg.wasm' });
    const data = await bytes(modelUrl);
    const [lab, loadMs] = await timed(() => LabModel.fromGguf(data));
    state.lab = lab;
    return { loadMs, bitsPerWeight: lab.info().bitsPerWeight, sourceFormat: lab.info().sourceFormat };
  },

  /** The CPU (wasm, this thread) path. */
  quantlabCpu: async (prompt, maxTokens) => {
    const [r, wallMs] = await timed(() => state.lab.generate(prompt, { maxTokens }));
    return qlRow(r, wallMs);
  },

  /** Uploads the model to WebGPU once (timed apart: repacking, buffers, pipelines). */
  quantlabGpuUpload: async () => {
    const [gpu, uploadMs] = await timed(() => GpuLabModel.upload(state.lab));
    state.gpu = gpu;
    const info = gpu.info();
    return { uploadMs, adapter: info.adapter, kernels: info.kernels, isFallback: info.isFallback, shaderF16: info.shaderF16 };
  },

  /** The WebGPU path (GPU sampling, 4-byte readback per token). */
  quantlabGpu: async (prompt, maxTokens) => {
    const [r, wallMs] = await timed(() => state.gpu.generate(prompt, { maxTokens }));
    return qlRow(r, wallMs);
  },

  /** The lab's 'auto' choice: the CPU-vs-WebGPU decode probe, run once per model as the lab does. */
  quantlabProbe: async () => {
    const [probe, probeMs] = await timed(() => state.gpu.probe());
    return { ...probe, probeMs };
  },

  quantlabFree: () => {
    state.gpu?.free();
    state.lab?.free();
    state.gpu = state.lab = null;
  },

  /**
   * wllama (llama.cpp in wasm) on the same bytes: `threads` wasm threads; `webgpu` false
   * forces the CPU (n_gpu_layers 0), true leaves wllama's default (all layers on WebGPU).
   */
  wllama: async (modelUrl, prompt, maxTokens, threads, webgpu) => {
    // A fresh instance each call: loadModel can run once per instance.
    const logs = [];
    const keep = (level) => (...args) => logs.push(`${level}: ${args.map(String).join(' ')}`);
    const w = new Wllama(
      { default: '/wllama/esm/wasm/wllama.wasm' },
      { logger: { debug: keep('debug'), log: keep('log'), warn: keep('warn'), error: keep('error') } },
    );
    w.setCompat(null); // never the CDN build
    try {
      const blob = new Blob([await bytes(modelUrl)]);
      const params = { n_threads: threads, n_ctx: 512, seed: 0 };
      if (!webgpu) params.n_gpu_layers = 0;
      const [, loadMs] = await timed(() => w.loadModel([blob], params));
      const opts = { prompt, temperature: 0, cache_prompt: false };
      const [, warmMs] = await timed(() => w.createCompletion({ ...opts, max_tokens: 2 }));
      const [r, wallMs] = await timed(() => w.createCompletion({ ...opts, max_tokens: maxTokens }));
      const t = r.timings;
      return {
        promptTokens: t.prompt_n,
        cachedTokens: t.cache_n,
        generated: t.predicted_n,
        prefillTps: t.prompt_per_second,
        decodeTps: t.predicted_per_second,
        wallMs,
        loadMs,
        warmMs,
        text: r.choices[0].text,
        threads: w.getNumThreads?.() ?? threads,
        multithread: w.isMultithread(),
        version: Wllama.getLibllamaVersion?.(),
        // Where llama.cpp put the weights ("CPU", "WebGPU", ...): its backends log their buffers.
        modelBuffers: [...new Set(logs.map((l) => /load_tensors:\s+(\S+) model buffer size/.exec(l)?.[1]).filter(Boolean))],
        backendLog: window.ALL_LOGS ? logs : logs.filter((l) => /webgpu|offload|device|buffer size/i.test(l)).slice(0, 40),
      };
    } finally {
      await w.exit().catch(() => {});
    }
  },
};
document.getElementById('status').textContent = 'ready';
window.benchReady = true;
