// Every weight format with a dedicated WGSL kernel, on WebGPU in headless Chromium (SwiftShader,
// no shader-f16: the f32-activation path): a small random llama (rows of 256 and 512, so every
// format applies to every matrix, k-quants included) re-quantized in the browser to the format,
// then greedy generation in the generation panel on the CPU (wasm) and on WebGPU. The quantized
// side must give the CPU's tokens and text on the GPU; the GPU copy must report the format's
// dedicated kernel (not the generic dequantize-to-f16/f32 path).
//
// The default model costs ~40 s per format on SwiftShader (upload and pipelines, not the tokens),
// so the real model runs in gpu.test.mjs (the base as stored and q8_0, more tokens) and natively
// for every format (32 greedy tokens per format on lavapipe: tests/rust/gpu_forward.rs).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateOn, openPage, useLab } from './harness.mjs';
import { tinyLlama } from './tiny-gguf.mjs';

const lab = useLab();
const TOKENS = 6;

/** format typed in the lab → the kernel the GPU copy must name (kernel summary of GpuModel). */
const FORMATS = [
  ['f32', 'F32 (dedicated)'],
  ['f16', 'F16 (dedicated)'],
  ['q4_0', 'Q4_0 (dedicated)'],
  ['q5_0', 'Q5_0 (dedicated)'],
  ['q5_1', 'Q5_1 (dedicated)'],
  ['iq4_nl', 'IQ4_NL (dedicated)'],
  ['q2_k', 'Q2_K (dedicated)'],
  ['q3_k', 'Q3_K (dedicated)'],
  ['q4_k', 'Q4_K (dedicated)'],
  ['q5_k', 'Q5_K (dedicated)'],
  ['q6_k', 'Q6_K (dedicated)'],
  ['int8-sym-channel', 'int8-sym-channel (dedicated)'],
  ['int4-asym-g64', 'int4-asym-g64 (dedicated)'],
  // INT3: codes across u32 word boundaries (matmul_int_packed.wgsl).
  ['int3-asym-g64', 'int3-asym-g64 (dedicated)'],
  ['nf4', 'nf4-b64 (dedicated)'],
  // FP8 (both variants, both scale granularities between them) and per-tensor INT: ~6 s each.
  ['fp8-e4m3-channel', 'fp8-e4m3-channel (dedicated)'],
  ['fp8-e5m2-tensor', 'fp8-e5m2-tensor (dedicated)'],
  ['int4-sym-tensor', 'int4-sym-tensor (dedicated)'],
];

test('every dedicated-kernel format: WebGPU greedy tokens equal the CPU tokens in Chromium', { timeout: 1_800_000 }, async () => {
  const { page, problems } = await openPage(lab.browser, `${lab.server.url}?model=none&format=${FORMATS[0][0]}&panel=generate`);
  await page.waitForFunction(() => document.querySelector('#core-status')?.textContent?.includes('core'));
  await page.setInputFiles('#file-input', { name: 'tiny-llama.gguf', mimeType: 'application/octet-stream', buffer: tinyLlama({ dim: 256, ff: 512 }) });
  await page.waitForSelector('#tensor-table tbody tr', { timeout: 120_000 });
  await page.fill('#gen-prompt', 'The whale');
  await page.fill('#gen-max', String(TOKENS));
  await page.fill('#gen-temp', '0');
  for (const [format, kernel] of FORMATS) {
    await page.fill('#format', format);
    await page.press('#format', 'Enter');
    const started = Date.now();
    const cpu = await generateOn(page, 'cpu');
    assert.equal(cpu.used, 'cpu');
    assert.equal(cpu.quantized.length, TOKENS, `${format}: CPU tokens`);
    const gpu = await generateOn(page, 'webgpu');
    console.log(`# ${format}: ${gpu.kernels}; ${((Date.now() - started) / 1000).toFixed(0)} s; ${gpu.note}`);
    assert.equal(gpu.used, 'webgpu', `${format}: WebGPU was selected but not used: ${gpu.note}`);
    assert.ok(gpu.kernels?.includes(kernel), `${format}: expected ${kernel} in the kernels, got ${gpu.kernels}`);
    assert.ok(!gpu.kernels.includes('generic'), `${format}: a matrix took the generic path: ${gpu.kernels}`);
    assert.deepEqual(gpu.quantized, cpu.quantized, `${format}: greedy tokens on WebGPU vs CPU`);
    assert.equal(gpu.quantizedText, cpu.quantizedText, `${format}: text`);
  }
  assert.deepEqual(problems, []);
});
