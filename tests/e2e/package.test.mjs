// The npm package as a user gets it: build the library, `npm pack`, install the tarball offline
// into a fresh project outside the repository, then
// - the Vite + TypeScript example (examples/vite-ts): type-checked against the package's
//   declarations, built by Vite, served, and in headless Chromium it draws a histogram of the
//   default model's blk.0.attn_q.weight, runs a quantize → evaluate round trip and streams a
//   generation;
// - the plain-HTML example (examples/plain-html): the package's files loaded unbundled by a
//   <script type="module"> from a static server;
// - the size budget: the gzipped JS and wasm a page downloads for the single-thread core.
// The histograms are checked against tests/e2e/gguf-read.mjs's Q4_1 decoder (not the core's).
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { q4_1Tensor } from './gguf-read.mjs';
import { installFresh, npm, packLibrary } from './fresh-project.mjs';
import { launchBrowser, openPage, repoRoot, startServer } from './harness.mjs';

/** Gzipped bytes of the package's single-thread page: API, worker, core glue and wasm (BENCHMARKS.md; measured + ~10 %). */
const SIZE_BUDGET_GZIP = 900_000;
const TENSOR = 'blk.0.attn_q.weight';

const fresh = mkdtempSync(join(tmpdir(), 'quantlab-fresh-'));
const app = join(fresh, 'app');
/** The reference: the tensor decoded from the file by the independent reader. */
const reference = (() => {
  const { values } = q4_1Tensor(readFileSync(join(repoRoot, 'models/SmolLM2-135M-Instruct.Q4_1.gguf')), TENSOR);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return { n: values.length, lo, hi };
})();
let browser;

