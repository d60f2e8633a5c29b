// The first slice end to end, as a user sees it: the default model's tensor table, a
// histogram with the right count, the GPU status line, and a truncated file's error message.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { artifacts, launchBrowser, openPage, repoRoot, startServer } from './harness.mjs';

const MODEL = join(repoRoot, 'models/SmolLM2-135M-Instruct.Q4_1.gguf');
let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  server?.stop();
});

test('default model: tensor table, histogram of blk.0.attn_q.weight, GPU status', { timeout: 180_000 }, async () => {
  const { page, problems } = await openPage(browser, server.url);
  // 272 tensors, read independently by gguf-py from the same file.
  await page.waitForSelector('#tensor-table tbody tr, #error:not([hidden])', { timeout: 120_000 });
  assert.equal(await page.locator('#error').isHidden(), true, await page.locator('#error').innerText());
  assert.equal(await page.locator('#tensor-table tbody tr').count(), 272);
  const row = page.locator('tr[data-tensor="blk.0.attn_q.weight"]');
  assert.match(await row.innerText(), /576 × 576\s+Q4_1\s+203 KiB\s+5$/);
  assert.equal(await row.locator('td[data-bytes]').getAttribute('data-bytes'), '207360');
  assert.match(await page.locator('#base-note').innerText(), /already quantized \(Q4_1\)/);

  await row.click();
  await page.waitForSelector('#histogram svg', { timeout: 60_000 });
  // The chart's bins must account for every weight of the 576×576 matrix.
  assert.equal(Number(await page.locator('#histogram').getAttribute('data-total')), 576 * 576);
  assert.equal(Number(await page.locator('#histogram-caption').getAttribute('data-total')), 576 * 576);
  assert.match(await page.locator('#histogram-caption').innerText(), /331,776 values .* decoded from Q4_1/);
  assert.match(page.url(), /tensor=blk\.0\.attn_q\.weight/);

  // The status line names the adapter and whether shader-f16 exists, or says WebGPU is missing.
  const gpu = page.locator('#gpu-status');
  await page.waitForFunction(() => document.querySelector('#gpu-status')?.dataset.state !== 'probing', null, { timeout: 60_000 });
  const gpuText = await gpu.innerText();
  if ((await gpu.getAttribute('data-state')) === 'available') {
    assert.match(gpuText, /shader-f16: (yes|no)/);
    assert.match(gpuText, /compute check passed/);
  } else {
    assert.match(gpuText, /^WebGPU unavailable: .+/);
  }
  console.log(`# GPU status: ${gpuText}`);
  await page.screenshot({ path: join(artifacts, 'lab-histogram.png'), fullPage: true });
  assert.deepEqual(problems, []);
  await page.close();
});

test('a truncated GGUF shows a clear error and the page keeps working', { timeout: 180_000 }, async () => {
  const { page } = await openPage(browser, `${server.url}?model=none`);
  await page.waitForFunction(() => document.querySelector('#core-status')?.textContent?.includes('core'));
  const truncated = join(artifacts, 'truncated.gguf');
  // Header intact, tensor data cut: the reader must name the tensor that runs past the end.
  writeFileSync(truncated, readFileSync(MODEL).subarray(0, 40_000_000));
  await page.setInputFiles('#file-input', truncated);
  const error = page.locator('#error');
  await error.waitFor({ state: 'visible', timeout: 60_000 });
  const text = await error.innerText();
  assert.match(text, /truncated/i);
  assert.match(text, /tensor '?[\w.]+'?/);
  assert.doesNotMatch(text, /panicked|RuntimeError|unreachable/);

  // Not a GGUF at all.
  const junk = join(artifacts, 'not-a-model.gguf');
  writeFileSync(junk, 'PK\u0003\u0004 this is a zip, not a model');
  await page.setInputFiles('#file-input', junk);
  await page.waitForFunction(() => /not a GGUF/i.test(document.querySelector('#error')?.textContent ?? ''), null, { timeout: 30_000 });

  // A good file opened afterwards still loads.
  await page.setInputFiles('#file-input', MODEL);
  await page.waitForSelector('#tensor-table tbody tr', { timeout: 60_000 });
  assert.equal(await page.locator('#tensor-table tbody tr').count(), 272);
  assert.equal(await error.isHidden(), true);
  await page.screenshot({ path: join(artifacts, 'lab-after-bad-files.png'), fullPage: true });
  await page.close();
});
