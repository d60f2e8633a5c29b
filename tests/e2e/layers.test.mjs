// Panel 2 (layer browser): per-tensor kurtosis, outlier counts and error under a format, checked
// against JS references on a tiny GGUF, the three sorts, keyboard selection, and cancelling the
// analysis of the default model.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { artifacts, openPage, useLab } from './harness.mjs';
import { buildGguf } from './tiny-gguf.mjs';

const lab = useLab();

/** Deterministic pseudo-random values (LCG), f32-rounded like the file stores them. */
function series(n, seed, shape) {
  let s = seed;
  const u = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  return Array.from({ length: n }, (_, i) => Math.fround(shape(u, i)));
}
const tensors = [
  // Sum of 4 uniforms: close to a bell curve (excess kurtosis ≈ −0.3).
  { name: 'a.bell', dims: [64, 4], values: series(256, 1, (u) => u() + u() + u() + u() - 2) },
  // Small values with three large spikes in input channel 5: heavy tails, one outlier column.
  { name: 'b.spiky', dims: [64, 8], values: series(512, 2, (u, i) => (i % 64 === 5 && i < 192 ? 3 + u() : (u() - 0.5) * 0.1)) },
  // Spread out with light tails (not evenly spaced: that would sit exactly on the int8 grid).
  { name: 'c.flat', dims: [64, 2], values: Array.from({ length: 128 }, (_, i) => Math.fround(2 * (i / 127) ** 1.5 - 1)) },
];

function kurtosis(x) {
  const n = x.length;
  const mean = x.reduce((a, b) => a + b, 0) / n;
  const m2 = x.reduce((a, b) => a + (b - mean) ** 2, 0) / n;
  const m4 = x.reduce((a, b) => a + (b - mean) ** 4, 0) / n;
  return m4 / m2 ** 2 - 3;
}

/** int8-sym-channel: one f32 scale absmax/127 per row, codes round(x/s) in ±127. */
function int8ChannelSqnr(x, cols) {
  let sx = 0;
  let se = 0;
  for (let r = 0; r < x.length / cols; r++) {
    const row = x.slice(r * cols, (r + 1) * cols);
    const s = Math.fround(Math.max(...row.map(Math.abs)) / 127);
    for (const v of row) {
      const y = Math.max(-127, Math.min(127, Math.round(v / s))) * s;
      sx += v * v;
      se += (v - y) ** 2;
    }
  }
  return 10 * Math.log10(sx / se);
}

const column = (page, attr) => page.locator(`#tensor-table tbody td[${attr}]`).evaluateAll((tds, a) => tds.map((td) => td.getAttribute(a)), attr);
const order = (page) => page.locator('#tensor-table tbody tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.tensor));

test('layer browser: kurtosis, outliers and int8 error match JS references; sorting; keyboard select', { timeout: 120_000 }, async () => {
  const file = join(artifacts, 'three-tensors.gguf');
  writeFileSync(file, buildGguf({ metadata: { 'general.name': 'three tensors' }, tensors }));
  const { page, problems } = await openPage(lab.browser, `${lab.server.url}?model=none&format=int8-sym-channel`);
  await page.waitForFunction(() => document.querySelector('#core-status')?.textContent?.includes('core'));
  await page.setInputFiles('#file-input', file);
  await page.waitForSelector('tr[data-tensor="c.flat"]');
  await page.click('#analyze');
  await page.waitForFunction(() => document.querySelector('#analyze-summary')?.dataset.analysed === '3', null, { timeout: 60_000 });
  assert.equal(await page.locator('#analyze-summary').getAttribute('data-format'), 'int8-sym-channel');

  for (const t of tensors) {
    const row = page.locator(`tr[data-tensor="${t.name}"]`);
    const k = Number(await row.locator('td[data-kurtosis]').getAttribute('data-kurtosis'));
    assert.ok(Math.abs(k - kurtosis(t.values)) < 1e-6 * Math.max(1, Math.abs(k)), `${t.name} kurtosis ${k} vs ${kurtosis(t.values)}`);
    const sqnr = Number(await row.locator('td[data-sqnr]').getAttribute('data-sqnr'));
    const want = int8ChannelSqnr(t.values, t.dims[0]);
    assert.ok(Math.abs(sqnr - want) < 1e-3, `${t.name} SQNR ${sqnr} vs ${want}`);
  }
  // The per-layer error chart has one bar per tensor.
  assert.equal(await page.locator('#layer-errors').getAttribute('data-matrices'), '3');
  // Input channel 5 of b.spiky is the one outlier column (rows 0..2 hold its spikes → 3 outlier rows).
  assert.equal(await page.locator('tr[data-tensor="b.spiky"] td[data-outliers]').innerText(), '1 / 3');

  // Sorting: worst first on the first click, reversed on the second.
  const byKurtosis = [...tensors].sort((a, b) => kurtosis(b.values) - kurtosis(a.values)).map((t) => t.name);
  await page.click('button[data-sort=kurtosis]');
  assert.deepEqual(await order(page), byKurtosis);
  assert.equal(await page.locator('th:has(button[data-sort=kurtosis])').getAttribute('aria-sort'), 'descending');
  await page.click('button[data-sort=kurtosis]');
  assert.deepEqual(await order(page), [...byKurtosis].reverse());
  await page.click('button[data-sort=bytes]');
  assert.deepEqual(await order(page), ['b.spiky', 'a.bell', 'c.flat']);
  await page.click('button[data-sort=error]');
  const byError = [...tensors].sort((a, b) => int8ChannelSqnr(a.values, 64) - int8ChannelSqnr(b.values, 64)).map((t) => t.name);
  assert.deepEqual(await order(page), byError);
  assert.equal((await column(page, 'data-sqnr')).length, 3);

  // Keyboard: focus the first row, arrow down, Enter selects it.
  await page.locator('#tensor-table tbody tr').first().focus();
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Enter');
  await page.waitForFunction((n) => document.querySelector('#selected-tensor')?.textContent === n, byError[1]);
  assert.match(page.url(), new RegExp(`tensor=${byError[1]}`));
  await page.screenshot({ path: join(artifacts, 'layers-sorted.png'), fullPage: false });
  assert.deepEqual(problems, []);
  await page.close();
});

test('analysing the default model reports progress per tensor and can be cancelled', { timeout: 180_000 }, async () => {
  const { page, problems } = await openPage(lab.browser, `${lab.server.url}?format=q4_0`);
  await page.waitForSelector('#tensor-table tbody tr', { timeout: 120_000 });
  await page.click('#analyze');
  // Rows fill in as the worker reports each tensor.
  await page.waitForFunction(() => [...document.querySelectorAll('td[data-kurtosis]')].some((td) => td.dataset.kurtosis), null, { timeout: 60_000 });
  assert.match(await page.locator('#analyze-progress-label').innerText(), /Analysing \d+ of 272/);
  await page.click('#analyze-progress-cancel');
  await page.waitForFunction(() => /cancelled/.test(document.querySelector('#analyze-summary')?.textContent ?? ''), null, { timeout: 30_000 });
  const done = (await column(page, 'data-kurtosis')).filter(Boolean).length;
  assert.ok(done > 0 && done < 272, `${done} rows analysed before the cancel`);
  assert.equal(await page.locator('#analyze').isEnabled(), true);
  assert.deepEqual(problems, []);
  await page.close();
});
