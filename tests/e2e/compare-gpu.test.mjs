// The Compare panel evaluating on WebGPU in headless Chromium (SwiftShader: a software fallback
// adapter, so the Device select defaults to the CPU). The same row measured on the CPU and on
// WebGPU in one page must agree within the GPU forward's tolerance; a device lost before a row
// hands it to the CPU with a notice, and so does a browser without WebGPU. SwiftShader is slow:
// one window of 64 tokens, and the small random llama for the fallbacks. The first test still
// takes about 3 minutes on this 2-core machine (uploading the base and q8_0 to SwiftShader and
// 2 × 63 positions there): the brief's minimum for a real model on WebGPU.
//
// Tolerance: the GPU forward's logits are within ε = 2e-3 of the CPU's (tests/rust/gpu_forward.rs,
// 30 layers of f32 products in another order), so each token's NLL moves by at most 2ε and each
// perplexity by a factor within e^{±2ε} (the derivation, with ε measured, and KL's bound are in
// tests/rust/gpu_eval.rs, which checks the same evaluation on lavapipe tightly).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { artifacts, openPage, useLab } from './harness.mjs';
import { tinyLlama } from './tiny-gguf.mjs';

const lab = useLab();
const EPS = 2e-3;
const PPL_TOL = Math.exp(2 * EPS) - 1;

/** Runs the panel on `device` and returns the q8_0 row's numbers and the device note. */
async function compareOn(page, device) {
  await page.selectOption('#compare-device', device);
  const before = await page.locator('#compare-body').getAttribute('data-done');
  const t0 = Date.now();
  await page.click('#compare-run');
  await page.waitForFunction((d) => (document.querySelector('#compare-body')?.dataset.done ?? null) !== d || document.querySelector('#compare-panel > .error:not([hidden])'), before, { timeout: 900_000 });
  const error = page.locator('#compare-panel > .error:not([hidden])');
  assert.equal(await error.count(), 0, (await error.count()) ? await error.innerText() : '');
  const row = page.locator('#compare-table tr[data-format="q8_0"]');
  const num = async (attr) => Number(await row.getAttribute(attr));
  return {
    seconds: (Date.now() - t0) / 1000,
    device: await row.getAttribute('data-device'),
    ppl: await num('data-ppl'),
    basePpl: await num('data-base-ppl'),
    kl: await num('data-kl'),
    deltaPpl: await num('data-delta-ppl'),
    protocol: await row.locator('td.protocol').innerText(),
    note: await page.locator('#compare-device-note').innerText(),
    noteClass: await page.locator('#compare-device-note').getAttribute('class'),
  };
}

test('Compare on WebGPU: q8_0 against the base equals the CPU run within the forward tolerance', { timeout: 1_800_000 }, async () => {
  const { page, problems } = await openPage(lab.browser, `${lab.server.url}?compare=q8_0&format=q8_0&panel=compare`);
  await page.waitForSelector('#tensor-table tbody tr', { timeout: 120_000 });
  await page.waitForFunction(() => document.querySelector('#gpu-status')?.dataset.state, null, { timeout: 120_000 });
  assert.deepEqual(await page.locator('#compare-device option').evaluateAll((o) => o.map((x) => x.value)), ['cpu', 'webgpu']);
  // SwiftShader is a fallback adapter: the default is the CPU.
  assert.equal(await page.locator('#compare-device').getAttribute('data-default'), 'cpu');
  assert.equal(await page.locator('#compare-device').inputValue(), 'cpu');
  await page.selectOption('#compare-ctx', '64');
  await page.selectOption('#compare-windows', '1');

  const cpu = await compareOn(page, 'cpu');
  const gpu = await compareOn(page, 'webgpu');
  console.log(`# CPU ${cpu.seconds.toFixed(1)} s: ppl ${cpu.ppl} base ${cpu.basePpl} KL ${cpu.kl}; WebGPU ${gpu.seconds.toFixed(1)} s: ppl ${gpu.ppl} base ${gpu.basePpl} KL ${gpu.kl}`);
  assert.equal(cpu.device, 'cpu');
  assert.match(cpu.protocol, /ctx 64 × 1, 63 tokens, CPU$/);
  // Measured again on WebGPU (the saved CPU row is not a cache hit for another device).
  assert.equal(gpu.device, 'webgpu', `WebGPU was selected but the row ran on the CPU: ${gpu.note}`);
  assert.match(gpu.protocol, /ctx 64 × 1, 63 tokens, WebGPU$/);
  assert.equal(gpu.noteClass, 'caption', `no fallback notice: ${gpu.note}`);
  for (const key of ['ppl', 'basePpl']) {
    assert.ok(Math.abs(gpu[key] / cpu[key] - 1) <= PPL_TOL, `${key}: WebGPU ${gpu[key]} vs CPU ${cpu[key]}`);
  }
  assert.ok(Math.abs(gpu.deltaPpl - cpu.deltaPpl) <= PPL_TOL * (cpu.ppl + cpu.basePpl) * 1.01, `Δppl: ${gpu.deltaPpl} vs ${cpu.deltaPpl}`);
  // KL: |ΔKL| ≤ 4ε + (e^{2ε} − 1)(1 + 4ε) with Σ p|log p − log q| ≤ 1 nat per position (tests/rust/gpu_eval.rs).
  assert.ok(gpu.kl > 0 && Math.abs(gpu.kl - cpu.kl) <= 4 * EPS + PPL_TOL * (1 + 4 * EPS), `KL: ${gpu.kl} vs ${cpu.kl}`);
  await page.locator('#compare-panel').screenshot({ path: join(artifacts, 'compare-webgpu.png') });
  assert.deepEqual(problems, []);
  await page.close();
});

