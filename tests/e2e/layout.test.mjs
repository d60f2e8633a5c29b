// The lab as a new user meets it, at 1280 px and 390 px: the app frame (sticky tensor/format bar,
// section navigation), one canonical name per format, formats that mostly fall back saying so,
// the Compare table and Pareto chart fitting, a one-click export with a multi-line summary, and
// the histogram's robust range. Numbers are checked against the file read by gguf-read.mjs, not
// the Rust core. One page and one model load for the whole file; the steps build on each other.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { q4_1Tensor, readGgufHeader } from './gguf-read.mjs';
import { artifacts, launchBrowser, repoRoot, startServer } from './harness.mjs';

const MODEL = readFileSync(join(repoRoot, 'models/SmolLM2-135M-Instruct.Q4_1.gguf'));
const TENSOR = 'blk.0.attn_q.weight';
/** Short names in the link on purpose: the lab must show the registry's canonical ones. */
const COMPARE = ['q8_0', 'q4_0', 'nf4', 'int4-asym-g128'];
const CANONICAL = ['q8_0', 'q4_0', 'nf4-b64', 'int4-asym-g128'];

let server;
let browser;
let page;
const problems = [];

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  await page.goto(`${server.url}?tensor=${TENSOR}&format=nf4&compare=${COMPARE.join(',')}`);
  await page.waitForSelector('#histogram svg', { timeout: 120_000 });
});

after(async () => {
  await browser?.close();
  server?.stop();
});

const box = (locator) => locator.evaluateAll((els) => els.map((e) => e.getBoundingClientRect().toJSON()));
const overlaps = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;

/** Sorted decoded weights of TENSOR, by the independent Q4_1 decoder. */
const sorted = Float64Array.from(q4_1Tensor(MODEL, TENSOR).values).sort();

