// The PWA: after one visit the lab reloads with the network off (service worker + the model in
// Cache Storage) and still runs; the manifest makes it installable. And text from model files
// is text: a GGUF whose metadata holds HTML shows it literally and runs none of it.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { artifacts, useLab } from './harness.mjs';
import { buildGguf } from './tiny-gguf.mjs';

const lab = useLab();

test('after one visit the lab loads and runs offline', { timeout: 240_000 }, async () => {
  const context = await lab.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  await page.goto(lab.server.url);
  await page.waitForSelector('#tensor-table tbody tr', { timeout: 120_000 });
  // The notice names what is being cached, then the status says the lab and model are offline-ready.
  await page.waitForFunction(() => document.querySelector('#offline-status')?.dataset.state === 'ready', null, { timeout: 120_000 });
  assert.match(await page.locator('#offline-status').innerText(), /work offline/);
  const manifest = await page.evaluate(async () => {
    const href = document.querySelector('link[rel=manifest]')?.getAttribute('href');
    return href ? (await fetch(href)).json() : null;
  });
  assert.equal(manifest?.name, 'quantlab — LLM quantization lab');
  assert.ok(manifest.icons.some((i) => i.sizes === '512x512'));
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 30_000 });

  await context.setOffline(true);
  // The server is really unreachable for this context now.
  assert.equal(await page.evaluate(() => fetch('/index.html?probe').then(() => 'online', () => 'offline')), 'offline');
  await page.goto(`${lab.server.url}?tensor=blk.3.ffn_up.weight&format=q4_0&threads=2`);
  await page.waitForSelector('#histogram svg', { timeout: 120_000 });
  // The threaded core and its pool workers' scripts come from the precache too (else: one thread and a note).
  assert.match(await page.locator('#core-status').innerText(), /wasm, 2 threads/);
  assert.equal(await page.locator('#tensor-table tbody tr').count(), 272);
  assert.equal(Number(await page.locator('#histogram').getAttribute('data-total')), 576 * 1536);
  assert.equal(await page.locator('#error').isHidden(), true);
  // The runtime works offline too (the whole model from Cache Storage), and the eval text is precached.
  assert.equal(await page.evaluate(() => fetch('data/moby-dick/chapter_1.json').then((r) => r.json()).then((j) => typeof j.text)), 'string');
  await page.fill('#gen-max', '4');
  await page.click('#gen-run');
  await page.waitForFunction(() => document.querySelector('#generate-body')?.dataset.divergence || document.querySelector('#generate-panel > .error:not([hidden])'), null, { timeout: 180_000 });
  assert.equal(await page.locator('#gen-base span').count(), 4);
  await page.screenshot({ path: join(artifacts, 'offline-reload.png'), fullPage: false });
  assert.deepEqual(problems, []);
  await context.close();
});

test('HTML in model metadata is shown as text and never runs', { timeout: 60_000 }, async () => {
  const evil = '<img src=x onerror="window.__pwned=1">';
  const context = await lab.browser.newContext();
  const page = await context.newPage();
  await page.goto(`${lab.server.url}?model=none`);
  await page.waitForFunction(() => document.querySelector('#core-status')?.textContent?.includes('core'));
  const bytes = buildGguf({
    metadata: { 'general.name': evil, 'general.description': `<script>window.__pwned=2</script>` },
    tensors: [{ name: `<b onmouseover=alert(1)>t</b>`, dims: [64], values: Array.from({ length: 64 }, (_, i) => i / 64) }],
  });
  await page.setInputFiles('#file-input', { name: 'evil.gguf', mimeType: 'application/octet-stream', buffer: bytes });
  await page.waitForSelector('#model-name');
  assert.equal(await page.locator('#model-name').textContent(), evil);
  assert.equal(await page.locator('#model-card img').count(), 0);
  assert.equal(await page.locator('#model-card script').count(), 0);
  assert.match(await page.locator('#metadata').textContent(), /<script>window.__pwned=2<\/script>/);
  assert.equal(await page.locator('#tensor-table tbody tr td').first().textContent(), '<b onmouseover=alert(1)>t</b>');
  assert.equal(await page.locator('#tensor-table b').count(), 0);
  await page.locator('#tensor-table tbody tr').first().click();
  await page.waitForSelector('#histogram svg');
  assert.equal(await page.locator('#histogram-title').textContent(), '3. Weight histogram — <b onmouseover=alert(1)>t</b>');
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  await page.screenshot({ path: join(artifacts, 'metadata-as-text.png'), fullPage: false });
  await context.close();
});

test('too little storage quota: a clear notice, and the lab keeps working online', { timeout: 120_000 }, async () => {
  const context = await lab.browser.newContext();
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  // 20 MB: enough for the app shell, not for the 98 MB model.
  await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(lab.server.url).origin, quotaSize: 20 * 1024 * 1024 });
  await page.goto(lab.server.url);
  await page.waitForSelector('#tensor-table tbody tr', { timeout: 120_000 });
  await page.waitForFunction(() => document.querySelector('#offline-status')?.dataset.state === 'no-quota', null, { timeout: 60_000 });
  const notice = page.locator('#offline-note');
  assert.equal(await notice.isVisible(), true);
  // Either the estimate shows the shortfall up front, or the browser refuses the write.
  assert.match(await notice.innerText(), /(Not enough browser storage to keep the model offline: it needs 94 MiB|refused to store the model \(storage quota exceeded\)).*still works online/);
  assert.equal(await page.locator('#error').isHidden(), true);
  await page.screenshot({ path: join(artifacts, 'offline-quota-notice.png'), fullPage: false });
  await context.close();
});