before(async () => {
  const tarball = packLibrary(fresh);
  cpSync(join(repoRoot, 'examples/vite-ts'), app, { recursive: true });
  installFresh(app, JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')), tarball);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  rmSync(fresh, { recursive: true, force: true });
});

/** Serves `root` (plus the repository's /models and /data), runs `check` on `page`, and stops. */
async function withPage(root, page, check) {
  const server = await startServer(root);
  try {
    const { page: tab, problems } = await openPage(browser, `${server.url}${page}`);
    await check(tab);
    assert.deepEqual(problems, []);
    await tab.close();
  } finally {
    server.stop();
  }
}

function assertReferenceHistogram(h) {
  assert.equal(h.total, reference.n, 'every value of the tensor is counted');
  assert.ok(Math.abs(h.lo - reference.lo) <= 1e-6 && Math.abs(h.hi - reference.hi) <= 1e-6, `range [${h.lo}, ${h.hi}] vs decoded [${reference.lo}, ${reference.hi}]`);
}

test('the Vite + TypeScript example builds against the installed tarball and runs histogram, quantize → evaluate and generate', async () => {
  // `build` type-checks src/ against the package's .d.ts (skipLibCheck off), then bundles.
  npm(app, ['run', 'build']);
  await withPage(join(app, 'dist'), 'index.html?threads=2', async (page) => {
    await page.waitForSelector('#histogram[data-values], #status[data-error]', { timeout: 120_000 });
    assert.equal(await page.getAttribute('#status', 'data-error'), null, await page.textContent('#status'));
    assert.equal(await page.inputValue('#tensor'), TENSOR);
    // The server isolates the page (COOP/COEP): the threaded core and its pool workers, bundled by Vite, started.
    assert.ok(Number(await page.getAttribute('#status', 'data-threads')) > 1, await page.textContent('#status'));
    const h = await page.$eval('#histogram', (svg) => ({ total: Number(svg.dataset.values), lo: Number(svg.dataset.lo), hi: Number(svg.dataset.hi), bars: svg.querySelectorAll('rect').length }));
    assertReferenceHistogram(h);
    assert.equal(h.bars, 64);

    await page.click('#evaluate');
    await page.waitForSelector('#results[data-ppl]', { timeout: 120_000 });
    const r = await page.$eval('#results', (p) => ({ ...p.dataset }));
    const [ppl, basePpl, kl, bits] = [r.ppl, r.basePpl, r.kl, r.bits].map(Number);
    for (const x of [ppl, basePpl, kl, bits]) assert.ok(Number.isFinite(x), JSON.stringify(r));
    assert.ok(ppl > 1 && basePpl > 1 && kl >= 0, JSON.stringify(r));
    // q4_0: 4.5 bits per weight on the matrices it applies to, some kept wider by the policy.
    assert.ok(bits > 4 && bits < 8, JSON.stringify(r));

    // The token stream: both sides' pieces arrive through `for await`, then the loop ends.
    await page.click('#generate');
    await page.waitForSelector('#generate[data-done]', { timeout: 120_000 });
    const tokens = await page.$eval('#generate', (b) => ({ ...b.dataset }));
    assert.ok(Number(tokens.base) > 0 && Number(tokens.quantized) > 0, JSON.stringify(tokens));
    assert.ok((await page.textContent('#base-text')).length > 'base: '.length);
  });
});

test('the plain-HTML example loads the package unbundled from a static server; wasmUrl moves the core', async () => {
  cpSync(join(repoRoot, 'examples/plain-html'), app, { recursive: true });
  mkdirSync(join(app, 'elsewhere'), { recursive: true });
  cpSync(join(app, 'node_modules/quantlab/lib/core/quantlab_bg.wasm'), join(app, 'elsewhere/core.wasm'));
  await withPage(app, 'index.html?threads=2', async (page) => {
    await page.waitForSelector('#status[data-ready], #status[data-error]', { timeout: 120_000 });
    assert.equal(await page.getAttribute('#status', 'data-error'), null, await page.textContent('#status'));
    // Unbundled too, the threaded core's pool workers find their module.
    assert.ok(Number(await page.getAttribute('#status', 'data-threads')) > 1, await page.textContent('#status'));
    assertReferenceHistogram(await page.$eval('#status', (s) => ({ total: Number(s.dataset.values), lo: Number(s.dataset.lo), hi: Number(s.dataset.hi) })));
    const rows = await page.$$eval('#formats tr', (trs) => trs.map((tr) => [tr.dataset.format, ...[...tr.children].map((td) => td.textContent)]));
    assert.deepEqual(rows.map((r) => r[0]), ['int8-sym-channel', 'nf4', 'int4-sym-g64']);
    // Bits per weight and SQNR of each format on the tensor: finite, and ordered as the bits are.
    const [int8, nf4, int4] = rows.map(([, , bits, sqnr]) => ({ bits: Number(bits), sqnr: Number(sqnr) }));
    for (const f of [int8, nf4, int4]) assert.ok(f.bits > 4 && f.bits < 9 && Number.isFinite(f.sqnr), JSON.stringify(rows));
    assert.ok(int8.sqnr > nf4.sqnr && int8.sqnr > int4.sqnr, JSON.stringify(rows));

    // wasmUrl: a second lab fetches its core from where it is told (a copy elsewhere), not from beside the glue.
    const fetched = [];
    page.on('request', (r) => r.url().endsWith('.wasm') && fetched.push(new URL(r.url()).pathname));
    const version = await page.evaluate(async () => {
      const { createLab } = await import('./node_modules/quantlab/lib/index.js');
      const other = await createLab({ threads: 1, wasmUrl: 'elsewhere/core.wasm' });
      other.terminate();
      return other.core.coreVersion;
    });
    assert.match(version, /^\d+\.\d+\.\d+/);
    assert.deepEqual(fetched, ['/elsewhere/core.wasm']);
  });
});

test('the single-thread page stays within its gzipped size budget', () => {
  const lib = join(app, 'node_modules/quantlab/lib');
  const files = ['index.js', 'worker.js', 'core/quantlab.js', 'core/quantlab_bg.wasm', ...readdirSync(join(lib, 'chunks')).map((f) => `chunks/${f}`)];
  const sizes = Object.fromEntries(files.map((f) => [f, gzipSync(readFileSync(join(lib, f))).byteLength]));
  const total = Object.values(sizes).reduce((a, b) => a + b, 0);
  console.log(`quantlab package, single-thread page: ${total} bytes gzipped ${JSON.stringify(sizes)}`);
  assert.ok(total <= SIZE_BUDGET_GZIP, `${total} bytes gzipped exceed the budget of ${SIZE_BUDGET_GZIP} (BENCHMARKS.md)`);
});
