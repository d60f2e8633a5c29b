// Wall time of the Compare panel's DEFAULT protocol (the one the lab opens with) in headless
// Chromium: the base + q8_0, q4_k, q4_0, nf4, int4-asym-g128 quantized and evaluated to
// completion, from the click to the finished table. Prints the protocol, the wall time and each
// format's row. Not part of `npm test` (too slow for it); the number goes to BENCHMARKS.md.
//
//     npx vite build --config web/vite.config.ts && node scripts/bench-compare-default.mjs
//     FORMATS=q8_0 node scripts/bench-compare-default.mjs     # the base + one format
//     FORMATS=q8_0 CTX=64 WINDOWS=1 DEVICE=webgpu node scripts/bench-compare-default.mjs
//                                    # another protocol (#compare-ctx/-windows), on WebGPU
//
// Needs what the e2e tests need: the built lab (web/dist), /usr/bin/chromium (or $CHROMIUM),
// the model in models/ and the Moby-Dick text in data/.
import { launchBrowser, openPage, startServer } from '../tests/e2e/harness.mjs';

const FORMATS = process.env.FORMATS ?? 'q8_0,q4_k,q4_0,nf4,int4-asym-g128';
const { CTX, WINDOWS, DEVICE } = process.env;
const server = await startServer();
const browser = await launchBrowser();
try {
  const { page, problems } = await openPage(browser, `${server.url}?compare=${FORMATS}&panel=compare`);
  await page.waitForSelector('#tensor-table tbody tr', { timeout: 300_000 });
  // The adapter report sets the Device default; wait for it before choosing.
  await page.waitForFunction(() => document.querySelector('#gpu-status')?.dataset.state, null, { timeout: 300_000 });
  if (CTX) await page.selectOption('#compare-ctx', CTX);
  if (WINDOWS) await page.selectOption('#compare-windows', WINDOWS);
  if (DEVICE) await page.selectOption('#compare-device', DEVICE);
  const device = await page.locator('#compare-device').inputValue();
  const ctx = await page.locator('#compare-ctx').inputValue();
  const windows = await page.locator('#compare-windows').inputValue();
  const t0 = Date.now();
  await page.click('#compare-run');
  // Poll, printing the elapsed time as each format's row appears (a partial run still says
  // something if it is stopped).
  let rows = 0;
  for (;;) {
    const finished = await page.evaluate(() => Boolean(document.querySelector('#compare-body')?.dataset.done || document.querySelector('#compare-panel > .error:not([hidden])')));
    const now = await page.locator('#compare-table tbody tr[data-format]:not([data-format="base"])').count();
    if (now !== rows) console.log(`${((Date.now() - t0) / 1000).toFixed(1)} s: ${(rows = now)} format(s) done`);
    if (finished) break;
    await page.waitForTimeout(2000);
  }
  const secs = (Date.now() - t0) / 1000;
  const error = page.locator('#compare-panel > .error:not([hidden])');
  if (await error.count()) throw new Error(await error.innerText());
  console.log(`${CTX || WINDOWS ? 'protocol' : 'default protocol'}: ctx ${ctx}, ${windows} window(s), device ${device}; base + ${FORMATS}: ${secs.toFixed(1)} s wall`);
  const note = await page.locator('#compare-device-note').innerText();
  if (note) console.log(`device note: ${note}`);
  console.log(await page.locator('#compare-table').innerText());
  if (problems.length) console.log('page problems:', problems);
} finally {
  await browser.close();
  server.stop();
}
