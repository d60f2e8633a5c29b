// Panels 3–5 on the default model: the histogram with format levels and occupancy, outlier
// channels, and NF4 level placement — each number checked against an independent computation
// (a Q4_1 decoder written in JS from ggml's layout, the published bitsandbytes NF4 table).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { q4_1Tensor } from './gguf-read.mjs';
import { artifacts, openPage, repoRoot, useLab } from './harness.mjs';

const MODEL = readFileSync(join(repoRoot, 'models/SmolLM2-135M-Instruct.Q4_1.gguf'));
// bitsandbytes' NF4 code table (bitsandbytes/functional.py, create_normal_map / the CUDA kernel's constants).
const NF4_TABLE = [
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
  -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
];
const lab = useLab();

/** Rounds to the nearest f16 value (normal range): group-wise integer scales are stored as f16. */
function f16Round(x) {
  if (x === 0) return 0;
  const step = 2 ** (Math.floor(Math.log2(Math.abs(x))) - 10);
  return Math.round(x / step) * step;
}


async function setFormat(page, format) {
  await page.fill('#format', format);
  await page.press('#format', 'Enter');
  await page.waitForFunction((f) => document.querySelector('#histogram-caption')?.textContent?.includes(`${f}`), format, { timeout: 60_000 });
}

const levelsOf = async (page) => JSON.parse(await page.locator('#histogram').getAttribute('data-levels'));

test('histogram: totals, NF4/INT4/Q8_0 levels of the selected group, clipping and occupancy', { timeout: 240_000 }, async () => {
  const { page, problems } = await openPage(lab.browser, `${lab.server.url}?tensor=blk.0.attn_q.weight&format=nf4&panel=histogram`);
  await page.waitForSelector('#histogram svg', { timeout: 120_000 });
  // Every weight of the 576×576 matrix is in a bin, and every one has exactly one code.
  assert.equal(Number(await page.locator('#histogram').getAttribute('data-total')), 576 * 576);
  assert.equal(Number(await page.locator('#occupancy').getAttribute('data-total')), 576 * 576);
  assert.equal(await page.locator('#occupancy').getAttribute('data-codes'), '16');

  // NF4 levels of group 0 = block absmax × the bitsandbytes table.
  const { values, cols } = q4_1Tensor(MODEL, 'blk.0.attn_q.weight');
  const absmax0 = Math.max(...Array.from(values.subarray(0, 64), Math.abs));
  const nf4 = await levelsOf(page);
  assert.equal(nf4.length, 16);
  nf4.forEach((v, i) => assert.ok(Math.abs(v - absmax0 * NF4_TABLE[i]) < 1e-5 * absmax0, `level ${i}: ${v} vs ${absmax0 * NF4_TABLE[i]}`));
  assert.match(await page.locator('#histogram-caption').innerText(), /nf4-b64: 16 levels in group 0 of 5,184 \(64 weights each\)/);
  await page.screenshot({ path: join(artifacts, 'histogram-nf4.png'), fullPage: false });

  // One group: 64 values; group 7 of row 0.
  await page.selectOption('#scope', 'group');
  await page.fill('#group', '7');
  await page.press('#group', 'Tab');
  await page.waitForFunction(() => document.querySelector('#histogram-caption')?.textContent?.includes('(group 7)'), null, { timeout: 60_000 });
  assert.equal(await page.locator('#histogram').getAttribute('data-total'), '64');
  assert.match(page.url(), /scope=group/);
  assert.match(page.url(), /group=7/);

  // INT4 symmetric, groups of 64: 15 evenly spaced levels k·s, s = absmax/7 stored as f16.
  await setFormat(page, 'int4-sym-g64');
  const scale7 = f16Round(Math.max(...Array.from(values.subarray(7 * 64, 8 * 64), Math.abs)) / 7);
  const int4 = await levelsOf(page);
  assert.equal(int4.length, 15);
  int4.forEach((v, i) => assert.ok(Math.abs(v - (i - 7) * scale7) < 1e-6 * scale7, `int4 level ${i}: ${v} vs ${(i - 7) * scale7}`));
  assert.match(await page.locator('#histogram-caption').innerText(), /0 of the group's weights clipped/);

  // Row scope: 576 values (row 0 holds groups 0..8).
  await page.selectOption('#scope', 'row');
  await page.waitForFunction(() => document.querySelector('#histogram-caption')?.textContent?.includes('(row 0)'), null, { timeout: 60_000 });
  assert.equal(Number(await page.locator('#histogram').getAttribute('data-total')), cols);

  // Q8_0: 255 distinct levels d·q (q = -127..127; -128 is never produced) for a group of 32.
  await setFormat(page, 'q8_0');
  const q8 = await levelsOf(page);
  assert.ok(q8.length >= 255 && q8.length <= 256, `q8_0 levels: ${q8.length}`);
  // Phone width: the charts redraw to fit and nothing scrolls sideways.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(500);
  assert.deepEqual(await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]), [390, 390]);
  await page.screenshot({ path: join(artifacts, 'histogram-phone.png'), fullPage: false });
  assert.deepEqual(problems, []);
  await page.close();
});