test('histogram: the bulk by default, the full range and the group one click away, with exact counts', async () => {
  const hist = page.locator('#histogram');
  assert.equal(await hist.getAttribute('data-range'), 'robust');
  const n = sorted.length;
  const [d0, d1] = JSON.parse(await hist.getAttribute('data-domain'));
  const binWidth = (d1 - d0) / Number(await hist.getAttribute('data-bins'));
  // numpy's "lower"/"higher" 0.1st and 99.9th percentiles, rounded outwards to whole bins.
  const p001 = sorted[Math.floor(0.001 * (n - 1))];
  const p999 = sorted[Math.ceil(0.999 * (n - 1))];
  assert.ok(d0 <= p001 && d0 > p001 - 2 * binWidth, `domain starts at ${d0}, 0.1st percentile ${p001}`);
  assert.ok(d1 >= p999 && d1 < p999 + 2 * binWidth, `domain ends at ${d1}, 99.9th percentile ${p999}`);
  assert.ok(d1 - d0 < 0.4 * (sorted[n - 1] - sorted[0]), 'the bulk gets most of the width');
  // Every weight is in a bin shown or counted outside (a value within 1e-6 of an edge may go either way).
  assert.equal(Number(await hist.getAttribute('data-total')), n);
  const outside = Number(await hist.getAttribute('data-outside'));
  const surely = sorted.filter((v) => v < d0 - 1e-6 || v > d1 + 1e-6).length;
  const maybe = sorted.filter((v) => v < d0 + 1e-6 || v > d1 - 1e-6).length;
  assert.ok(outside >= surely && outside <= maybe, `outside ${outside}, reference ${surely}…${maybe}`);
  assert.match(await page.locator('#histogram-range').innerText(), /^x-axis: the bulk of the values, .* \(0\.1st to 99\.9th percentile\); [\d,]+ values \(0\.\d+%\) lie outside it/);
  await page.locator('#histogram-panel').screenshot({ path: join(artifacts, 'layout-histogram-robust.png') });

  await page.check('input[name=hist-range][value=full]');
  await page.waitForFunction(() => document.querySelector('#histogram')?.dataset.range === 'full');
  const full = JSON.parse(await hist.getAttribute('data-domain'));
  assert.ok(Math.abs(full[0] - sorted[0]) < 1e-6 && Math.abs(full[1] - sorted[n - 1]) < 1e-6, `full range ${full} vs ${sorted[0]}…${sorted[n - 1]}`);
  assert.equal(await hist.getAttribute('data-outside'), '0');
  assert.match(await page.locator('#histogram-range').innerText(), /^x-axis: the full range/);
  assert.match(page.url(), /range=full/);

  await page.check('input[name=hist-range][value=group]');
  await page.waitForFunction(() => document.querySelector('#histogram')?.dataset.range === 'group');
  const levels = JSON.parse(await hist.getAttribute('data-levels'));
  const [g0, g1] = JSON.parse(await hist.getAttribute('data-domain'));
  const span = levels[levels.length - 1] - levels[0];
  const fine = (sorted[n - 1] - sorted[0]) / (128 * 32);
  assert.ok(g0 <= levels[0] && g1 >= levels[levels.length - 1], 'every level of the group is on the axis');
  assert.ok(g1 - g0 <= 1.1 * span + 128 * fine, `group zoom ${g0}…${g1} for levels spanning ${span}`);
  assert.match(await page.locator('#histogram-range').innerText(), /^x-axis: group 0's levels under nf4-b64/);
  await page.check('input[name=hist-range][value=robust]');
});

test('app frame at 1280 px: the bar and the section list stay at hand, the prose stays', async () => {
  const nav = page.locator('#section-nav');
  assert.equal(await nav.isVisible(), true);
  assert.equal(await page.locator('#nav-toggle').isVisible(), false);
  const links = await nav.locator('a[data-panel]').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  assert.deepEqual(links, ['#model-panel', '#layers-panel', '#histogram-panel', '#outliers-panel', '#nf4-panel', '#compare-panel', '#methods-panel', '#sensitivity-panel', '#generate-panel', '#export-panel']);
  assert.ok((await page.locator('section .explain').count()) >= 9, 'every section keeps its explanation');
  for (const target of ['export', 'compare', 'histogram']) {
    await page.click(`#section-nav a[data-panel=${target}]`);
    await page.waitForTimeout(300);
    const [bar] = await box(page.locator('#toolbar'));
    const [side] = await box(nav);
    const [title] = await box(page.locator(`#${target}-title`));
    assert.equal(bar.top, 0, 'the bar sticks to the top');
    assert.ok(side.top >= bar.bottom - 1 && side.top < 900 && side.left >= 0, `the section list is on screen: ${JSON.stringify(side)}`);
    assert.ok(title.top >= bar.bottom && title.top < 900, `${target}'s heading is below the bar and on screen: ${title.top}`);
    assert.equal(await page.locator(`#section-nav a[data-panel=${target}]`).getAttribute('aria-current'), 'true');
  }
});

test('Compare: canonical names everywhere, fallbacks said where offered and beside the result', { timeout: 600_000 }, async () => {
  // The toolbar shows the registry's canonical name for the "nf4" of the link.
  assert.equal(await page.inputValue('#format'), 'nf4-b64');
  assert.match(page.url(), /format=nf4-b64/);
  assert.match(await page.locator('#histogram-caption').innerText(), /nf4-b64: 16 levels/);
  const checked = await page.locator('input[name=compare-format]:checked').evaluateAll((bs) => bs.map((b) => b.value));
  assert.deepEqual(checked.sort(), [...CANONICAL].sort());
  const labels = await page.locator('#compare-body fieldset.formats label[data-format]').evaluateAll((ls) => ls.map((l) => [l.dataset.format, l.childNodes[1].textContent.trim()]));
  for (const [format, text] of labels) assert.equal(text, format, 'a checkbox shows one name, the canonical one');

  // Which matrices cannot split their rows into blocks of 128 (int4-asym-g128) or 256 (q4_k),
  // from the file's own tensor shapes: the same count must be visible beside those formats.
  const matrices = readGgufHeader(MODEL).tensors.filter((t) => t.dims.length === 2);
  const notDividing = (block) => matrices.filter((t) => t.dims[0] % block !== 0).length;
  await page.waitForFunction(() => document.querySelector('label[data-format="int4-asym-g128"]')?.dataset.fallbacks !== undefined, null, { timeout: 60_000 });
  for (const [format, block, to] of [['int4-asym-g128', 128, 'int4-asym-g64'], ['q4_k', 256, 'q5_0']]) {
    const note = page.locator(`label[data-format="${format}"] .fallback`);
    assert.equal(await note.isVisible(), true);
    assert.equal((await note.innerText()).trim(), `— ${notDividing(block)} of ${matrices.length} weight matrices fall back to ${to}`);
    assert.ok(2 * notDividing(block) > matrices.length, 'most of them');
  }
  assert.equal(await page.locator('label[data-format="q8_0"] .fallback').innerText(), '');
  assert.equal(await page.locator('#compare-fallback-note').isVisible(), true);

  await page.selectOption('#compare-ctx', '64');
  await page.selectOption('#compare-windows', '1');
  await page.click('#compare-run');
  await page.waitForFunction(() => document.querySelector('#compare-body')?.dataset.done || document.querySelector('#compare-panel > .error:not([hidden])'), null, { timeout: 500_000 });
  assert.equal(await page.locator('#compare-panel > .error:not([hidden])').count(), 0);
  const steps = await page.locator('#compare-steps li span').allInnerTexts();
  assert.deepEqual(steps.filter((s) => s.startsWith('Quantize ')).map((s) => s.slice(9)).sort(), [...CANONICAL].sort());
  const rows = await page.locator('#compare-table tbody tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.format));
  assert.deepEqual(rows.filter((r) => r !== 'base').sort(), [...CANONICAL].sort());
  for (const f of CANONICAL) assert.match(await page.locator(`#compare-table tr[data-format="${f}"] td`).first().innerText(), new RegExp(`^${f}\\b`));
  const points = await page.locator('#compare-chart .point-label').allTextContents();
  assert.deepEqual(points.filter((p) => !p.startsWith('base')).sort(), [...CANONICAL].sort());
  // The result says how many matrices fell back, visibly in its row.
  const int4 = page.locator('#compare-table tr[data-format="int4-asym-g128"] .fallback');
  assert.equal(await int4.isVisible(), true);
  assert.equal(await int4.innerText(), `${notDividing(128)} of ${matrices.length} matrices fell back`);
  await page.selectOption('#compare-layer-format', 'nf4-b64');
  assert.match(await page.locator('#compare-layer-caption').innerText(), /^nf4-b64: /);
});

/** Labels apart from each other, from the axis titles and tick labels, and from every dot; dots well inside the plot. */
async function assertChartLegible(where) {
  const chart = page.locator('#compare-chart svg');
  const [frame] = await box(chart.locator('[aria-label=frame]'));
  const dots = await box(chart.locator('[aria-label=dot] circle, [aria-label=dot] path'));
  const labels = await box(chart.locator('.point-label'));
  const axes = await box(chart.locator('[aria-label="x-axis label"] text, [aria-label="y-axis label"] text, [aria-label="x-axis tick label"] text, [aria-label="y-axis tick label"] text'));
  assert.ok(dots.length >= 4 && labels.length === dots.length && axes.length > 4, `${where}: ${dots.length} dots, ${labels.length} labels, ${axes.length} axis texts`);
  for (const d of dots) {
    const margin = Math.min(d.left - frame.left, frame.right - d.right, d.top - frame.top, frame.bottom - d.bottom);
    assert.ok(margin >= 4, `${where}: a dot ${margin.toFixed(1)} px from the plot's edge`);
  }
  labels.forEach((a, i) => {
    assert.ok(a.left >= frame.left && a.right <= frame.right && a.top >= frame.top && a.bottom <= frame.bottom, `${where}: label ${i} inside the plot`);
    labels.forEach((b, j) => j > i && assert.ok(!overlaps(a, b), `${where}: labels ${i} and ${j} overlap`));
    for (const t of axes) assert.ok(!overlaps(a, t), `${where}: label ${i} overlaps an axis text`);
    for (const d of dots) assert.ok(!overlaps(a, d), `${where}: label ${i} covers a dot`);
  });
}

test('Pareto chart at 1280 px: padded domains, labels without collisions (perplexity and KL)', async () => {
  await page.locator('#compare-chart').scrollIntoViewIfNeeded();
  await assertChartLegible('1280 px, perplexity');
  await page.selectOption('#compare-metric', 'klMean');
  await assertChartLegible('1280 px, KL');
  await page.selectOption('#compare-metric', 'ppl');
  await page.locator('#compare-panel').screenshot({ path: join(artifacts, 'layout-compare-1280.png') });
});

test('Compare table at 1280 px: every column inside its box, nothing to scroll', async () => {
  const wrap = page.locator('#compare-table-wrap');
  const [w] = await box(wrap);
  const heads = await box(page.locator('#compare-table thead th'));
  // Format, bits/weight, size, size at context, ppl, Δppl, KL, top-1, tokens/s, protocol.
  assert.equal(heads.length, 10);
  assert.ok(heads[9].right <= w.right + 0.5, `last column ends at ${heads[9].right}, its box at ${w.right}`);
  assert.deepEqual(await wrap.evaluate((e) => e.scrollWidth <= e.clientWidth), true);
});

test('Export: an invalid name disables the button with the reason; one click downloads; the summary keeps its lines', { timeout: 300_000 }, async () => {
  await page.fill('#format', 'int5');
  await page.press('#format', 'Enter');
  const button = page.locator('#export-run');
  await page.waitForFunction(() => document.querySelector('#export-run')?.dataset.state === 'invalid', null, { timeout: 60_000 });
  assert.equal(await button.isDisabled(), true);
  assert.doesNotMatch(await button.innerText(), /int5/);
  assert.match(await page.locator('#export-reason').innerText(), /Cannot export: "int5" is not a format\. .*int5/);
  assert.match(await page.locator('#format-note').innerText(), /"int5" is not a format/);

  await page.fill('#format', 'q8_0');
  await page.press('#format', 'Enter');
  await page.waitForFunction(() => document.querySelector('#export-run')?.dataset.state === 'valid', null, { timeout: 60_000 });
  assert.equal(await button.innerText(), 'Export as q8_0');
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 240_000 }), button.click()]);
  assert.equal(download.suggestedFilename(), 'SmolLM2-135M-Instruct.Q4_1.q8_0.gguf');
  const bytes = readFileSync(await download.path());
  assert.equal(readGgufHeader(bytes).tensors.find((t) => t.name === TENSOR).typeName, 'Q8_0');
  const summary = page.locator('#export-summary');
  const text = await summary.innerText();
  const lines = text.split('\n').filter(Boolean);
  assert.ok(lines.length >= 2, `summary has ${lines.length} lines: ${text}`);
  const { height, lineHeight } = await summary.evaluate((e) => ({ height: e.getBoundingClientRect().height, lineHeight: parseFloat(getComputedStyle(e).lineHeight) || 16 }));
  assert.ok(height >= lines.length * lineHeight, `rendered ${height} px for ${lines.length} lines`);
  await page.locator('#export-panel').screenshot({ path: join(artifacts, 'layout-export.png') });
});

