// The generation panel's KV cache and activations selects in headless Chromium (SwiftShader
// WebGPU): read from and written to the URL (kv=, act=), disabled with a note on the CPU path, a
// WebGPU run with an f16 cache gives the CPU's greedy tokens and names the format it used, and f16
// activations on SwiftShader (no shader-f16) run as f32 and say why. 4 tokens: SwiftShader is slow.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateOn, openPage, useLab } from './harness.mjs';

const lab = useLab();
const TOKENS = 4;

test('generation panel: KV cache and activations selects in the URL, ignored on the CPU, f16 on WebGPU', { timeout: 1_800_000 }, async () => {
  const { page, problems } = await openPage(lab.browser, `${lab.server.url}?format=q8_0&panel=generate&kv=int8&act=f16`);
  await page.waitForSelector('#tensor-table tbody tr', { timeout: 120_000 });
  const kv = page.locator('#gen-kv');
  assert.deepEqual(await page.locator('#gen-kv option').evaluateAll((o) => o.map((x) => x.value)), ['f32', 'f16', 'int8']);
  assert.equal(await kv.inputValue(), 'int8', 'kv=int8 from the URL');
  const act = page.locator('#gen-act');
  assert.deepEqual(await page.locator('#gen-act option').evaluateAll((o) => o.map((x) => x.value)), ['f32', 'f16']);
  assert.equal(await act.inputValue(), 'f16', 'act=f16 from the URL');
  await page.fill('#gen-prompt', 'The whale');
  await page.fill('#gen-max', String(TOKENS));
  await page.fill('#gen-temp', '0');

  await page.selectOption('#gen-device', 'cpu');
  assert.equal(await kv.isDisabled(), true);
  assert.match(await page.locator('#gen-kv-note').innerText(), /CPU path keeps an f32 KV cache/);
  assert.equal(await act.isDisabled(), true);
  assert.equal(await page.locator('#gen-act-note').innerText(), 'The CPU path computes f32 activations.');
  const cpu = await generateOn(page, 'cpu');
  assert.equal(cpu.used, 'cpu');
  assert.equal(cpu.base.length, TOKENS);
  assert.equal(cpu.kvUsed, 'f32');
  assert.match(cpu.kvNote, /^Last run: KV cache f32 on the CPU \(int8 ignored: the CPU path keeps f32\)\.$/);
  assert.equal(cpu.actNote, 'Last run: activations f32 (f16 ignored: the CPU path computes f32).');

  await page.selectOption('#gen-device', 'webgpu');
  assert.equal(await kv.isDisabled(), false);
  await page.selectOption('#gen-kv', 'f16');
  assert.equal(new URL(page.url()).searchParams.get('kv'), 'f16');
  const gpu = await generateOn(page, 'webgpu');
  console.log(`# WebGPU f16 KV: ${gpu.kvNote} ${gpu.actNote}`);
  assert.equal(gpu.used, 'webgpu');
  assert.equal(gpu.kvUsed, 'f16');
  assert.equal(gpu.kvNote, 'Last run: KV cache f16 on WebGPU.');
  // SwiftShader has no shader-f16: the f16 upload is refused by the wasm core, the lab uploads
  // f32 activations instead and says why (never a silent switch).
  assert.equal(await act.isDisabled(), false);
  assert.equal(gpu.actUsed, 'f32');
  assert.match(gpu.actNote, /^Last run: activations f32\. f16 activations need the adapter's shader-f16 feature \(.*no shader-f16.*\): WebGPU ran f32 activations\.$/);
  // f16 keys/values move the logits by ~1e-2 (tests/rust/gpu_kv_cache.rs): same greedy tokens.
  assert.deepEqual(gpu.base, cpu.base);
  assert.deepEqual(gpu.quantized, cpu.quantized);

  // The choice survives a reload (the shared link).
  await page.reload();
  await page.waitForSelector('#gen-kv');
  assert.equal(await page.locator('#gen-kv').inputValue(), 'f16');
  assert.equal(await page.locator('#gen-act').inputValue(), 'f16');
  assert.deepEqual(problems, []);
});
