// Activation quantization in the lab, in Chromium, on the default model (issue #15):
// - Compare's "Activations" choice: W8A8 per-token and W8A8 SmoothQuant α=0.5 rows beside the
//   int8-sym-channel weights-only row, against `quantlab eval --activations int8-token
//   [--smoothquant 0.5] --json` on the same protocol (the native CLI is the reference): the base
//   and weights-only rows to 1e-6 (ppl) and 1e-4 (KL) relative, the rows with quantized
//   activations within the CLI's paired standard errors (INT8 rounding turns the last-ulp
//   differences of glibc's and libm's exp/sin/cos into different codes; tests/wasm/act_eval.test.ts);
//   and the "size at context" column: weights plus the KV cache of N positions.
// - The Outliers panel's SmoothQuant view of blk.0.attn_q.weight's input: the maxima measured on
//   the smoothed model equal max|X_j| / s_j from the numbers the page shows, and LLM.int8()'s
//   float columns are as many as the CLI's `--activations llm-int8` counts for layer 0's attention
//   input over the same 128 tokens (that input comes before any quantized product, so the CLI's
//   run and the page's calibration run see the same values).
// Short protocol (ctx 64, one window; 128 calibration tokens) to keep the browser time small.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openPage, repoRoot, useLab } from './harness.mjs';

const lab = useLab();
const MODEL = join(repoRoot, 'models/SmolLM2-135M-Instruct.Q4_1.gguf');
const PROTOCOL = ['--ctx', '64', '--max-windows', '1', '--threads', '1', '--device', 'cpu'];
const CALIB_TOKENS = 128;

function native() {
  const bin = join(process.env.CARGO_TARGET_DIR ?? join(repoRoot, 'target'), 'debug/quantlab');
  assert.ok(existsSync(bin), `${bin} is missing: build it with \`cargo build\` (npm test's cargo suite does)`);
  return bin;
}

