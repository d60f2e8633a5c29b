// The Methods panel on the default model: the method list and each method's support come from
// the core (GPTQ is offered for q4_0, not for Q4_K_M), a preset shows its planned per-tensor
// types, and an imatrix run on a short calibration text (chapters 4+, 128 tokens)
// lands in the Compare table as its own row with paired statistics against the base; a second
// run with the same settings reuses the saved result; Compare runs a preset (llama.cpp's types,
// counted per type). GPTQ and AWQ on the whole default model take minutes in the browser, so
// AWQ, HQQ, the HF AWQ export and the importance matrix kept across page loads run here on the
// tiny llama of tiny-gguf.mjs (the wasm tests hold every method's export byte-identical to the CLI's).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { readGgufHeader } from './gguf-read.mjs';
import { tinyLlama } from './tiny-gguf.mjs';
import { artifacts, downloadOf, openPage, useLab } from './harness.mjs';

const lab = useLab();

const rowOf = (page, format) => page.locator(`#compare-table tr[data-format="${format}"]`);

test('methods panel: presets, supported methods, an imatrix run into Compare', { timeout: 600_000 }, async () => {
  const { page, problems } = await openPage(lab.browser, `${lab.server.url}?panel=methods&compare=&presets=q4_0`);
  await page.waitForSelector('#tensor-table tbody tr', { timeout: 120_000 });
  assert.equal(await page.locator('#methods-panel').isHidden(), false);
  const methods = await page.locator('input[name=methods-method]').evaluateAll((r) => r.map((x) => x.value));
  assert.deepEqual(methods, ['rtn', 'imatrix', 'gptq', 'awq', 'hqq']);

  // Q4_K_M: llama-quantize's mix (Q4_K with Q6_K / Q5_0 / Q8_0 where its rules say), no GPTQ.
  const q4km = await page.locator('#methods-target option', { hasText: 'q4_k_m' }).getAttribute('value');
  await page.selectOption('#methods-target', q4km);
  await page.waitForFunction(() => document.querySelector('#methods-planned p')?.textContent?.startsWith('q4_k_m'));
  const types = JSON.parse(await page.locator('#methods-planned p').getAttribute('data-types'));
  assert.equal(Object.values(types).reduce((a, b) => a + b, 0), 211);
  assert.ok(types.Q4_K > 0 && types.Q6_K > 0, JSON.stringify(types));
  assert.equal(await page.locator('input[name=methods-method][value=gptq]').isDisabled(), true);
  assert.equal(await page.locator('input[name=methods-method][value=imatrix]').isDisabled(), false);

  // q4_0 (one type everywhere) with imatrix, 128 tokens of the default text; a short protocol.
  const q40 = await page.locator('#methods-target option', { hasText: 'q4_0 (one type everywhere)' }).getAttribute('value');
  await page.selectOption('#methods-target', q40);
  await page.waitForFunction(() => document.querySelector('#methods-planned p')?.textContent?.startsWith('q4_0'));
  assert.equal(await page.locator('input[name=methods-method][value=gptq]').isDisabled(), false);
  await page.check('input[name=methods-method][value=imatrix]');
  await page.selectOption('#methods-tokens', '128');
  await page.selectOption('#compare-ctx', '64');
  await page.selectOption('#compare-windows', '1');
  await page.click('#methods-run');
  await page.waitForFunction(() => document.querySelector('#methods-body')?.dataset.done || document.querySelector('#methods-panel > .error:not([hidden])'), null, { timeout: 300_000 });
  const error = page.locator('#methods-panel > .error:not([hidden])');
  assert.equal(await error.count(), 0, (await error.count()) ? await error.innerText() : '');
  assert.match(await page.locator('#methods-result').innerText(), /q4_0 · imatrix \(calibrated on Moby-Dick chapters? 4(–\d+)?, 128 tokens\)/);
  const row = rowOf(page, 'q4_0 · imatrix');
  await row.waitFor();
  const ppl = Number(await row.getAttribute('data-ppl'));
  assert.ok(Number.isFinite(ppl) && ppl > 1, `ppl ${ppl}`);
  assert.ok(Number(await row.getAttribute('data-delta-ppl-stderr')) > 0);
  assert.equal(Number(await row.getAttribute('data-bpw')), 4.5);
  await page.locator('#methods-panel').screenshot({ path: join(artifacts, 'methods.png') });

  // The calibrated model as a file (the cached importance matrix, no second calibration): a GGUF
  // whose block weights are Q4_0, with codes that are not round to nearest's (the Export panel's
  // q4_0 file). The wasm tests hold the same export byte-identical to `quantlab quantize --imatrix`.
  assert.equal(await page.locator('#methods-export').isVisible(), true);
  const weighted = await downloadOf(page, () => page.click('#methods-export'));
  assert.equal(weighted.name, 'SmolLM2-135M-Instruct.Q4_1.q4_0.imatrix.gguf');
  const wHeader = readGgufHeader(weighted.bytes);
  assert.equal(wHeader.tensors.length, 272);
  assert.equal(wHeader.tensors.find((t) => t.name === 'blk.0.ffn_down.weight').typeName, 'Q4_0');
  assert.match(await page.locator('#methods-export-summary').innerText(), /Q4_0/);
  await page.fill('#format', 'q4_0');
  await page.press('#format', 'Enter');
  await page.waitForFunction(() => document.querySelector('#export-run')?.dataset.state === 'valid', null, { timeout: 60_000 });
  const plain = await downloadOf(page, () => page.click('#export-run'));
  const tensorBytes = (file, header) => {
    const t = header.tensors.find((x) => x.name === 'blk.0.ffn_down.weight');
    return file.bytes.subarray(t.offset, t.offset + (576 * 1536 / 32) * 18);
  };
  const pHeader = readGgufHeader(plain.bytes);
  assert.equal(pHeader.tensors.find((t) => t.name === 'blk.0.ffn_down.weight').typeName, 'Q4_0');
  assert.equal(Buffer.compare(tensorBytes(weighted, wHeader), tensorBytes(plain, pHeader)) !== 0, true, 'imatrix changed the codes');

  // The same settings again: the saved result, nothing measured.
  const first = await page.locator('#methods-body').getAttribute('data-done');
  await page.click('#methods-run');
  await page.waitForFunction((d) => document.querySelector('#methods-body')?.dataset.done !== d, first, { timeout: 60_000 });
  assert.equal(await page.locator('#methods-steps li[data-cached]').count(), 1);
  assert.equal(Number(await rowOf(page, 'q4_0 · imatrix').getAttribute('data-ppl')), ppl);

  // Compare offers the presets too: q4_0 with llama.cpp's types keeps the tied embedding at Q8_0.
  assert.deepEqual(await page.locator('input[name=compare-preset]:checked').evaluateAll((b) => b.map((x) => x.value)), ['q4_0']);
  assert.equal(await page.locator('input[name=compare-format]:checked').count(), 0);
  await page.click('#compare-run');
  await page.waitForFunction(() => document.querySelector('#compare-body')?.dataset.done || document.querySelector('#compare-panel > .error:not([hidden])'), null, { timeout: 300_000 });
  assert.equal(await page.locator('#compare-panel > .error:not([hidden])').count(), 0);
  const preset = rowOf(page, 'q4_0 (llama.cpp types)');
  assert.ok(Number(await preset.getAttribute('data-ppl')) > 1);
  const counts = JSON.parse(await preset.locator('td[data-types]').getAttribute('data-types'));
  assert.deepEqual(Object.fromEntries(Object.entries(counts).map(([t, n]) => [t.toUpperCase(), n])), { Q8_0: 1, Q4_0: 210 });
  assert.deepEqual(problems, []);
});

