// The Sensitivity panel on the default model, in Chromium: a layer scan of three units on 32
// calibration tokens (finite KLs, ranked, a per-layer chart), a recipe for 4.7 bits/weight (within
// its budget: one layer promoted to q8_0), "Evaluate" puts the recipe into Compare as its own row
// (finite perplexity and KL, a diamond on the Pareto chart), a whole-model scan cancelled from
// the progress bar, and the downloaded recipe.json accepted by the native
// `quantlab quantize --recipe` (target/debug/quantlab, which `npm test`'s cargo suite builds).
// The scan's numbers equal the CLI's: tests/wasm/sensitivity.test.ts.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readGgufHeader } from './gguf-read.mjs';
import { artifacts, downloadOf, openPage, useLab } from './harness.mjs';

const lab = useLab();
const repo = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const native = resolve(process.env.CARGO_TARGET_DIR ?? join(repo, 'target'), 'debug/quantlab');
const errorBox = '#sensitivity-panel > .error:not([hidden])';

test('sensitivity panel: scan, recipe within budget, evaluated into Compare, cancel, recipe.json for the CLI', { timeout: 300_000 }, async () => {
  assert.ok(existsSync(native), `${native} is missing: build it with \`cargo build\` (npm test's cargo suite does)`);
  const { page, problems } = await openPage(lab.browser, `${lab.server.url}?panel=sensitivity&sens=q4_0:layer:32&recipe=q8_0:bpw:4.7`);
  await page.waitForSelector('#sensitivity-panel:not([hidden])', { timeout: 120_000 });
  assert.equal(await page.inputValue('#sens-format'), 'q4_0');
  assert.equal(await page.inputValue('#sens-tokens'), '32');

  // Three layers only.
  await page.fill('#sens-units', 'blk.0, blk.1, blk.2');
  await page.click('#sens-run');
  await page.waitForFunction((sel) => document.querySelector('#sensitivity-body')?.dataset.done || document.querySelector(sel), errorBox, { timeout: 120_000 });
  assert.equal(await page.locator(errorBox).count(), 0, (await page.locator(errorBox).count()) ? await page.locator(errorBox).innerText() : '');
  const rows = await page.locator('#sens-table tbody tr').evaluateAll((trs) => trs.map((tr) => ({ unit: tr.dataset.unit, kl: Number(tr.dataset.kl), bytes: Number(tr.dataset.bytes) })));
  assert.deepEqual(rows.map((r) => r.unit).sort(), ['blk.0', 'blk.1', 'blk.2']);
  assert.ok(rows.every((r) => Number.isFinite(r.kl) && r.kl > 0 && r.bytes > 0), JSON.stringify(rows));
  assert.ok(rows.every((r, i) => i === 0 || rows[i - 1].kl >= r.kl), `ranked: ${JSON.stringify(rows)}`);
  assert.equal(await page.locator('#sens-chart').getAttribute('data-points'), '3');
  assert.match(await page.locator('#sens-summary').innerText(), /3 layer units of the model at q4_0, 1 window\(s\) of 32 tokens \(31 scored\)/);

  // 4.7 bits/weight over q4_0's 4.5: room for one layer at q8_0 (about 1.8 MB each), not two.
  await page.click('#sens-recommend');
  await page.waitForSelector('#sens-recipe-summary');
  const summary = page.locator('#sens-recipe-summary');
  assert.ok(Number(await summary.getAttribute('data-bytes')) <= Number(await summary.getAttribute('data-budget')));
  assert.equal(await page.locator('#sens-promoted li').count(), 1);
  await page.locator('#sensitivity-panel').screenshot({ path: join(artifacts, 'sensitivity.png') });

  const file = await downloadOf(page, () => page.click('#sens-download'));
  assert.equal(file.name, 'recipe.json');
  const recipe = JSON.parse(file.bytes.toString('utf8'));
  assert.equal(recipe.version, 1);
  assert.equal(recipe.default.format, 'q4_0');
  assert.equal(recipe.tensors.filter((t) => t.format === 'q8_0').length, 7, 'one layer: its seven matrices');
  const dir = mkdtempSync(join(tmpdir(), 'ql-recipe-'));
  try {
    writeFileSync(join(dir, 'recipe.json'), file.bytes);
    const out = join(dir, 'out.gguf');
    execFileSync(native, ['quantize', join(repo, 'models/SmolLM2-135M-Instruct.Q4_1.gguf'), '--recipe', join(dir, 'recipe.json'), '-o', out], { stdio: 'pipe' });
    const header = readGgufHeader(readFileSync(out));
    const promoted = recipe.tensors.filter((t) => t.format === 'q8_0').map((t) => t.name);
    for (const name of promoted) assert.equal(header.tensors.find((t) => t.name === name).typeName, 'Q8_0', name);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  // Evaluate with a short protocol: a Compare row marked as a recipe.
  await page.selectOption('#compare-ctx', '64');
  await page.selectOption('#compare-windows', '1');
  await page.click('#sens-evaluate');
  await page.waitForFunction((sel) => document.querySelector('#sens-recipe')?.dataset.evaluated || document.querySelector(sel), errorBox, { timeout: 120_000 });
  assert.equal(await page.locator(errorBox).count(), 0, (await page.locator(errorBox).count()) ? await page.locator(errorBox).innerText() : '');
  const name = await page.locator('#sens-recipe').getAttribute('data-evaluated');
  assert.equal(name, recipe.name);
  const row = page.locator('#compare-table tr').filter({ has: page.locator('td[data-recipe]') });
  assert.equal(await row.count(), 1);
  for (const attr of ['data-ppl', 'data-kl']) {
    const v = Number(await row.getAttribute(attr));
    assert.ok(Number.isFinite(v) && v > 0, `${attr} ${v}`);
  }
  const bpw = Number(await row.getAttribute('data-bpw'));
  assert.ok(bpw > 4.5 && bpw < 5, `bpw ${bpw}`);
  assert.ok((await page.locator('#compare-chart svg').getAttribute('aria-label')).length > 0);
  // The recipe is each chart's one diamond (perplexity and KL; formats are circles).
  const diamonds = await page.locator('#compare-chart svg [aria-label=dot] path title').allTextContents();
  assert.equal(diamonds.length, await page.locator('#compare-chart svg[aria-label]').count());
  for (const t of diamonds) assert.match(t, /^recipe /);

  // A scan of every layer, cancelled once it reports progress.
  await page.fill('#sens-units', '');
  await page.click('#sens-run');
  await page.waitForFunction(() => Number(document.querySelector('#sens-progress-bar')?.getAttribute('value') ?? 0) > 0, null, { timeout: 60_000 });
  await page.click('#sens-progress-cancel');
  await page.waitForSelector(errorBox, { timeout: 60_000 });
  assert.match(await page.locator(errorBox).innerText(), /cancelled/);
  assert.equal(await page.locator('#sensitivity-body').getAttribute('data-cancelled'), 'true');
  assert.deepEqual(problems, []);
});
