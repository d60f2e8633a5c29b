// The Methods panel's run times in headless Chromium (#14, "record method run times, CLI and
// browser"): the built lab (web/dist, cross-origin isolated) opened with `?threads=N` per count
// (1: the single-thread core; N > 1: the threaded core with N pool workers), then each method run
// through the page's worker client as the panel runs it (`runMethod`: calibration text, calibrate,
// quantize, evaluate). The time printed is the manifest's `method.seconds`: calibration and
// quantization only, not the evaluation (one window of CTX tokens, to keep the run short) nor the
// chapter downloads. Each run is the first of its kind in its page (no cached importance matrix:
// the page's saved results are not passed, and each thread count gets a fresh browser context).
// Not part of `npm test`.
//
//     npx vite build --config web/vite.config.ts && node scripts/bench-methods-browser.mjs
//     THREADS=2 METHODS=imatrix:q4_0,hqq:q4_1 TOKENS=4096 node scripts/bench-methods-browser.mjs
import { cpus, loadavg } from 'node:os';
import { launchBrowser, startServer } from '../tests/e2e/harness.mjs';

const THREADS = (process.env.THREADS ?? '1,2').split(',').map(Number);
/** method:target pairs; the CLI's BENCHMARKS rows use q4_0 and int4-sym-g64. */
const METHODS = (process.env.METHODS ?? 'imatrix:q4_0,gptq:q4_0,awq:q4_0,hqq:q4_1').split(',').map((p) => p.split(':'));
const TOKENS = Number(process.env.TOKENS ?? 4096);
const CTX = Number(process.env.CTX ?? 64);
const log = (...a) => console.error('bench-methods-browser:', ...a);
const load0 = loadavg().map((x) => x.toFixed(2)).join(' ');

const server = await startServer();
const browser = await launchBrowser();
const rows = [];
try {
  for (const threads of THREADS) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}?threads=${threads}`);
    await page.waitForSelector('#tensor-table tbody tr', { timeout: 300_000 });
    const status = await page.locator('#core-status').innerText();
    log(`threads=${threads}: ${status}`);
    for (const [method, target] of METHODS) {
      const started = Date.now();
      const r = await page.evaluate(
        async ({ method, target, tokens, ctx }) => {
          const client = globalThis.quantlabClient;
          const dataUrl = new URL('data/moby-dick/', location.href).href;
          const m = await client.call('runMethod', { target, mix: 'pure', method, calib: { kind: 'default' }, tokens, ctx, maxWindows: 1, dataUrl, saved: [] });
          return { seconds: m.result.method.seconds, ppl: m.result.ppl, kl: m.result.paired?.klMean, tokensRun: m.result.method.calibration?.tokensRun };
        },
        { method, target, tokens: TOKENS, ctx: CTX },
      );
      const row = { threads, method, target, tokens: method === 'hqq' ? 0 : TOKENS, methodSeconds: Number(r.seconds.toFixed(1)), wallSeconds: Number(((Date.now() - started) / 1000).toFixed(1)), ppl: r.ppl, kl: r.kl };
      log(JSON.stringify(row));
      rows.push(row);
    }
    await context.close();
  }
} finally {
  await browser.close();
  server.stop();
}
console.log(`# ${new Date().toISOString()}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, load average at start ${load0}, at end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log('| threads | method | target | calibration tokens | method s | wall s (with eval) |');
console.log('|--:|---|---|--:|--:|--:|');
for (const r of rows) console.log(`| ${r.threads} | ${r.method} | ${r.target} | ${r.tokens || '–'} | ${r.methodSeconds} | ${r.wallSeconds} |`);
