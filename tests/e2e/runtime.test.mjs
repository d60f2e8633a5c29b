// Panels 6–8 on the default model (contract A runtime): a two-format comparison run to
// completion (Q8_0 closer to the base than Q4_0), saved results and the quant manifest,
// side-by-side generation with the first divergence highlighted, export to GGUF and
// safetensors checked with an independent reader, and cancelling a running comparison.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readGgufHeader } from './gguf-read.mjs';
import { artifacts, downloadOf, openPage, repoRoot, useLab } from './harness.mjs';

const lab = useLab();
const MODEL_SHA256 = createHash('sha256').update(readFileSync(join(repoRoot, 'models/SmolLM2-135M-Instruct.Q4_1.gguf'))).digest('hex');

const rowNumber = (page, format, attr) => page.locator(`#compare-table tr[data-format="${format}"]`).getAttribute(attr).then(Number);

test('compare q8_0 and q4_0 to completion; manifest; generate side by side; export', { timeout: 900_000 }, async () => {
  const { page, problems } = await openPage(lab.browser, `${lab.server.url}?compare=q8_0,q4_0&format=q8_0&panel=compare`);
  await page.waitForSelector('#tensor-table tbody tr', { timeout: 120_000 });
  // The default protocol scores at least 2,048 tokens (5 windows × 511) and says so; this test
  // picks a short one explicitly to keep the suite quick.
  assert.equal(await page.locator('#compare-ctx').inputValue(), '512');
  assert.equal(await page.locator('#compare-windows').inputValue(), '5');
  assert.match(await page.locator('#protocol-note').innerText(), /2555 tokens/);
  assert.match(await page.locator('#compare-stats-note').innerText(), /paired/);
  await page.selectOption('#compare-ctx', '128');
  await page.selectOption('#compare-windows', '1');

  await page.click('#compare-run');
  await page.waitForSelector('#compare-steps li progress');
  assert.equal(await page.locator('#compare-steps li').count(), 4);
  await page.waitForFunction(() => document.querySelector('#compare-body')?.dataset.done || document.querySelector('#compare-panel > .error:not([hidden])'), null, { timeout: 600_000 });
  assert.equal(await page.locator('#compare-panel > .error:not([hidden])').count(), 0);
  const values = await page.locator('#compare-steps progress').evaluateAll((bars) => bars.map((b) => b.value));
  assert.deepEqual(values, [1, 1, 1, 1]);

  const base = await rowNumber(page, 'base', 'data-ppl');
  const q8 = await rowNumber(page, 'q8_0', 'data-ppl');
  const q4 = await rowNumber(page, 'q4_0', 'data-ppl');
  assert.ok(Number.isFinite(base) && base > 1, `base ppl ${base}`);
  assert.equal(await rowNumber(page, 'q8_0', 'data-base-ppl'), base);
  assert.ok(Math.abs(q8 - base) < Math.abs(q4 - base), `q8_0 ${q8} should be closer to the base ${base} than q4_0 ${q4}`);
  assert.ok((await rowNumber(page, 'q8_0', 'data-kl')) < (await rowNumber(page, 'q4_0', 'data-kl')));
  assert.equal(await rowNumber(page, 'q8_0', 'data-bpw'), 8.5);
  // Paired statistics: Δppl as the perplexities' difference, with a positive standard error.
  for (const f of ['q8_0', 'q4_0']) {
    const d = await rowNumber(page, f, 'data-delta-ppl');
    const ppl = await rowNumber(page, f, 'data-ppl');
    assert.ok(Math.abs(d - (ppl - base)) < 1e-6 * base, `${f}: paired Δppl ${d} vs ${ppl - base}`);
    assert.ok((await rowNumber(page, f, 'data-delta-ppl-stderr')) > 0, `${f}: Δppl standard error`);
  }
  assert.match(await page.locator('#compare-table').innerText(), /base \(Q4_1 checkpoint dequantized\)/);
  // Frontier: q4_0 is smallest; q8_0 is on it only if it beats the base's perplexity.
  const frontier = JSON.parse(await page.locator('#compare-chart').getAttribute('data-frontier'));
  assert.equal(frontier[0], 'q4_0');
  assert.equal(frontier.includes('q8_0'), q8 < base);
  await page.locator('#compare-panel').screenshot({ path: join(artifacts, 'compare.png') });
  // Running the same formats and protocol again reuses the saved results (nothing is measured).
  const firstDone = await page.locator('#compare-body').getAttribute('data-done');
  await page.click('#compare-run');
  await page.waitForFunction((d) => document.querySelector('#compare-body')?.dataset.done !== d, firstDone, { timeout: 60_000 });
  assert.equal(await page.locator('#compare-steps li[data-cached]').count(), 2);
  assert.equal(await rowNumber(page, 'q8_0', 'data-ppl'), q8);

  // The quant manifest: source hash, format, scheme, protocol, numbers.
  const json = await downloadOf(page, async () => {
    await page.click('#export-json');
    await page.click('#export-links a');
  });
  const manifests = JSON.parse(json.bytes.toString('utf8'));
  assert.equal(manifests.length, 2);
  for (const m of manifests) {
    assert.equal(m.source.sha256, MODEL_SHA256);
    assert.equal(m.source.format, 'Q4_1');
    assert.deepEqual([m.protocol.ctx, m.protocol.windows, m.protocol.tokensScored], [128, 1, 127]);
    assert.match(m.protocol.text, /Moby-Dick chapters 1–3/);
    assert.ok(m.result.scheme && typeof m.result.scheme === 'object');
  }
  assert.equal(manifests.find((m) => m.result.format === 'q8_0').result.ppl, q8);

  // Per-layer error bars for a chosen format: one bar per quantized matrix (finite SQNR in the
  // saved quantize report; a matrix copied unchanged has none), and q8_0 far above q4_0 on every
  // matrix both quantized (about 6 dB per bit).
  const errorsOf = (f) => manifests.find((m) => m.result.format === f).result.tensorErrors;
  const quantizedOf = (f) => errorsOf(f).filter((e) => typeof e.sqnrDb === 'number');
  assert.equal(errorsOf('q8_0').length, 1 + 30 * 7);
  for (const f of ['q4_0', 'q8_0']) {
    await page.selectOption('#compare-layer-format', f);
    const bars = await page.locator('#compare-layer-errors svg g[aria-label="bar"] rect').count();
    assert.equal(bars, quantizedOf(f).length, `${f}: bars`);
    assert.ok(bars >= 200, `${f}: only ${bars} quantized matrices`);
    assert.equal(await page.locator('#compare-layer-errors').getAttribute('data-matrices'), String(bars));
    assert.equal(await page.locator('#compare-layer-caption').getAttribute('data-quantized'), String(bars));
  }
  const q4Sqnr = new Map(quantizedOf('q4_0').map((e) => [e.name, e.sqnrDb]));
  for (const e of quantizedOf('q8_0')) if (q4Sqnr.has(e.name)) assert.ok(e.sqnrDb > q4Sqnr.get(e.name) + 15, `${e.name}: q8_0 ${e.sqnrDb} vs q4_0 ${q4Sqnr.get(e.name)}`);
  await page.locator('#compare-panel').screenshot({ path: join(artifacts, 'compare-layers.png') });
  const csv = await downloadOf(page, async () => {
    await page.click('#export-csv');
    await page.click('#export-links a');
  });
  const lines = csv.bytes.toString('utf8').trim().split('\n');
  assert.equal(lines.length, 3);
  assert.match(lines[0], /^source,source_sha256,source_format,format,bits_per_weight/);
  assert.ok(lines.slice(1).every((l) => l.includes(MODEL_SHA256)));

  // Saved in IndexedDB: a reload shows the same rows.
  await page.reload();
  await page.waitForSelector('#compare-table tr[data-format="q4_0"]', { timeout: 120_000 });
  assert.equal(await rowNumber(page, 'q4_0', 'data-ppl'), q4);

  // Side by side: same prompt and seed; the highlighted token is the first whose ids differ.
  await page.fill('#format', 'q4_0');
  await page.press('#format', 'Enter');
  await page.fill('#gen-max', '24');
  await page.click('#gen-run');
  await page.waitForFunction(() => document.querySelector('#generate-body')?.dataset.divergence || document.querySelector('#generate-panel > .error:not([hidden])'), null, { timeout: 300_000 });
  const ids = (sel) => page.locator(`${sel} span`).evaluateAll((spans) => spans.map((s) => s.dataset.token));
  const [a, b] = [await ids('#gen-base'), await ids('#gen-quantized')];
  assert.equal(a.length, 24);
  let first = a.findIndex((id, i) => id !== b[i]);
  if (first < 0 && a.length === b.length) first = -1;
  assert.equal(Number(await page.locator('#generate-body').getAttribute('data-divergence')), first);
  if (first >= 0) {
    assert.equal(await page.locator('#gen-base span').nth(first).getAttribute('class'), 'diverge');
    assert.equal(await page.locator('.diverge').count(), b.length > first ? 2 : 1);
  }
  assert.ok(Number(await page.locator('#gen-base-stats').getAttribute('data-tokens-per-sec')) > 0);
  assert.match(await page.locator('#gen-quantized-stats').innerText(), /generation [\d.]+ tok\/s/);
  await page.locator('#generate-panel').screenshot({ path: join(artifacts, 'generate.png') });

  // Export: q4_0 is GGUF-native → a GGUF whose block weights are Q4_0.
  // One click: the export hands the file to the browser (the link is for another copy).
  const gguf = await downloadOf(page, () => page.click('#export-run'));
  assert.equal(gguf.name, 'SmolLM2-135M-Instruct.Q4_1.q4_0.gguf');
  assert.equal(gguf.bytes.toString('latin1', 0, 4), 'GGUF');
  const header = readGgufHeader(gguf.bytes);
  assert.equal(header.tensors.find((t) => t.name === 'blk.0.attn_q.weight').typeName, 'Q4_0');
  assert.equal(header.tensors.length, 272);

  // NF4 is not a ggml type → safetensors: an 8-byte little-endian header length, then JSON.
  // "nf4" is shown, exported and named by its canonical name.
  await page.fill('#format', 'nf4');
  await page.press('#format', 'Enter');
  assert.equal(await page.inputValue('#format'), 'nf4-b64');
  const st = await downloadOf(page, () => page.click('#export-run'));
  assert.match(st.name, /\.nf4-b64\.safetensors$/);
  const headerLen = Number(st.bytes.readBigUInt64LE(0));
  const stHeader = JSON.parse(st.bytes.toString('utf8', 8, 8 + headerLen));
  assert.ok(Object.keys(stHeader).some((k) => k.startsWith('blk.0.attn_q.weight')), Object.keys(stHeader).slice(0, 5).join(', '));

  // A Hugging Face checkpoint in AutoGPTQ's layout: model.safetensors + config.json from one click,
  // HF tensor names, qweight packed 8 codes per int32 along the input (576 / 8 = 72 rows).
  await page.fill('#format', 'int4-sym-g64');
  await page.press('#format', 'Enter');
  await page.waitForFunction(() => document.querySelector('#export-run')?.dataset.state === 'valid', null, { timeout: 60_000 });
  await page.selectOption('#export-layout', 'gptq');
  const files = new Map();
  const both = new Promise((resolve) => {
    page.on('download', async (d) => {
      files.set(d.suggestedFilename(), readFileSync(await d.path()));
      if (files.size === 2) resolve();
    });
  });
  await page.click('#export-run');
  let timer;
  await Promise.race([both, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`downloads: ${[...files.keys()]}`)), 300_000)))]);
  clearTimeout(timer);
  const config = JSON.parse(files.get('config.json').toString('utf8'));
  assert.deepEqual([config.quantization_config.quant_method, config.quantization_config.bits, config.quantization_config.group_size], ['gptq', 4, 64]);
  const hf = files.get('model.safetensors');
  const hfHeader = JSON.parse(hf.toString('utf8', 8, 8 + Number(hf.readBigUInt64LE(0))));
  assert.deepEqual([hfHeader['model.layers.0.self_attn.q_proj.qweight'].dtype, hfHeader['model.layers.0.self_attn.q_proj.qweight'].shape], ['I32', [72, 576]]);
  assert.match(await page.locator('#export-summary').innerText(), /210 linear layers quantized/);
  await page.selectOption('#export-layout', 'file');
  assert.deepEqual(problems, []);
  await page.close();
});