/** The CLI's rows for `args` on the protocol above. */
const cliRows = (args) => JSON.parse(execFileSync(native(), ['eval', MODEL, ...args, ...PROTOCOL, '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })).rows;

const within = (got, want, rel) => Math.abs(got - want) <= rel * Math.abs(want);
const row = (page, format) => page.locator(`#compare-table tr[data-format="${format}"]`);

async function runCompare(page, choice) {
  await page.selectOption('#compare-activations', choice);
  const before = await page.locator('#compare-body').getAttribute('data-done');
  await page.click('#compare-run');
  await page.waitForFunction((d) => document.querySelector('#compare-body')?.dataset.done !== d || document.querySelector('#compare-panel > .error:not([hidden])'), before, { timeout: 600_000 });
  const error = page.locator('#compare-panel > .error:not([hidden])');
  assert.equal(await error.count(), 0, (await error.count()) ? await error.innerText() : '');
}

test('Compare: W8A8 per-token and SmoothQuant rows equal the CLI, with the size at a context', { timeout: 900_000 }, async () => {
  const { page, problems } = await openPage(lab.browser, `${lab.server.url}?compare=int8-sym-channel&panel=compare`);
  await page.waitForSelector('#tensor-table tbody tr', { timeout: 120_000 });
  await page.selectOption('#compare-ctx', '64');
  await page.selectOption('#compare-windows', '1');
  await page.fill('#compare-calib-tokens', String(CALIB_TOKENS));
  await page.fill('#compare-alpha', '0.5');

  await runCompare(page, 'token');
  assert.deepEqual(await page.locator('#compare-steps li span').allInnerTexts(), ['Quantize int8-sym-channel', 'Evaluate int8-sym-channel against the base', 'Evaluate int8-sym-channel with quantized activations']);
  await runCompare(page, 'smoothquant');

  const token = cliRows(['-f', 'int8-sym-channel', '--pure', '--activations', 'int8-token']);
  const smooth = cliRows(['-f', 'int8-sym-channel', '--pure', '--activations', 'int8-token', '--smoothquant', '0.5', '--calib-tokens', String(CALIB_TOKENS)]);
  for (const want of [token[1], token[2], smooth[2]]) {
    const tr = row(page, want.format);
    assert.equal(await tr.count(), 1, `a row named ${want.format}`);
    const ppl = Number(await tr.getAttribute('data-ppl'));
    const kl = Number(await tr.getAttribute('data-kl'));
    assert.equal(await tr.locator('td').first().getAttribute('data-activations'), want.activations === 'f32' ? null : want.activations);
    if (want.activations === 'f32') {
      assert.ok(within(ppl, want.ppl, 1e-6), `${want.format} ppl: page ${ppl} vs CLI ${want.ppl}`);
      assert.ok(within(kl, want.kl_mean, 1e-4), `${want.format} KL: page ${kl} vs CLI ${want.kl_mean}`);
      continue;
    }
    const p = want.paired;
    const delta = Number(await tr.getAttribute('data-delta-ppl'));
    assert.ok(Math.abs(delta - p.delta_ppl) <= 2 * p.delta_ppl_stderr, `${want.format} Δppl: page ${delta} vs CLI ${p.delta_ppl} ± ${p.delta_ppl_stderr}`);
    assert.ok(Math.abs(kl - p.kl_mean) <= 2 * p.kl_stderr, `${want.format} KL: page ${kl} vs CLI ${p.kl_mean} ± ${p.kl_stderr}`);
    assert.ok(kl - token[1].kl_mean > 2 * p.kl_stderr, `${want.format}: quantized activations cost KL beyond the weights-only row`);
  }
  assert.ok(within(Number(await row(page, 'base').getAttribute('data-ppl')), token[0].ppl, 1e-6));

  // Size at context 2048: weights + 2 (K, V) × 30 layers × 3 KV heads × 64 values × 4 bytes (f32) per position.
  await page.fill('#compare-size-ctx', '2048');
  const kv = 2048 * 2 * 30 * 3 * 64 * 4;
  const sizeCell = (format) => row(page, format).locator('td[data-bytes]');
  assert.equal(Number(await sizeCell('base').getAttribute('data-bytes')), statSync(MODEL).size + kv);
  for (const format of [token[1].format, token[2].format]) {
    const weights = Number(await row(page, format).getAttribute('data-weight-bytes'));
    assert.ok(weights > 0);
    assert.equal(Number(await sizeCell(format).getAttribute('data-bytes')), weights + kv, format);
  }
  assert.match(await page.locator('#compare-table th').nth(3).innerText(), /Size at ctx 2048/);
  assert.deepEqual(problems, []);
  await page.close();
});

test('Outliers: channel maxima after SmoothQuant are max|X_j|/s_j; LLM.int8() float columns as the CLI counts', { timeout: 600_000 }, async () => {
  const { page, problems } = await openPage(lab.browser, `${lab.server.url}?tensor=blk.0.attn_q.weight`);
  await page.waitForSelector('#tensor-table tbody tr', { timeout: 120_000 });
  await page.locator('tr[data-tensor="blk.0.attn_q.weight"]').click();
  await page.fill('#smooth-alpha', '0.5');
  await page.fill('#smooth-threshold', '0.5');
  await page.selectOption('#smooth-tokens', String(CALIB_TOKENS));
  await page.click('#smooth-run');
  await page.waitForFunction(() => document.querySelector('#smooth-caption')?.dataset.outliers || document.querySelector('#outliers-panel > .error:not([hidden])'), null, { timeout: 300_000 });
  const before = JSON.parse(await page.locator('#smooth-before').getAttribute('data-values'));
  const after = JSON.parse(await page.locator('#smooth-after').getAttribute('data-values'));
  const factors = JSON.parse(await page.locator('#smooth-after').getAttribute('data-factors'));
  assert.equal(before.length, 576);
  // Layer 0's attention input: the smoothed model differs by f32 rounding only (norm_j / s_j).
  after.forEach((m, j) => assert.ok(Math.abs(m - before[j] / factors[j]) <= 1e-6 * m + 1e-7, `channel ${j}: ${m} vs ${before[j]} / ${factors[j]}`));
  const outliers = JSON.parse(await page.locator('#smooth-caption').getAttribute('data-outliers'));
  assert.deepEqual(outliers, before.flatMap((m, j) => (m >= 0.5 ? [j] : [])));

  // The CLI over the same 128 tokens (chapter 4, the first calibration chapter, holds enough text).
  const dir = mkdtempSync(join(tmpdir(), 'act-quant-'));
  const text = JSON.parse(readFileSync(join(repoRoot, 'data/moby-dick/chapter_4.json'), 'utf8')).text;
  writeFileSync(join(dir, 'chapter_4.txt'), text);
  const run = spawnSync(native(), ['eval', MODEL, '--text', join(dir, 'chapter_4.txt'), '--ctx', String(CALIB_TOKENS), '--max-windows', '1', '--threads', '1', '--device', 'cpu', '--activations', 'llm-int8', '--llm-int8-threshold', '0.5'], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  const layer0 = run.stderr.split('\n').find((l) => /^\s*layer\s+0:/.test(l));
  assert.ok(layer0, run.stderr);
  // Cells are mean/max/distinct per input; the first is attn_q/k/v's.
  const distinct = Number(layer0.split(':')[1].trim().split(/\s+/)[0].split('/')[2]);
  assert.ok(distinct > 0, 'threshold 0.5 leaves some float columns in layer 0');
  assert.equal(outliers.length, distinct);
  assert.deepEqual(problems, []);
  await page.close();
});
