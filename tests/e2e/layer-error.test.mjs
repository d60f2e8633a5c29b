// The Methods panel's per-layer output error view on the default model: for q4_0 (one type
// everywhere), layer 0's seven matrices on 128 calibration tokens give finite errors with GPTQ's
// below round to nearest's for each; a longer run is cancelled from the progress bar. The
// numbers themselves are held to the CLI's by tests/wasm/layer-error.test.ts. Pasted calibration
// text in the Methods panel is what the view then runs on, and GPTQ's act-order option reaches it.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { artifacts, openPage, useLab } from './harness.mjs';

const lab = useLab();

test('methods panel: per-layer output error RTN vs GPTQ vs AWQ, and cancel', { timeout: 600_000 }, async () => {
  const { page } = await openPage(lab.browser, `${lab.server.url}?panel=methods`);
  await page.waitForSelector('#tensor-table tbody tr', { timeout: 120_000 });
  const q40 = await page.locator('#methods-target option', { hasText: 'q4_0 (one type everywhere)' }).getAttribute('value');
  await page.selectOption('#methods-target', q40);
  await page.fill('#layer-error-layers', '1');
  await page.selectOption('#layer-error-tokens', '128');
  const started = Date.now();
  await page.click('#layer-error-run');
  await page.waitForFunction(() => document.querySelector('#layer-error')?.dataset.done || document.querySelector('#methods-panel > .error:not([hidden])'), null, { timeout: 300_000 });
  const error = page.locator('#methods-panel > .error:not([hidden])');
  assert.equal(await error.count(), 0, (await error.count()) ? await error.innerText() : '');
  console.log(`layer 0, 128 tokens, q4_0: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const rows = JSON.parse(await page.locator('#layer-error-out').getAttribute('data-rows'));
  assert.deepEqual(rows.map((r) => r.kind), ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_down', 'ffn_up']);
  for (const r of rows) {
    for (const v of [r.rtn, r.gptq, r.awq]) assert.ok(Number.isFinite(v) && v >= 0, `${r.tensor}: ${JSON.stringify(r)}`);
    assert.ok(r.gptq < r.rtn, `${r.tensor}: GPTQ ${r.gptq} ≥ RTN ${r.rtn}`);
  }
  assert.equal(await page.locator('#layer-error-out table tr[data-tensor]').count(), 7);
  assert.ok(await page.locator('#layer-error-out svg').count() > 0);
  await page.selectOption('#layer-error-kind', 'ffn_down');
  assert.equal(await page.locator('#layer-error-out table tr[data-tensor]').count(), 1);
  await page.locator('#layer-error').screenshot({ path: join(artifacts, 'layer-error.png') });

  // A longer run, cancelled once it reports progress.
  await page.fill('#layer-error-layers', '3');
  await page.selectOption('#layer-error-tokens', '512');
  await page.click('#layer-error-run');
  await page.waitForSelector('#layer-error-progress-cancel:not([hidden])', { timeout: 60_000 });
  await page.click('#layer-error-progress-cancel');
  await page.waitForFunction(() => document.querySelector('#layer-error')?.dataset.cancelled === 'true', null, { timeout: 120_000 });
  assert.match(await error.innerText(), /cancelled/i);

  // The Methods panel's calibration text: pasted text reaches the view (its caption names it).
  await page.selectOption('#methods-calib-source', 'text');
  await page.fill('#methods-calib-text', 'It was a clear steel-blue day. The firmaments of air and sea were hardly separable in that all-pervading azure. '.repeat(12));
  await page.fill('#layer-error-layers', '1');
  await page.selectOption('#layer-error-tokens', '128');
  const before = await page.locator('#layer-error').getAttribute('data-done');
  await page.click('#layer-error-run');
  await page.waitForFunction((b) => (document.querySelector('#layer-error')?.dataset.done ?? null) !== b || document.querySelector('#methods-panel > .error:not([hidden])'), before, { timeout: 300_000 });
  assert.equal(await error.count(), 0, (await error.count()) ? await error.innerText() : '');
  assert.match(await page.locator('#layer-error-caption').innerText(), /\d+ calibration tokens of pasted text/);
  await page.selectOption('#layer-error-kind', 'all');
  const pasted = JSON.parse(await page.locator('#layer-error-out').getAttribute('data-rows'));
  assert.equal(pasted.length, 7);
  assert.ok(pasted.some((r, i) => r.rtn !== rows[i].rtn), 'other inputs give other errors');

  // GPTQ with act-order on the same text: other GPTQ errors, round to nearest's unchanged.
  await page.check('#layer-error-act-order');
  const natural = await page.locator('#layer-error').getAttribute('data-done');
  await page.click('#layer-error-run');
  await page.waitForFunction((b) => (document.querySelector('#layer-error')?.dataset.done ?? null) !== b || document.querySelector('#methods-panel > .error:not([hidden])'), natural, { timeout: 300_000 });
  assert.equal(await error.count(), 0, (await error.count()) ? await error.innerText() : '');
  assert.match(await page.locator('#layer-error-caption').innerText(), /GPTQ with act-order/);
  const ordered = JSON.parse(await page.locator('#layer-error-out').getAttribute('data-rows'));
  assert.deepEqual(ordered.map((r) => r.rtn), pasted.map((r) => r.rtn));
  assert.ok(ordered.every((r) => Number.isFinite(r.gptq) && r.gptq >= 0), JSON.stringify(ordered));
  assert.ok(ordered.some((r, i) => r.gptq !== pasted[i].gptq), 'act-order changes GPTQ');
});