test('a running comparison stops on Cancel and the lab stays usable', { timeout: 300_000 }, async () => {
  const { page, problems } = await openPage(lab.browser, `${lab.server.url}?compare=q8_0&panel=compare`);
  await page.waitForSelector('#tensor-table tbody tr', { timeout: 120_000 });
  await page.selectOption('#compare-ctx', '128');
  await page.selectOption('#compare-windows', '1');
  await page.click('#compare-run');
  await page.waitForFunction(() => /Evaluating \d+ of/.test(document.querySelector('#compare-progress-label')?.textContent ?? ''), null, { timeout: 300_000 });
  const t0 = Date.now();
  await page.click('#compare-progress-cancel');
  await page.waitForFunction(() => /cancelled/i.test(document.querySelector('#compare-panel > .error')?.textContent ?? ''), null, { timeout: 60_000 });
  console.log(`# cancel took ${Date.now() - t0} ms`);
  assert.equal(await page.locator('#compare-run').isEnabled(), true);
  // The worker still answers.
  await page.locator('tr[data-tensor="blk.0.attn_k.weight"]').click();
  await page.waitForFunction(() => document.querySelector('#histogram')?.dataset.total === String(576 * 192), null, { timeout: 60_000 });
  assert.deepEqual(problems, []);
  await page.close();
});

