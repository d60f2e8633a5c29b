// Lesson 1 (web/lessons/number-line.html), walked as a student would: from the lab's header link,
// four formats' levels on one group of the default model, a group chosen from "things to try" (kept
// in the URL), and the page again with the network off once the PWA has cached the lab and model.
// The level grids are checked against the formats' published definitions, not the core's output:
// INT4 symmetric is k·s for k = −7…7, asymmetric (k − z)·s for k = 0…15, NF4 has 16 levels
// (QLoRA), bitsandbytes FP4 is its get_4bit_type('fp4') table ±{0, 0.0625, 2, 3, 4, 6, 8, 12} / 12
// times the block's absmax.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useLab } from './harness.mjs';

const lab = useLab();
const FORMATS = ['int4-sym', 'int4-asym', 'nf4', 'fp4'];

/** Waits for every lesson element to draw (or fail), then returns each one's levels and caption. */
async function levelsOf(page) {
  const out = {};
  for (const id of FORMATS) {
    await page.waitForSelector(`#${id} [part=chart][data-level-count], #${id} [part=status][data-error]`, { timeout: 120_000 });
    const status = page.locator(`#${id} [part=status]`);
    assert.equal(await status.getAttribute('data-error'), null, `${id}: ${await status.textContent()}`);
    out[id] = { levels: JSON.parse(await page.getAttribute(`#${id} [part=chart]`, 'data-levels')), caption: await page.textContent(`#${id} [part=caption]`) };
  }
  return out;
}

const close = (a, b, tol) => Math.abs(a - b) <= tol;
const steps = (xs) => xs.slice(1).map((x, i) => x - xs[i]);

function assertDefinitions(got) {
  const sym = got['int4-sym'].levels;
  assert.equal(sym.length, 15, JSON.stringify(sym));
  const s = sym[14] / 7;
  sym.forEach((v, i) => assert.ok(close(v, (i - 7) * s, 1e-6 * Math.abs(s)), `int4-sym level ${i}: ${v} vs ${(i - 7) * s}`));
  const asym = got['int4-asym'].levels;
  assert.equal(asym.length, 16, JSON.stringify(asym));
  const d = steps(asym);
  assert.ok(d.every((x) => close(x, d[0], 1e-5 * d[0])), `uneven asymmetric grid ${JSON.stringify(asym)}`);
  assert.ok(asym.some((v) => Math.abs(v) <= 1e-6 * d[0]), 'zero is a level');
  const nf4 = got.nf4.levels;
  assert.equal(nf4.length, 16, JSON.stringify(nf4));
  assert.ok(!steps(nf4).every((x) => close(x, steps(nf4)[0], 1e-3 * steps(nf4)[0])), 'NF4 is not an even grid');
  const fp4 = got.fp4.levels;
  const top = fp4[fp4.length - 1];
  const bnb = [0, 0.0625, 2, 3, 4, 6, 8, 12];
  const expected = [...bnb.slice(1).reverse().map((x) => -x), ...bnb].map((x) => (x / 12) * top);
  assert.equal(fp4.length, 15, JSON.stringify(fp4));
  fp4.forEach((v, i) => assert.ok(close(v, expected[i], 1e-6 * top), `fp4 level ${i}: ${v} vs ${expected[i]}`));
}

test('lesson 1, the number line: reached from the lab, four formats on one group, a group from the URL, offline', { timeout: 300_000 }, async () => {
  const context = await lab.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  await page.goto(lab.server.url);
  // The lab's visit installs the PWA and keeps the model for offline use.
  await page.waitForFunction(() => document.querySelector('#offline-status')?.dataset.state === 'ready', null, { timeout: 120_000 });
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 30_000 });

  await page.click('header a#lesson-number-line');
  await page.waitForURL(/lessons\/number-line\.html/);
  const first = await levelsOf(page);
  assertDefinitions(first);
  for (const id of FORMATS) assert.match(first[id].caption, /for group 0 of /);

  // Things to try: another group; the URL keeps it for a class link.
  await page.fill('#group', '3');
  await page.press('#group', 'Enter');
  await page.waitForFunction(() => [...document.querySelectorAll('ql-levels')].every((l) => l.shadowRoot.querySelector('[part=caption]').textContent.includes('for group 3 of')), null, { timeout: 60_000 });
  assert.match(page.url(), /group=3/);
  assertDefinitions(await levelsOf(page));

  await context.setOffline(true);
  await page.goto(`${lab.server.url}lessons/number-line.html?tensor=blk.0.ffn_down.weight&group=1`);
  const offline = await levelsOf(page);
  assertDefinitions(offline);
  assert.match(offline.nf4.caption, /for group 1 of /);
  assert.deepEqual(problems, []);
  await context.close();
});