test('390 px: the section menu folds and opens, the table scrolls sideways, the chart stays legible', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(600);
  assert.deepEqual(await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]), [390, 390]);
  const nav = page.locator('#section-nav');
  assert.equal(await nav.isVisible(), false);
  const toggle = page.locator('#nav-toggle');
  assert.equal(await toggle.isVisible(), true);
  await toggle.click();
  assert.equal(await nav.isVisible(), true);
  assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
  await page.screenshot({ path: join(artifacts, 'layout-menu-390.png') });
  await page.click('#section-nav a[data-panel=compare]');
  await page.waitForTimeout(300);
  assert.equal(await nav.isVisible(), false, 'the menu closes after a pick');
  const [bar] = await box(page.locator('#toolbar'));
  const [title] = await box(page.locator('#compare-title'));
  assert.equal(bar.top, 0);
  assert.ok(title.top >= bar.bottom && title.top < 844, `heading at ${title.top}, bar ends at ${bar.bottom}`);

  // The table keeps every column and scrolls inside its box; the page itself does not.
  const wrap = page.locator('#compare-table-wrap');
  assert.equal(await wrap.evaluate((e) => getComputedStyle(e).overflowX), 'auto');
  assert.equal(await wrap.evaluate((e) => e.scrollWidth > e.clientWidth), true);
  assert.equal(await page.locator('#compare-table thead th').evaluateAll((ths) => ths.filter((th) => getComputedStyle(th).display === 'none').length), 0);
  await wrap.evaluate((e) => (e.scrollLeft = e.scrollWidth));
  const [w] = await box(wrap);
  const heads = await box(page.locator('#compare-table thead th'));
  assert.ok(Math.abs(heads[9].right - w.right) < 2, `scrolled to the end, the last column ends at ${heads[9].right} (box ${w.right})`);
  assert.deepEqual(await page.evaluate(() => document.documentElement.scrollWidth), 390);

  await page.locator('#compare-chart').scrollIntoViewIfNeeded();
  await assertChartLegible('390 px, perplexity');
  await page.locator('#compare-panel').screenshot({ path: join(artifacts, 'layout-compare-390.png') });
  assert.deepEqual(problems, []);
});