test('activation magnitudes per input channel on the calibration text: progress, cancel, reuse across tensors', { timeout: 600_000 }, async () => {
  const { page, problems } = await openPage(lab.browser, `${lab.server.url}?tensor=blk.0.ffn_down.weight&panel=outliers`);
  await page.waitForFunction(() => document.querySelector('#outliers-caption')?.textContent?.includes('1536 input channels'), null, { timeout: 120_000 });
  // A long run can be cancelled.
  await page.selectOption('#act-tokens', '256');
  await page.click('#act-run');
  await page.waitForFunction(() => /Analysing \d+ of 256/.test(document.querySelector('#act-progress-label')?.textContent ?? ''), null, { timeout: 300_000 });
  await page.click('#act-progress-cancel');
  await page.waitForFunction(() => /Cancelled/.test(document.querySelector('#outliers-panel > .error')?.textContent ?? ''), null, { timeout: 60_000 });
  // A short run to completion: silu(gate)·up has 1536 channels.
  await page.selectOption('#act-tokens', '16');
  await page.click('#act-run');
  await page.waitForFunction(() => document.querySelector('#act-caption')?.dataset.tokens === '16', null, { timeout: 300_000 });
  assert.equal(await page.locator('#act-caption').getAttribute('data-channels'), '1536');
  assert.match(await page.locator('#act-caption').innerText(), /first 16 tokens of Moby-Dick chapter 4 \(from the calibration chapters 4–135; the eval text is chapters 1–3\)/);
  assert.equal(await page.locator('#act-chart svg g[aria-label="rect"] rect').count(), 1536);
  const outliers = JSON.parse(await page.locator('#act-chart').getAttribute('data-outliers'));
  assert.ok(Array.isArray(outliers) && outliers.every((c) => Number.isInteger(c) && c >= 0 && c < 1536));
  await page.locator('#outliers-panel').screenshot({ path: join(artifacts, 'activations.png') });
  // Another matrix of the model reuses the measurement: attn_q reads the normed residual (576 channels).
  await page.locator('tr[data-tensor="blk.5.attn_q.weight"]').click();
  await page.waitForFunction(() => document.querySelector('#act-caption')?.textContent?.includes('blk.5.attn_q.weight') && document.querySelector('#act-caption')?.dataset.channels === '576', null, { timeout: 60_000 });
  assert.deepEqual(problems, []);
  await page.close();
});
