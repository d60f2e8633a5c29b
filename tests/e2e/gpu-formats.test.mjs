// Every weight format with a dedicated WGSL kernel, on WebGPU in headless Chromium (SwiftShader,
// no shader-f16: the f32-activation path): the default model re-quantized in the browser to the
// format, then greedy generation in the generation panel on the CPU (wasm) and on WebGPU. The
// quantized side must give the CPU's tokens and text on the GPU; the GPU copy must report the
// format's dedicated kernel (not the generic dequantize-to-f16/f32 path).
//
// gpu.test.mjs covers the base (Q4_1 as stored) and q8_0 with more tokens; this file covers the
// other dedicated kernels with a few tokens each, since SwiftShader runs a 135M model slowly.
// The native twin (32 greedy tokens per format on lavapipe) is tests/rust/gpu_forward.rs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateOn, openPage, useLab } from './harness.mjs';

const lab = useLab();
const TOKENS = 4;

/** format typed in the lab → the kernel the GPU copy must name (kernel summary of GpuModel). */
const FORMATS = [
  ['f32', 'F32 (dedicated)'],
  ['f16', 'F16 (dedicated)'],
  ['q4_0', 'Q4_0 (dedicated)'],
  ['q4_k', 'Q4_K (dedicated)'],
  ['q6_k', 'Q6_K (dedicated)'],
  ['int8-sym-channel', 'int8-sym-channel (dedicated)'],
  ['int4-asym-g64', 'int4-asym-g64 (dedicated)'],
  ['nf4', 'nf4-b64 (dedicated)'],
];

test('every dedicated-kernel format: WebGPU greedy tokens equal the CPU tokens in Chromium', { timeout: 5_400_000 }, async () => {
  const { page, problems } = await openPage(lab.browser, `${lab.server.url}?format=${FORMATS[0][0]}&panel=generate`);
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
    assert.deepEqual(gpu.quantized, cpu.quantized, `${format}: greedy tokens on WebGPU vs CPU`);
    assert.equal(gpu.quantizedText, cpu.quantizedText, `${format}: text`);
  }
  assert.deepEqual(problems, []);
});