/** Outlier channels by the documented rule, from weights decoded by the JS reference decoder. */
function outliers(values, rows, cols, k) {
  const rowMax = new Array(rows).fill(0);
  const colMax = new Array(cols).fill(0);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const a = Math.abs(values[r * cols + c]);
      rowMax[r] = Math.max(rowMax[r], a);
      colMax[c] = Math.max(colMax[c], a);
    }
  }
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const flag = (xs) => xs.flatMap((x, i) => (x > k * median(xs) ? [i] : []));
  return { rows: flag(rowMax), cols: flag(colMax) };
}

test('outlier channels match the k × median rule on independently decoded weights', { timeout: 180_000 }, async () => {
  const name = 'blk.0.attn_output.weight';
  const { values, rows, cols } = q4_1Tensor(MODEL, name);
  const { page, problems } = await openPage(lab.browser, `${lab.server.url}?tensor=${name}&panel=outliers`);
  await page.waitForSelector('#cols-chart svg', { timeout: 120_000 });
  const want6 = outliers(values, rows, cols, 6);
  assert.ok(want6.cols.length > 0, 'this tensor has outlier input channels');
  assert.deepEqual(JSON.parse(await page.locator('#cols-chart').getAttribute('data-outliers')), want6.cols);
  assert.deepEqual(JSON.parse(await page.locator('#rows-chart').getAttribute('data-outliers')), want6.rows);
  assert.match(await page.locator('#outliers-caption').innerText(), new RegExp(`outlier input channels: ${want6.cols.join(', ')} `));
  await page.screenshot({ path: join(artifacts, 'outliers.png'), fullPage: false });

  await page.fill('#outlier-k', '3');
  await page.press('#outlier-k', 'Tab');
  const want3 = outliers(values, rows, cols, 3);
  await page.waitForFunction((n) => JSON.parse(document.querySelector('#cols-chart')?.dataset.outliers ?? '[]').length === n, want3.cols.length, { timeout: 60_000 });
  assert.deepEqual(JSON.parse(await page.locator('#cols-chart').getAttribute('data-outliers')), want3.cols);
  assert.deepEqual(problems, []);
  await page.close();
});

test('NF4 level placement: the published table, and INT4 error equal to a JS absmax-round reference', { timeout: 180_000 }, async () => {
  const name = 'blk.0.attn_q.weight';
  const { page, problems } = await openPage(lab.browser, `${lab.server.url}?tensor=${name}&panel=nf4&block=3`);
  await page.waitForSelector('#nf4-levels tbody tr', { timeout: 120_000 });
  const shown = await page.locator('#nf4-levels td[data-nf4]').evaluateAll((tds) => tds.map((td) => Number(td.dataset.nf4)));
  assert.equal(shown.length, 16);
  shown.forEach((v, i) => assert.ok(Math.abs(v - NF4_TABLE[i]) < 1e-6, `NF4 level ${i}: ${v} vs ${NF4_TABLE[i]}`));
  assert.equal(await page.locator('#nf4-block').inputValue(), '3');

  // INT4 (symmetric, blocks of 64): s = f16(absmax / 7), y = clamp(round(x / s), ±7) · s (f64 here,
  // f32 in the core: 1e-4 relative covers that).
  const { values } = q4_1Tensor(MODEL, name);
  let se = 0;
  for (let b = 0; b < values.length; b += 64) {
    const block = values.subarray(b, b + 64);
    const absmax = Math.max(...Array.from(block, Math.abs));
    for (const x of block) {
      const scale = f16Round(absmax / 7);
      const y = scale === 0 ? 0 : Math.max(-7, Math.min(7, Math.round(x / scale))) * scale;
      se += (x - y) ** 2;
    }
  }
  const int4Mse = Number(await page.locator('tr[data-codebook=int4] td[data-mse]').getAttribute('data-mse'));
  assert.ok(Math.abs(int4Mse - se / values.length) < 1e-4 * int4Mse, `INT4 MSE ${int4Mse} vs reference ${se / values.length}`);
  const nf4Mse = Number(await page.locator('tr[data-codebook=nf4] td[data-mse]').getAttribute('data-mse'));
  assert.ok(nf4Mse < int4Mse, 'NF4 beats the uniform grid on bell-shaped weights');
  await page.screenshot({ path: join(artifacts, 'nf4-placement.png'), fullPage: false });
  assert.deepEqual(problems, []);
  await page.close();
});