/** The lab at `query` with the tiny llama opened from a file (the same bytes every time, so the same model hash). */
async function openTiny(page, url) {
  await page.goto(url);
  await page.waitForFunction(() => document.querySelector('#core-status')?.textContent?.includes('core'));
  await page.setInputFiles('#file-input', { name: 'tiny-llama.gguf', mimeType: 'application/octet-stream', buffer: TINY });
  await page.waitForSelector('#tensor-table tbody tr', { timeout: 60_000 });
}

const TINY = tinyLlama({ dim: 128, ff: 256, layers: 2, ctx: 128 });

/** The JSON header of a safetensors file. */
function safetensorsHeader(bytes) {
  const n = Number(Buffer.from(bytes).readBigUInt64LE(0));
  return { header: JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8')), start: 8 + n };
}

test('AWQ with layer progress and cancel (KL ≤ RTN at int4-sym-g64), HQQ, and the HF AWQ checkpoint of an AWQ run', { timeout: 600_000 }, async () => {
  const { page, problems } = await openPage(lab.browser, `${lab.server.url}?model=none&panel=methods`);
  await openTiny(page, `${lab.server.url}?model=none&panel=methods`);
  const methods = await page.locator('input[name=methods-method]').evaluateAll((r) => r.map((x) => x.value));
  assert.deepEqual(methods, ['rtn', 'imatrix', 'gptq', 'awq', 'hqq']);
  const out = await page.evaluate(async () => {
    const client = globalThis.quantlabClient;
    const dataUrl = new URL('data/moby-dick/', location.href).href;
    const run = { mix: 'pure', calib: { kind: 'default' }, tokens: 256, ctx: 64, maxWindows: 2, dataUrl, saved: [] };
    const awqArgs = { ...run, target: 'int4-sym-g64', method: 'awq' };
    // Cancelled at the first calibration progress.
    let cancelled = null;
    const handle = client.startCall('runMethod', awqArgs, (phase, done) => phase === 'calibrate' && done > 0 && handle.cancel());
    await handle.result.catch((e) => (cancelled = e.name));
    const progress = [];
    const awq = await client.call('runMethod', awqArgs, (phase, done, total, step) => progress.push({ phase, done, total, label: step?.label }));
    const rtn = await client.call('runMethod', { ...awqArgs, method: 'rtn' });
    const hqq = await client.call('runMethod', { ...run, target: 'int4-asym-g64', method: 'hqq' });
    const hqqRtn = await client.call('runMethod', { ...run, target: 'int4-asym-g64', method: 'rtn' });
    const hf = async (method) => {
      const r = await client.call('exportHfLayout', { format: 'int4-sym-g64', layout: 'awq', method, calib: { kind: 'default' }, tokens: 256, dataUrl });
      return { bytes: [...new Uint8Array(await r.safetensors.arrayBuffer())], config: r.config, quantized: r.quantized, summary: r.manifest.summary };
    };
    return { cancelled, progress, awq: awq.result, rtn: rtn.result, hqq: hqq.result, hqqRtn: hqqRtn.result, hfAwq: await hf('awq'), hfRtn: await hf('rtn') };
  });
  assert.equal(out.cancelled, 'CancelledError');
  // Progress in layers (0..2) while calibrating, ending at the last layer.
  const calib = out.progress.filter((p) => p.phase === 'calibrate' && p.total > 0);
  assert.ok(calib.length >= 2, JSON.stringify(out.progress.slice(0, 5)));
  assert.deepEqual([calib.at(-1).done, calib.at(-1).total], [2, 2]);
  assert.match(calib[0].label, /^AWQ: calibrate and quantize layer by layer/);
  assert.equal(out.awq.format, 'int4-sym-g64 · AWQ');
  assert.equal(out.awq.method.name, 'awq');
  assert.equal(out.awq.method.calibration.tokens, 256);
  const kl = (r) => r.paired.klMean;
  assert.ok(Number.isFinite(kl(out.awq)) && kl(out.awq) > 0, `AWQ KL ${kl(out.awq)}`);
  assert.ok(kl(out.awq) <= kl(out.rtn), `AWQ KL ${kl(out.awq)} vs RTN ${kl(out.rtn)}`);
  assert.equal(out.awq.bitsPerWeight, out.rtn.bitsPerWeight);
  // HQQ: no calibration text, its own row, a finite KL that is not RTN's (its codes differ).
  assert.equal(out.hqq.format, 'int4-asym-g64 · HQQ');
  assert.equal(out.hqq.method.calibration, undefined);
  assert.ok(Number.isFinite(kl(out.hqq)) && kl(out.hqq) !== kl(out.hqqRtn), `HQQ KL ${kl(out.hqq)} vs RTN ${kl(out.hqqRtn)}`);

  // The HF AWQ checkpoint with AWQ's codes: AutoAWQ's config, qweight [in, out / 8], codes not RTN's.
  const config = JSON.parse(out.hfAwq.config);
  assert.deepEqual([config.quantization_config.quant_method, config.quantization_config.bits, config.quantization_config.group_size], ['awq', 4, 64]);
  assert.equal(out.hfAwq.quantized, 14);
  assert.match(out.hfAwq.summary, /awq codes/);
  const qweight = (file) => {
    const bytes = new Uint8Array(file.bytes);
    const { header, start } = safetensorsHeader(bytes);
    const t = header['model.layers.0.mlp.down_proj.qweight'];
    return { shape: t.shape, dtype: t.dtype, data: Buffer.from(bytes.subarray(start + t.data_offsets[0], start + t.data_offsets[1])) };
  };
  const [a, r] = [qweight(out.hfAwq), qweight(out.hfRtn)];
  assert.deepEqual([a.shape, a.dtype], [[256, 128 / 8], 'I32']);
  assert.equal(a.data.length, r.data.length);
  assert.equal(a.data.equals(r.data), false, "AWQ's codes differ from round to nearest's");
  assert.deepEqual(problems, []);
});

test('an importance matrix is kept across page loads: reused (marked cached, same numbers), and a corrupt one is dropped', { timeout: 600_000 }, async () => {
  const url = `${lab.server.url}?model=none&panel=methods&compare=`;
  const { page, problems } = await openPage(lab.browser, url);
  const runImatrix = async () => {
    await page.check('input[name=methods-method][value=imatrix]');
    await page.selectOption('#methods-tokens', '128');
    await page.selectOption('#compare-ctx', '64');
    await page.selectOption('#compare-windows', '1');
    const before = await page.locator('#methods-body').getAttribute('data-done');
    await page.click('#methods-run');
    await page.waitForFunction((d) => document.querySelector('#methods-body')?.dataset.done !== d || document.querySelector('#methods-panel > .error:not([hidden])'), before, { timeout: 300_000 });
    const error = page.locator('#methods-panel > .error:not([hidden])');
    assert.equal(await error.count(), 0, (await error.count()) ? await error.innerText() : '');
    const step = page.locator('#methods-steps li[data-step="0"]');
    return { ppl: Number(await rowOf(page, 'q4_0 · imatrix').getAttribute('data-ppl')), calibration: await step.getAttribute('data-calibration'), label: await step.innerText(), result: await page.locator('#methods-result').innerText() };
  };
  // Saved results would skip the run: each load starts with none, so every run measures.
  const reload = async () => {
    await page.evaluate(() => new Promise((resolve) => { const r = indexedDB.deleteDatabase('quantlab'); r.onsuccess = r.onerror = r.onblocked = resolve; }));
    await openTiny(page, url);
  };
  await openTiny(page, url);
  const first = await runImatrix();
  assert.equal(first.calibration, 'computed');
  assert.ok(first.ppl > 1, `ppl ${first.ppl}`);

  await reload();
  const second = await runImatrix();
  assert.equal(second.calibration, 'saved');
  assert.match(second.label, /cached/);
  assert.match(second.result, /cached importance matrix/);
  assert.equal(second.ppl, first.ppl);

  // A corrupt entry: dropped with a note, the matrix computed again (the same numbers).
  const corrupted = await page.evaluate(async () => {
    const cache = await caches.open('quantlab-calibration');
    const keys = await cache.keys();
    for (const k of keys) await cache.put(k, new Response(new Uint8Array([71, 71, 85, 70, 3, 0, 0, 0, 1, 2, 3]), { headers: { 'x-quantlab-text-tokens': '128' } }));
    return keys.length;
  });
  assert.equal(corrupted, 1);
  await reload();
  const third = await runImatrix();
  assert.equal(third.calibration, 'computed');
  assert.match(third.label, /a saved importance matrix was dropped, not used/);
  assert.equal(third.ppl, first.ppl);
  assert.deepEqual(problems, []);
});