/** Opens the lab on the tiny random llama (quick everywhere) with Compare at ctx 64 × 1. */
async function openTiny(browser) {
  const { page, problems } = await openPage(browser, `${lab.server.url}?model=none&compare=q8_0&format=q8_0&panel=compare`);
  await page.waitForFunction(() => document.querySelector('#core-status')?.textContent?.includes('core'));
  await page.setInputFiles('#file-input', { name: 'tiny-llama.gguf', mimeType: 'application/octet-stream', buffer: tinyLlama() });
  await page.waitForSelector('#tensor-table tbody tr', { timeout: 120_000 });
  await page.selectOption('#compare-ctx', '64');
  await page.selectOption('#compare-windows', '1');
  return { page, problems };
}

test('Compare on WebGPU in a browser without WebGPU: the CPU evaluates, and the note says why', { timeout: 600_000 }, async () => {
  // The same headless Chromium without --enable-unsafe-webgpu: on Linux it offers no WebGPU adapter.
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const { page, problems } = await openTiny(browser);
    await page.waitForFunction(() => document.querySelector('#gpu-status')?.dataset.state, null, { timeout: 120_000 });
    assert.equal(await page.locator('#compare-device').getAttribute('data-default'), 'cpu');
    const run = await compareOn(page, 'webgpu');
    console.log(`# no WebGPU: ${run.note}`);
    assert.equal(run.device, 'cpu');
    assert.equal(run.noteClass, 'caption notice');
    assert.match(run.note, /^WebGPU failed while evaluating q8_0 \((this browser exposes no WebGPU|WebGPU is present but the browser offered no adapter).*\); q8_0 and the rows after it were evaluated on the CPU\.$/);
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

test('Compare on WebGPU with the device lost: the row runs on the CPU, with a notice, and gives the CPU numbers', { timeout: 600_000 }, async () => {
  // A small random llama keeps the upload quick on SwiftShader.
  const { page, problems } = await openTiny(lab.browser);
  const cpu = await compareOn(page, 'cpu');

  // The panel's diagnostic hook destroys the WebGPU device once the row's models are uploaded.
  await page.evaluate(() => (document.querySelector('#compare-body').dataset.loseDeviceAfter = '0'));
  const lost = await compareOn(page, 'webgpu');
  await page.evaluate(() => delete document.querySelector('#compare-body').dataset.loseDeviceAfter);
  console.log(`# device lost: ${lost.note}`);
  assert.equal(lost.noteClass, 'caption notice');
  assert.match(lost.note, /^WebGPU failed while evaluating q8_0 \(.+\); q8_0 and the rows after it were evaluated on the CPU\.$/);
  assert.equal(lost.device, 'cpu');
  assert.match(lost.protocol, /, CPU$/);
  // The CPU's own evaluation: the same numbers to the last bit.
  assert.deepEqual([lost.ppl, lost.basePpl, lost.kl, lost.deltaPpl], [cpu.ppl, cpu.basePpl, cpu.kl, cpu.deltaPpl]);
  // The lost device was dropped: the next WebGPU run acquires a fresh one and evaluates there.
  const again = await compareOn(page, 'webgpu');
  assert.equal(again.device, 'webgpu', again.note);
  assert.deepEqual(problems, []);
  await page.close();
});
