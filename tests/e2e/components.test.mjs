// The package's custom elements (`quantlab/components`) as a user gets them: the packed tarball
// installed offline into a fresh project (fresh-project.mjs), examples/components/index.html
// served by a static server with no bundler, in headless Chromium:
// - <ql-histogram> draws the default model's blk.0.attn_q.weight; over the full range its bars
//   are the counts of the values tests/e2e/gguf-read.mjs decodes (not the core's decoder);
// - changing its `format` attribute re-renders with the other format's levels;
// - <ql-levels> shows NF4's 16 levels (the bitsandbytes codebook has 16 entries);
// - Tab reaches the elements' controls inside their shadow roots;
// - a tensor the model lacks shows the typed error inside the element, and nothing is thrown.
// Plus the gzipped size of what a components page downloads (BENCHMARKS.md).
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { installFresh, packLibrary } from './fresh-project.mjs';
import { q4_1Tensor } from './gguf-read.mjs';
import { launchBrowser, openPage, repoRoot, startServer } from './harness.mjs';

/** Gzipped bytes of a components page: elements (with Observable Plot), API chunks, worker, single-thread core (BENCHMARKS.md; measured + ~10 %). */
const SIZE_BUDGET_GZIP = 1_040_000;
const TENSOR = 'blk.0.attn_q.weight';
const SHOWN_BINS = 64;

const fresh = mkdtempSync(join(tmpdir(), 'quantlab-components-'));
const app = join(fresh, 'app');
const decoded = q4_1Tensor(readFileSync(join(repoRoot, 'models/SmolLM2-135M-Instruct.Q4_1.gguf')), TENSOR).values;
let browser;
let server;

before(async () => {
  const tarball = packLibrary(fresh);
  cpSync(join(repoRoot, 'examples/components'), app, { recursive: true });
  installFresh(app, { name: 'components-example', private: true, devDependencies: {} }, tarball);
  [browser, server] = await Promise.all([launchBrowser(), startServer(app)]);
});

after(async () => {
  await browser?.close();
  server?.stop();
  rmSync(fresh, { recursive: true, force: true });
});

/** The decoded values in `bins` equal bins over their [min, max] (the last bin closed). */
function referenceBins(values, bins) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const counts = new Array(bins).fill(0);
  for (const v of values) counts[Math.min(bins - 1, Math.floor(((v - lo) / (hi - lo)) * bins))]++;
  return { lo, hi, counts };
}

/** Waits until `element` has drawn (`drawn`: a selector inside it) or shows an error; fails on the error. */
async function rendered(page, element, drawn) {
  await page.waitForSelector(`${element} ${drawn}, ${element} [part=status][data-error]`, { timeout: 60_000 });
  const status = page.locator(`${element} [part=status]`);
  assert.equal(await status.getAttribute('data-error'), null, await status.textContent());
}

/** The focused element inside shadow roots: its tag, part and owning custom element. */
const deepFocus = () => {
  let el = document.activeElement;
  let host = null;
  while (el?.shadowRoot?.activeElement) {
    host = el;
    el = el.shadowRoot.activeElement;
  }
  return { tag: el?.tagName.toLowerCase(), part: el?.getAttribute('part'), host: host?.tagName.toLowerCase() ?? null };
};

