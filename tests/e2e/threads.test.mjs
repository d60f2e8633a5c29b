// Threads in the browser (#13): the lab page is cross-origin isolated, so its worker loads the
// threaded wasm core (shared memory, wasm-bindgen-rayon's pool of web workers) and more than one
// pool thread computes; an evaluation gives the same numbers as the single-thread core (forced by
// `?threads=1`), since which thread runs a task never changes what it computes. A page served
// without COOP/COEP is not isolated: it falls back to one thread and says so. A small random
// llama and one short window keep it quick.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openPage, useLab } from './harness.mjs';
import { tinyLlama } from './tiny-gguf.mjs';

const lab = useLab();

/** Opens the lab at `query`, loads the tiny llama and evaluates q8_0 on one window; returns what the test compares. */
async function evaluate(query, { isolated = true } = {}) {
  const page = await lab.browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  if (!isolated) {
    // The same page without the isolation headers (and so without SharedArrayBuffer).
    await page.route('**/*', async (route) => {
      if (!route.request().isNavigationRequest()) return route.fallback();
      const response = await route.fetch();
      const headers = { ...response.headers() };
      delete headers['cross-origin-opener-policy'];
      delete headers['cross-origin-embedder-policy'];
      return route.fulfill({ response, headers });
    });
  }
  await page.goto(`${lab.server.url}?model=none${query}`);
  await page.waitForFunction(() => document.querySelector('#core-status')?.dataset.threads);
  await page.setInputFiles('#file-input', { name: 'tiny-llama.gguf', mimeType: 'application/octet-stream', buffer: tinyLlama() });
  await page.waitForSelector('#tensor-table tbody tr', { timeout: 60_000 });
  const run = await page.evaluate(async () => {
    const client = globalThis.quantlabClient;
    const dataUrl = new URL('data/moby-dick/', location.href).href;
    const [m] = await client.call('compareFormats', { formats: ['q8_0'], ctx: 64, maxWindows: 1, dataUrl, saved: [] });
    const { ppl, meanNll, basePpl, klMean, klMax, top1Agreement, paired, bytes } = m.result;
    return { numbers: { ppl, meanNll, basePpl, klMean, klMax, top1Agreement, paired, bytes }, stats: await client.call('threadStats', {}) };
  });
  const status = await page.locator('#core-status').innerText();
  const isolation = await page.evaluate(() => globalThis.crossOriginIsolated);
  await page.close();
  assert.deepEqual(problems, []);
  return { ...run, status, isolation };
}

test('isolated, the lab computes on several threads with the numbers of the single-thread core', { timeout: 120_000 }, async () => {
  const threaded = await evaluate('&threads=2');
  assert.equal(threaded.isolation, true, 'the lab page is cross-origin isolated');
  assert.equal(threaded.stats.threads, 2);
  assert.match(threaded.status, /2 threads/);
  const busy = threaded.stats.tasksPerThread.filter((n) => n > 0);
  assert.ok(busy.length > 1, `more than one pool thread ran tasks: ${threaded.stats.tasksPerThread}`);

  const single = await evaluate('&threads=1');
  assert.equal(single.stats.threads, 1);
  assert.deepEqual(single.stats.tasksPerThread, []);
  assert.match(single.status, /one thread: the page asked for one/);
  assert.ok(Number.isFinite(single.numbers.ppl) && single.numbers.ppl > 1, `ppl ${single.numbers.ppl}`);
  assert.deepEqual(threaded.numbers, single.numbers);
});

test('a page that is not cross-origin isolated runs one thread and says why', { timeout: 60_000 }, async () => {
  const plain = await evaluate('', { isolated: false });
  assert.equal(plain.isolation, false);
  assert.equal(plain.stats.threads, 1);
  assert.match(plain.status, /one thread: this page is not cross-origin isolated/);
  assert.ok(Number.isFinite(plain.numbers.ppl) && plain.numbers.ppl > 1);
});
