// Compare's "Task checks" column in Chromium, on the default model: the instruct task suite
// after the perplexity run, on the base and q4_0, with the numbers `quantlab eval --tasks --json`
// prints for the same suite and format (the native CLI is the reference), a details view of
// the tasks to look at, the result saved with the row (a second run measures nothing), and a
// bad suite file refused with an error naming what is wrong. The suite is the cut-down
// tests/fixtures/tasks/five.json (one task of each rule kind, short budgets): the full
// 16-task suite with 48-token answers takes minutes per model in the browser.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { artifacts, openPage, repoRoot, useLab } from './harness.mjs';

const lab = useLab();
const SUITE = join(repoRoot, 'tests/fixtures/tasks/five.json');
const MODEL = join(repoRoot, 'models/SmolLM2-135M-Instruct.Q4_1.gguf');

const cell = (page, format) => page.locator(`#compare-table tr[data-format="${format}"] td.tasks`);
const numbers = async (page, format) => ({
  valid: Number(await cell(page, format).getAttribute('data-tasks-valid')),
  agreement: Number(await cell(page, format).getAttribute('data-tasks-agreement')),
});

/** `quantlab eval --tasks SUITE -f q4_0 --pure --json` (Compare's formats are pure) from the native binary npm test's cargo suite builds. */
function cliRows() {
  const native = join(process.env.CARGO_TARGET_DIR ?? join(repoRoot, 'target'), 'debug/quantlab');
  assert.ok(existsSync(native), `${native} is missing: build it with \`cargo build\` (npm test's cargo suite does)`);
  const out = execFileSync(native, ['eval', MODEL, '--tasks', SUITE, '-f', 'q4_0', '--pure', '--threads', '1', '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(out).rows;
}

test('task checks in Compare: base and q4_0 equal the CLI, details, saved with the row', { timeout: 900_000 }, async () => {
  const { page, problems } = await openPage(lab.browser, `${lab.server.url}?compare=q4_0&panel=compare`);
  await page.waitForSelector('#tensor-table tbody tr', { timeout: 120_000 });
  await page.selectOption('#compare-ctx', '128');
  await page.selectOption('#compare-windows', '1');
  await page.check('#compare-tasks');

  // A broken suite file is refused before anything runs, naming what is wrong.
  await page.setInputFiles('#compare-tasks-file', { name: 'broken.json', mimeType: 'application/json', buffer: Buffer.from('{"tasks": [{"id": "a", "prompt": "p", "rule": {"kind": "vibes"}}]}') });
  await page.click('#compare-run');
  await page.waitForFunction(() => /vibes/.test(document.querySelector('#compare-panel > .error:not([hidden])')?.textContent ?? ''), null, { timeout: 120_000 });
  assert.match(await page.locator('#compare-panel > .error').innerText(), /broken\.json.*unknown variant `vibes`/s);

  await page.setInputFiles('#compare-tasks-file', SUITE);
  await page.click('#compare-run');
  await page.waitForSelector('#compare-steps li progress');
  assert.equal(await page.locator('#compare-steps li').count(), 3, 'quantize, evaluate, task checks');
  await page.waitForFunction(() => document.querySelector('#compare-body')?.dataset.done || document.querySelector('#compare-panel > .error:not([hidden])'), null, { timeout: 600_000 });
  const error = page.locator('#compare-panel > .error:not([hidden])');
  assert.equal(await error.count(), 0, (await error.count()) ? await error.innerText() : '');

  const [cliBase, cliQ4] = cliRows();
  const base = await numbers(page, 'base');
  const q4 = await numbers(page, 'q4_0');
  assert.deepEqual(base, { valid: cliBase.valid, agreement: 1 });
  assert.deepEqual(q4, { valid: cliQ4.valid, agreement: cliQ4.agreement });
  for (const x of [base.valid, q4.valid, q4.agreement]) assert.ok(x >= 0 && x <= 1);
  assert.match(await cell(page, 'q4_0').innerText(), new RegExp(`valid ${Math.round(100 * q4.valid)}% · agree ${Math.round(100 * q4.agreement)}%`));

  // The details list exactly the tasks the CLI reports invalid or not the base's answer, with their answers.
  const flagged = cliQ4.tasks.filter((t) => !t.valid || !t.agrees_with_base);
  const details = cell(page, 'q4_0').locator('details');
  await details.locator('summary').click();
  assert.deepEqual(await details.locator('li').evaluateAll((lis) => lis.map((li) => li.dataset.task)), flagged.map((t) => t.id));
  for (const t of flagged) {
    const line = await details.locator(`li[data-task="${t.id}"]`).innerText();
    assert.ok(line.includes(t.text.trim().replace(/\s+/g, ' ').slice(0, 60)), `${t.id}: ${line} vs ${t.text}`);
  }
  await page.locator('#compare-panel').screenshot({ path: join(artifacts, 'compare-tasks.png') });

  // Saved with the row: the same run again reuses it (nothing measured), with its task checks.
  const firstDone = await page.locator('#compare-body').getAttribute('data-done');
  await page.click('#compare-run');
  await page.waitForFunction((d) => document.querySelector('#compare-body')?.dataset.done !== d, firstDone, { timeout: 60_000 });
  assert.deepEqual(await page.locator('#compare-steps li[data-cached]').evaluateAll((lis) => lis.map((li) => li.dataset.step)), ['2'], 'the saved row with its task checks, not a re-run');
  assert.deepEqual(await numbers(page, 'q4_0'), q4);
  assert.deepEqual(problems, []);
  await page.close();
});
