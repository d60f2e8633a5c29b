// The whole model on WebGPU in headless Chromium (SwiftShader: a software fallback adapter, no
// shader-f16): the generation panel's Device select. Greedy generation on WebGPU must give the
// CPU's tokens for the same prompt (the GPU forward + GPU sampling against the CPU forward), and
// `auto` must name the adapter and give its measured reason; a device lost part-way must hand
// over to the CPU with a notice and the CPU's tokens. SwiftShader runs a 135M model
// slowly, so the prompt is short and the tokens few.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { artifacts, generateOn, openPage, useLab } from './harness.mjs';
import { tinyLlama } from './tiny-gguf.mjs';

const lab = useLab();
const TOKENS = 8;

test('generation panel: WebGPU greedy tokens equal the CPU tokens; auto names the adapter and why', { timeout: 2_400_000 }, async () => {
  const { page, problems } = await openPage(lab.browser, `${lab.server.url}?format=q8_0&panel=generate`);
  await page.waitForSelector('#tensor-table tbody tr', { timeout: 120_000 });
  await page.fill('#gen-prompt', 'The whale');
  await page.fill('#gen-max', String(TOKENS));
  await page.fill('#gen-temp', '0');
  assert.deepEqual(await page.locator('#gen-device option').evaluateAll((o) => o.map((x) => x.value)), ['auto', 'cpu', 'webgpu']);

  const cpu = await generateOn(page, 'cpu');
  assert.equal(cpu.used, 'cpu');
  assert.equal(cpu.base.length, TOKENS);

  const gpu = await generateOn(page, 'webgpu');
  console.log(`# WebGPU: ${gpu.note}`);
  assert.equal(gpu.used, 'webgpu', `WebGPU was selected but not used: ${gpu.note}`);
  assert.ok(gpu.adapter, 'the adapter is named');
  assert.match(gpu.note, new RegExp(`Ran on WebGPU \\(adapter '${gpu.adapter.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}'\\) at [\\d.]+ tok/s`));
  // The whole-model forward and sampling on the GPU reproduce the CPU's greedy tokens.
  assert.deepEqual(gpu.base, cpu.base);
  assert.equal(gpu.text, cpu.text);
  assert.deepEqual(gpu.quantized, cpu.quantized);
  assert.ok(gpu.kernels?.includes('Q8_0 (dedicated)'), `q8_0 kernels: ${gpu.kernels}`);
  await page.locator('#generate-panel').screenshot({ path: join(artifacts, 'generate-webgpu.png') });

  const auto = await generateOn(page, 'auto');
  console.log(`# auto: ${auto.note}`);
  assert.ok(auto.used === 'cpu' || auto.used === 'webgpu');
  assert.match(auto.note, new RegExp(`auto: WebGPU adapter '[^']+' (is a software fallback )?\\(.+\\): CPU decodes [\\d.]+ tok/s vs GPU [\\d.]+ tok/s → using ${auto.used === 'cpu' ? 'the CPU' : 'WebGPU'}$`));
  assert.ok(auto.note.includes(`'${gpu.adapter}'`));
  // The choice follows the stated measurement.
  const [, cpuRate, gpuRate] = /CPU decodes ([\d.]+) tok\/s vs GPU ([\d.]+) tok\/s/.exec(auto.note).map(Number);
  assert.equal(auto.used, gpuRate > cpuRate ? 'webgpu' : 'cpu');
  // Whichever backend auto chose, greedy output is the same tokens.
  assert.deepEqual(auto.base, cpu.base);

  assert.deepEqual(problems, []);
});

test('generation panel: WebGPU selected in a browser without WebGPU falls back to the CPU and says why', { timeout: 600_000 }, async () => {
  // The same headless Chromium without --enable-unsafe-webgpu: on Linux it offers no WebGPU adapter.
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const { page, problems } = await openPage(browser, `${lab.server.url}?format=q8_0&panel=generate`);
    await page.waitForSelector('#tensor-table tbody tr', { timeout: 120_000 });
    await page.fill('#gen-prompt', 'The whale');
    await page.fill('#gen-max', '2');
    const run = await generateOn(page, 'webgpu');
    console.log(`# no WebGPU: ${run.note}`);
    assert.equal(run.used, 'cpu');
    assert.equal(run.base.length, 2);
    assert.match(run.note, /^WebGPU failed \((this browser exposes no WebGPU|WebGPU is present but the browser offered no adapter).*\); generating on the CPU instead\. Ran on the CPU at [\d.]+ tok\/s\./);
    assert.equal(await page.locator('#gen-device-note').getAttribute('class'), 'caption notice');
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

test('WebGPU device lost mid-generation: the run finishes on the CPU with a notice and the CPU-only tokens', { timeout: 600_000 }, async () => {
  // A small random llama keeps the upload and the GPU tokens quick on SwiftShader.
  const { page, problems } = await openPage(lab.browser, `${lab.server.url}?model=none&format=q8_0&panel=generate`);
  await page.waitForFunction(() => document.querySelector('#core-status')?.textContent?.includes('core'));
  await page.setInputFiles('#file-input', { name: 'tiny-llama.gguf', mimeType: 'application/octet-stream', buffer: tinyLlama() });
  await page.waitForSelector('#tensor-table tbody tr', { timeout: 120_000 });
  await page.fill('#gen-prompt', 'The whale');
  await page.fill('#gen-max', String(TOKENS));
  await page.fill('#gen-temp', '0');
  const cpu = await generateOn(page, 'cpu');
  assert.equal(cpu.base.length, TOKENS);

  // The panel's diagnostic hook destroys the device after 3 base tokens on WebGPU: the run
  // completes on the CPU from there, says so, and greedy gives the CPU-only run's tokens on both
  // sides.
  await page.evaluate(() => (document.querySelector('#generate-body').dataset.loseDeviceAfter = '3'));
  const lost = await generateOn(page, 'webgpu');
  await page.evaluate(() => delete document.querySelector('#generate-body').dataset.loseDeviceAfter);
  console.log(`# device lost: ${lost.note}`);
  assert.equal(await page.locator('#gen-device-note').getAttribute('data-device-lost'), 'base:3');
  assert.match(lost.note, /^The WebGPU device was lost at generated token 4 of the base model \(.+\): its first 3 tokens came from WebGPU, the rest ran on the CPU from there, giving the tokens the CPU gives, and so did the quantized model\. Ran on the CPU at [\d.]+ tok\/s\./);
  assert.equal(await page.locator('#gen-device-note').getAttribute('class'), 'caption notice');
  assert.equal(lost.used, 'cpu');
  assert.deepEqual(lost.base, cpu.base);
  assert.equal(lost.text, cpu.text);
  assert.deepEqual(lost.quantized, cpu.quantized);
  // The lost device was dropped: the next GPU work acquires a fresh one (the adapter self-test runs on it).
  const next = await page.evaluate(() => globalThis.quantlabClient.call('probeGpu', {}));
  assert.equal(next.computeCheck?.passed, true, JSON.stringify(next.computeCheck));
  assert.deepEqual(problems, []);
});