test('the components render the default model from a plain page: histogram counts, format change, levels, keyboard, errors', async () => {
  const { page, problems } = await openPage(browser, `${server.url}index.html?threads=1`);
  await rendered(page, '#histogram', '[part=chart][data-values]');
  const chart = page.locator('#histogram [part=chart]');
  const reference = referenceBins(decoded, SHOWN_BINS);
  assert.equal(Number(await chart.getAttribute('data-values')), decoded.length, 'every value of the tensor is counted');
  const [lo, hi] = [Number(await chart.getAttribute('data-lo')), Number(await chart.getAttribute('data-hi'))];
  assert.ok(Math.abs(lo - reference.lo) <= 1e-6 && Math.abs(hi - reference.hi) <= 1e-6, `range [${lo}, ${hi}] vs decoded [${reference.lo}, ${reference.hi}]`);

  // The full range shows 64 bars of 32 fine bins each: the reference's 64 bins over [min, max].
  await page.selectOption('#histogram [part=range-select]', 'full');
  const counts = JSON.parse(await chart.getAttribute('data-counts'));
  assert.equal(counts.length, SHOWN_BINS);
  assert.equal(await page.locator('#histogram [part=chart] svg g[aria-label=rect] rect').count(), SHOWN_BINS, 'one bar per bin');
  // A value on a bin edge may fall either side of it in f32 against f64 arithmetic: a few moves, no more.
  const moved = counts.reduce((sum, c, i) => sum + Math.abs(c - reference.counts[i]), 0);
  assert.ok(moved <= decoded.length * 1e-4, `bar counts ${JSON.stringify(counts)} vs decoded ${JSON.stringify(reference.counts)}`);
  assert.equal(counts.reduce((a, b) => a + b, 0), decoded.length);

  // The attribute drives a new render: q4_0's levels replace NF4's.
  const nf4Levels = JSON.parse(await chart.getAttribute('data-levels'));
  assert.equal(nf4Levels.length, 16);
  await page.$eval('#histogram', (h) => (h.format = 'q4_0'));
  await page.waitForFunction(() => document.querySelector('#histogram').shadowRoot.querySelector('[part=caption]').textContent.includes('q4_0 levels'), null, { timeout: 30_000 });
  assert.equal(await page.getAttribute('#histogram', 'format'), 'q4_0', 'the property reflects to the attribute');
  const q4Levels = JSON.parse(await chart.getAttribute('data-levels'));
  assert.equal(q4Levels.length, 16);
  assert.notDeepEqual(q4Levels, nf4Levels);
  // q4_0's levels are a uniform grid (d × (q − 8)); NF4's are not.
  const steps = (xs) => xs.slice(1).map((x, i) => x - xs[i]);
  assert.ok(steps(q4Levels).every((s) => Math.abs(s - steps(q4Levels)[0]) < 1e-6 * Math.abs(steps(q4Levels)[0]) + 1e-9), JSON.stringify(q4Levels));
  assert.ok(!steps(nf4Levels).every((s) => Math.abs(s - steps(nf4Levels)[0]) < 1e-3 * Math.abs(steps(nf4Levels)[0])), JSON.stringify(nf4Levels));

  await rendered(page, '#levels', '[part=chart][data-level-count]');
  assert.equal(await page.getAttribute('#levels [part=chart]', 'data-level-count'), '16');
  assert.match(await page.textContent('#levels [part=caption]'), /^16 nf4(-b64)? levels/);
  assert.equal(await page.getAttribute('#levels', 'aria-labelledby'), 'h-levels');
  assert.equal(await page.getAttribute('#levels [part=status]', 'role'), 'status');

  // Tab walks into the shadow roots' controls.
  await page.focus('#format');
  const reached = [];
  for (let i = 0; i < 12; i++) {
    await page.keyboard.press('Tab');
    reached.push(await page.evaluate(deepFocus));
  }
  const has = (host, part) => reached.some((r) => r.host === host && r.part === part);
  assert.ok(has('ql-histogram', 'log-toggle') && has('ql-histogram', 'range-select') && has('ql-levels', 'group-input'), JSON.stringify(reached));
  // The keyboard works them: Space on the focused checkbox redraws on a log scale.
  await page.focus('#histogram [part=log-toggle]');
  await page.keyboard.press('Space');
  assert.ok(await page.isChecked('#histogram [part=log-toggle]'));
  assert.match(await page.getAttribute('#histogram [part=chart] svg', 'aria-label'), /^Histogram of blk\.0\.attn_q\.weight/);

  // A tensor the model lacks: the element shows the typed error's message; nothing escapes it.
  await page.$eval('#levels', (l) => l.setAttribute('tensor', 'blk.0.no_such.weight'));
  await page.waitForSelector('#levels [part=status][data-error]', { timeout: 30_000 });
  const error = await page.textContent('#levels [part=status]');
  assert.match(error, /blk\.0\.no_such\.weight/);
  assert.match(await page.getAttribute('#levels [part=status]', 'data-error'), /Error$/);
  assert.equal(await page.locator('#levels [part=chart] svg').count(), 0);

  // NF4 placement and outliers drew from the same shared lab.
  await rendered(page, '#outliers', '[part=chart] [data-threshold]');
  assert.ok(await page.locator('#nf4 [part=chart] svg').count() >= 2);
  assert.deepEqual(problems, []);
  await page.close();
});

test('<ql-generate> runs from its button (Enter), <ql-tradeoff> evaluates its formats attribute', async () => {
  const { page, problems } = await openPage(browser, `${server.url}index.html?threads=1`);
  await page.waitForSelector('#generate [part=status]:has-text("Press Generate")');
  await page.focus('#generate [part=run-button]');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#generate [part~=quantized][data-tokens], #generate [part=status][data-error]', { timeout: 60_000 });
  assert.equal(await page.getAttribute('#generate [part=status]', 'data-error'), null, await page.textContent('#generate [part=status]'));
  for (const side of ['base', 'quantized']) {
    const n = Number(await page.getAttribute(`#generate [part~=${side}]`, 'data-tokens'));
    assert.ok(n >= 1 && n <= 8, `${side}: ${n} tokens for max-tokens=8`);
  }
  assert.ok(Number.isInteger(Number(await page.getAttribute('#generate [part=chart]', 'data-divergence'))));

  await page.click('#measure');
  await rendered(page, '#tradeoff', '[part=chart][data-frontier]');
  // The three formats the page measures and the base model, each a dot; the frontier is drawn from them.
  assert.equal(await page.locator('#tradeoff [part=chart] svg [aria-label=dot] circle').count(), 4);
  const frontier = JSON.parse(await page.getAttribute('#tradeoff [part=chart]', 'data-frontier'));
  assert.ok(frontier.length >= 1, JSON.stringify(frontier));
  assert.deepEqual(problems, []);
  await page.close();
});

test('a components page stays within its gzipped size budget', () => {
  const lib = join(app, 'node_modules/quantlab/lib');
  const files = ['components.js', 'worker.js', 'core/quantlab.js', 'core/quantlab_bg.wasm', ...readdirSync(join(lib, 'chunks')).map((f) => `chunks/${f}`)];
  const sizes = Object.fromEntries(files.map((f) => [f, gzipSync(readFileSync(join(lib, f))).byteLength]));
  const total = Object.values(sizes).reduce((a, b) => a + b, 0);
  console.log(`quantlab package, components page (single-thread core): ${total} bytes gzipped ${JSON.stringify(sizes)}`);
  assert.ok(total <= SIZE_BUDGET_GZIP, `${total} bytes gzipped exceed the budget of ${SIZE_BUDGET_GZIP} (BENCHMARKS.md)`);
});
