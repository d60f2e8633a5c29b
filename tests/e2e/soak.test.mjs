// Soak (#17): 30 quantize→evaluate cycles in one page through the worker API the Compare panel
// uses (`compareFormats`, one format per cycle, no saved results so every cycle really quantizes
// and evaluates), on a small random llama so the test stays quick. After each cycle it samples
// the worker's wasm memory (`memory.buffer.byteLength`, the `memory` diagnostic message) and the
// page's JS heap (`performance.memory.usedJSHeapSize` after a forced GC; Chromium runs with
// --enable-precise-memory-info and --js-flags=--expose-gc). Both must stop growing once every
// format has run twice.
//
// The bounds, over the last 20 cycles:
// - wasm: less than 5 quantized copies (the smallest format's bytes). Leaking one quantized
//   model per cycle adds at least 20 copies, so it fails; allocator fragmentation between
//   formats of different sizes is allowed a few copies.
// - JS heap: less than 10 results (the largest manifest's JSON size). Keeping every cycle's
//   result adds at least 20 of them (V8 objects are no smaller than their JSON text).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchBrowser, openPage, startServer } from './harness.mjs';
import { tinyLlama } from './tiny-gguf.mjs';

const CYCLES = 30;
const MEASURED = 20;
const FORMATS = ['q8_0', 'q4_0', 'q5_1', 'nf4', 'int8-sym-channel', 'int4-asym-g128'];

const lab = { server: null, browser: null };
before(async () => {
  lab.server = await startServer();
  lab.browser = await launchBrowser(['--enable-precise-memory-info', '--js-flags=--expose-gc']);
});
after(async () => {
  await lab.browser?.close();
  lab.server?.stop();
});

test(`${CYCLES} quantize→evaluate cycles in one page: wasm memory and the JS heap stay bounded`, { timeout: 240_000 }, async () => {
  const { page, problems } = await openPage(lab.browser, `${lab.server.url}?model=none`);
  await page.waitForFunction(() => document.querySelector('#core-status')?.textContent?.includes('core'));
  await page.setInputFiles('#file-input', { name: 'tiny-llama.gguf', mimeType: 'application/octet-stream', buffer: tinyLlama() });
  await page.waitForSelector('#tensor-table tbody tr', { timeout: 60_000 });

  const started = Date.now();
  const samples = await page.evaluate(
    async ({ cycles, formats }) => {
      const client = globalThis.quantlabClient;
      const dataUrl = new URL('data/moby-dick/', location.href).href;
      const out = [];
      for (let i = 0; i < cycles; i++) {
        const format = formats[i % formats.length];
        const [m] = await client.call('compareFormats', { formats: [format], ctx: 64, maxWindows: 1, dataUrl, saved: [] });
        const worker = await client.call('memory', {});
        globalThis.gc();
        out.push({ format, copyBytes: m.result.bytes, resultBytes: JSON.stringify(m).length, ppl: m.result.ppl, ...worker, jsHeap: performance.memory.usedJSHeapSize });
      }
      return out;
    },
    { cycles: CYCLES, formats: FORMATS },
  );
  console.log(`# ${CYCLES} cycles in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log(`# wasm bytes: ${samples.map((s) => s.wasmBytes).join(' ')}`);
  console.log(`# JS heap bytes: ${samples.map((s) => s.jsHeap).join(' ')}`);

  assert.equal(samples.length, CYCLES);
  assert.ok(samples.every((s) => s.collected), 'the worker ran a garbage collection before each sample');
  // Every cycle measured something real: a finite perplexity, the same one whenever the format recurs.
  for (const [i, s] of samples.entries()) {
    assert.ok(Number.isFinite(s.ppl) && s.ppl > 1, `cycle ${i} (${s.format}): ppl ${s.ppl}`);
    if (i >= FORMATS.length) assert.equal(s.ppl, samples[i - FORMATS.length].ppl, `cycle ${i} (${s.format}) repeats its result`);
  }
  const window = samples.slice(CYCLES - MEASURED - 1);
  const growth = (key) => window[window.length - 1][key] - window[0][key];
  const copy = Math.min(...samples.map((s) => s.copyBytes));
  const result = Math.max(...samples.map((s) => s.resultBytes));
  console.log(`# last ${MEASURED} cycles: wasm +${growth('wasmBytes')} B (bound ${5 * copy}), JS heap +${growth('jsHeap')} B (bound ${10 * result})`);
  assert.ok(growth('wasmBytes') < 5 * copy, `wasm memory grew ${growth('wasmBytes')} B over the last ${MEASURED} cycles (a quantized copy is ${copy} B)`);
  assert.ok(growth('jsHeap') < 10 * result, `the JS heap grew ${growth('jsHeap')} B over the last ${MEASURED} cycles (a result is ${result} B)`);
  assert.deepEqual(problems, []);
});
