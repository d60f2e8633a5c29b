// The Methods panel on the default model: the method list and each method's support come from
// the core (GPTQ is offered for q4_0, not for Q4_K_M), a preset shows its planned per-tensor
// types, and an imatrix run on a short calibration text (chapters 4+, 128 tokens)
// lands in the Compare table as its own row with paired statistics against the base; a second
// run with the same settings reuses the saved result; Compare runs a preset (llama.cpp's types,
// counted per type). GPTQ on the whole default model takes
// minutes in the browser, so it is covered by the wasm tests (tests/wasm/methods.test.ts) on a
// tiny model instead.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { readGgufHeader } from './gguf-read.mjs';
import { artifacts, downloadOf, openPage, useLab } from './harness.mjs';

const lab = useLab();

const rowOf = (page, format) => page.locator(`#compare-table tr[data-format="${format}"]`);

test('methods panel: presets, supported methods, an imatrix run into Compare', { timeout: 600_000 }, async () => {
  const { page, problems } = await openPage(lab.browser, `${lab.server.url}?panel=methods&compare=&presets=q4_0`);
  await page.waitForSelector('#tensor-table tbody tr', { timeout: 120_000 });
  assert.equal(await page.locator('#methods-panel').isHidden(), false);
  const methods = await page.locator('input[name=methods-method]').evaluateAll((r) => r.map((x) => x.value));
  assert.deepEqual(methods, ['rtn', 'imatrix', 'gptq']);

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
