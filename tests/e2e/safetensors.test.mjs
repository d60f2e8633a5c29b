// Panel 1 with a safetensors file: the tensor table (dtype, shape in ggml order, bytes) from a file
// built in the test, histograms of F32 / F16 / BF16 tensors whose totals and extremes equal the
// values written, a quantized entry (U8 codes) listed but refused with a clear message, and the
// runtime panels saying they need a GGUF.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { artifacts, openPage, useLab } from './harness.mjs';
import { buildSafetensors } from './tiny-safetensors.mjs';

const lab = useLab();

// Values exact in f16 and bf16 (multiples of 1/8 below 16), so every dtype decodes them exactly.
const grid = (n, f) => Array.from({ length: n }, (_, i) => f(i));
const tensors = [
  { name: 'model.layers.0.mlp.down_proj.weight', dtype: 'F32', shape: [4, 16], values: grid(64, (i) => Math.fround(Math.sin(i * 0.7) * 2)) },
  { name: 'model.layers.0.self_attn.q_proj.weight', dtype: 'F16', shape: [2, 8], values: grid(16, (i) => (i - 7) / 8) },
  { name: 'model.norm.weight', dtype: 'BF16', shape: [3, 8], values: grid(24, (i) => (i % 5) - 1.5) },
  { name: 'q.weight', dtype: 'U8', shape: [16], values: grid(16, (i) => i * 3) },
];

const min = (xs) => Math.min(...xs);
const max = (xs) => Math.max(...xs);

test('safetensors: tensor table, histograms of F32/F16/BF16, a U8 entry refused, runtime needs a GGUF', { timeout: 180_000 }, async () => {
  const file = join(artifacts, 'tiny.safetensors');
  writeFileSync(file, buildSafetensors({ tensors, metadata: { format: 'pt' } }));
  const { page, problems } = await openPage(lab.browser, `${lab.server.url}?model=none`);
  await page.waitForFunction(() => document.querySelector('#core-status')?.textContent?.includes('core'));
  await page.setInputFiles('#file-input', file);
  await page.waitForSelector('tr[data-tensor="q.weight"]', { timeout: 30_000 });

  // The table: file order, ggml-order shapes, dtypes, bytes.
  const rows = await page.locator('#tensor-table tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
  assert.deepEqual(rows.map((r) => r[0]), tensors.map((t) => t.name));
  assert.deepEqual(rows.map((r) => r[2]), ['F32', 'F16', 'BF16', 'U8']);
  const bytes = await page.locator('#tensor-table tbody td[data-bytes]').evaluateAll((tds) => tds.map((td) => Number(td.dataset.bytes)));
  assert.deepEqual(bytes, [256, 32, 48, 16]);
  assert.match(await page.locator('#model-card').innerText(), /safetensors, 4 tensors, 1 metadata keys/);
  assert.equal(await page.locator('#safetensors-note').count(), 1);

  // Histograms: total = tensor size, extremes = the values written (decoded from each dtype).
  for (const t of tensors.slice(0, 3)) {
    await page.locator(`tr[data-tensor="${t.name}"]`).click();
    await page.waitForFunction((n) => document.querySelector('#histogram-title')?.textContent?.includes(n) && document.querySelector('#histogram-caption')?.textContent?.includes(`decoded from`), t.name, { timeout: 30_000 });
    await page.waitForFunction((n) => document.querySelector('#histogram-caption')?.dataset.total === String(n), t.values.length, { timeout: 30_000 });
    assert.equal(Number(await page.locator('#histogram').getAttribute('data-total')), t.values.length, t.name);
    const caption = await page.locator('#histogram-caption').innerText();
    assert.ok(caption.includes(`min ${min(t.values).toPrecision(5)}`) && caption.includes(`max ${max(t.values).toPrecision(5)}`), `${t.name}: ${caption}`);
    assert.ok(caption.includes(`decoded from ${t.dtype}`), caption);
  }
  // The F32 matrix has 16 input channels in the outlier panel (PyTorch [4, 16] = 4 rows of 16).
  await page.locator('tr[data-tensor="model.layers.0.mlp.down_proj.weight"]').click();
  await page.waitForFunction(() => document.querySelector('#outliers-caption')?.textContent?.includes('4 output × 16 input channels'), null, { timeout: 30_000 });
  await page.screenshot({ path: join(artifacts, 'safetensors.png') });

  // The U8 codes of a quantized tensor are listed but not decoded as weights.
  await page.locator('tr[data-tensor="q.weight"]').click();
  await page.waitForFunction(() => /stored as U8/.test(document.querySelector('#histogram-panel')?.textContent ?? ''), null, { timeout: 30_000 });

  // Running the model needs a GGUF, and says so.
  await page.click('#compare-run');
  await page.waitForFunction(() => /needs a GGUF/.test(document.querySelector('#compare-panel')?.textContent ?? ''), null, { timeout: 30_000 });
  assert.deepEqual(problems, []);
  await page.close();
});
