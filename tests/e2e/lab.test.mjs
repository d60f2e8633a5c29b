// The first slice end to end, as a user sees it: the default model's tensor table, a
// histogram with the right count, the GPU status line, and a truncated file's error message.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { artifacts, openPage, repoRoot, useLab } from './harness.mjs';
import { tinyGguf } from './tiny-gguf.mjs';

const MODEL = join(repoRoot, 'models/SmolLM2-135M-Instruct.Q4_1.gguf');
const lab = useLab();


test('default model: tensor table, histogram of blk.0.attn_q.weight, GPU status', { timeout: 180_000 }, async () => {
  const { page, problems } = await openPage(lab.browser, lab.server.url);
  // 272 tensors, read independently by gguf-py from the same file.
  await page.waitForSelector('#tensor-table tbody tr, #error:not([hidden])', { timeout: 120_000 });
  assert.equal(await page.locator('#error').isHidden(), true, await page.locator('#error').innerText());
  assert.equal(await page.locator('#tensor-table tbody tr').count(), 272);
  const row = page.locator('tr[data-tensor="blk.0.attn_q.weight"]');
  assert.match(await row.innerText(), /576 × 576\s+Q4_1\s+203 KiB\s+5\s/);
  assert.equal(await row.locator('td[data-bytes]').getAttribute('data-bytes'), '207360');
  assert.match(await page.locator('#base-note').innerText(), /already quantized \(Q4_1\)/);

  await row.click();
  await page.waitForSelector('#histogram svg', { timeout: 60_000 });
  assert.equal(await page.locator('#selected-tensor').innerText(), 'blk.0.attn_q.weight');
  // Model panel facts, and the plain statement that any base is the Q4_1 checkpoint dequantized.
  assert.equal(await page.locator('#model-arch').innerText(), 'llama');
  assert.match(await page.locator('#model-params').innerText(), /^134\.5M \(134,515,008\)$/);
  assert.match(await page.locator('#model-format').innerText(), /^Q4_1 · 61 F32, 210 Q4_1, 1 Q8_0$/);
  assert.match(await page.locator('#model-size').innerText(), /^93\.8 MiB/);
  assert.match(await page.locator('#base-note').innerText(), /this Q4_1 model dequantized/);
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
  const { page } = await openPage(lab.browser, `${lab.server.url}?model=none`);
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

  // A URL that does not exist: the HTTP status is named.
  await page.fill('#url-input', `${lab.server.url}models/no-such-model.gguf`);
  await page.click('#url-form button[type=submit]');
  await page.waitForFunction(() => /HTTP 404/.test(document.querySelector('#error')?.textContent ?? ''), null, { timeout: 30_000 });
  assert.equal(await page.locator('#error').getAttribute('data-kind'), 'DownloadError');

  // A good file opened afterwards still loads.
  await page.setInputFiles('#file-input', MODEL);
  await page.waitForSelector('#tensor-table tbody tr', { timeout: 60_000 });
  assert.equal(await page.locator('#tensor-table tbody tr').count(), 272);
  assert.equal(await error.isHidden(), true);
  await page.screenshot({ path: join(artifacts, 'lab-after-bad-files.png'), fullPage: true });
  await page.close();
});

/** Drops `bytes` as a file named `name` onto the page's drop zone, as a user dragging a file would. */
async function dropFile(page, name, bytes) {
  await page.evaluate(
    ({ name, data }) => {
      const transfer = new DataTransfer();
      transfer.items.add(new File([new Uint8Array(data)], name));
      document.querySelector('#drop-zone').dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    },
    { name, data: [...bytes] },
  );
}

test('drag and drop opens a GGUF; a bad drop shows an error and keeps the open model', { timeout: 120_000 }, async () => {
  const { page, problems } = await openPage(lab.browser, `${lab.server.url}?model=none`);
  await page.waitForFunction(() => document.querySelector('#core-status')?.textContent?.includes('core'));
  await dropFile(page, 'tiny.gguf', tinyGguf({ name: 'dropped model' }));
  await page.waitForSelector('tr[data-tensor="weights"]', { timeout: 30_000 });
  assert.match(await page.locator('#model-card').innerText(), /dropped model/);
  await page.locator('tr[data-tensor="weights"]').click();
  await page.waitForSelector('#histogram svg');
  assert.equal(await page.locator('#histogram').getAttribute('data-total'), '8');
  assert.match(await page.locator('#histogram-caption').innerText(), /^8 values \(whole tensor\) · min -1\.0000 · max 3\.0000 · 128 bins · decoded from F32 · nf4-b64: 16 levels in group 0 of 1 /);

  await dropFile(page, 'broken.gguf', tinyGguf().subarray(0, 50));
  await page.waitForFunction(() => /truncated/i.test(document.querySelector('#error')?.textContent ?? ''));
  // The previously opened model is still there and usable.
  assert.equal(await page.locator('tr[data-tensor="weights"]').count(), 1);
  assert.deepEqual(problems, []);
  await page.close();
});
