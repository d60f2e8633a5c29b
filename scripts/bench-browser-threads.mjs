// The lab's CPU path in headless Chromium at several thread counts (#13, threads in the browser):
// the built lab (web/dist, `npm start`'s server, cross-origin isolated) opened once per count
// with `?threads=N` (1: the single-thread core; N > 1: the threaded core with N pool workers),
// driven through the page's worker client as the panels drive it. Per count it prints:
// - prefill and decode tokens/s of the base model (the Generate panel's `generate` on the CPU,
//   greedy, the prompt of scripts/bench-browser.mjs);
// - evaluation tokens/s: positions run per second by the Compare panel's evaluation of the base
//   and one quantized format in lockstep (`compareFormats`, one window), and its wall time.
// The numbers of every count must match those at one thread (same greedy text, same perplexity).
// Not part of `npm test`.
//
//     npx vite build --config web/vite.config.ts && node scripts/bench-browser-threads.mjs
//     THREADS=1,2,4 ROUNDS=1 FORMAT=q4_0 CTX=512 node scripts/bench-browser-threads.mjs
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { launchBrowser, repoRoot, startServer } from '../tests/e2e/harness.mjs';

const THREADS = (process.env.THREADS ?? '1,2').split(',').map(Number);
const ROUNDS = Number(process.env.ROUNDS ?? 2);
const N_DECODE = Number(process.env.N_DECODE ?? 32);
const FORMAT = process.env.FORMAT ?? 'q8_0';
const CTX = Number(process.env.CTX ?? 256);
const prompt = JSON.parse(readFileSync(join(repoRoot, 'data/moby-dick/chapter_1.json'), 'utf8')).text.slice(0, 300);
const log = (...a) => console.error('bench-browser-threads:', ...a);
const load0 = loadavg().map((x) => x.toFixed(2)).join(' ');

const server = await startServer();
const browser = await launchBrowser();
const rows = [];
try {
  for (const threads of THREADS) {
    const page = await browser.newPage();
    await page.goto(`${server.url}?threads=${threads}`);
    await page.waitForSelector('#tensor-table tbody tr', { timeout: 300_000 });
    const status = await page.locator('#core-status').innerText();
    log(`threads=${threads}: ${status}`);
    for (let round = 0; round < ROUNDS; round++) {
      const r = await page.evaluate(
        async ({ prompt, nDecode, format, ctx }) => {
          const client = globalThis.quantlabClient;
          const gen = await client.call('generate', { prompt, seed: 1, maxTokens: nDecode, temperature: 0, chat: false, device: 'cpu', format });
          const dataUrl = new URL('data/moby-dick/', location.href).href;
          const started = performance.now();
          const [m] = await client.call('compareFormats', { formats: [format], ctx, maxWindows: 1, dataUrl, saved: [] });
          const evalWall = (performance.now() - started) / 1000;
          const b = gen.base;
          return { prefill: b.prefillTokensPerSec, decode: b.decodeTokensPerSec, promptTokens: b.promptTokens, text: b.text, eval: m.result.tokensPerSec, evalWall, ppl: m.result.ppl };
        },
        { prompt, nDecode: N_DECODE, format: FORMAT, ctx: CTX },
      );
      log(`threads=${threads} round ${round + 1}: prefill ${r.prefill.toFixed(1)}, decode ${r.decode.toFixed(1)}, eval ${r.eval?.toFixed(1)} tok/s (${r.evalWall.toFixed(1)} s), ppl ${r.ppl}`);
      rows.push({ threads, ...r });
    }
    await page.close();
  }
} finally {
  await browser.close();
  server.stop();
}

const median = (xs) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[v.length >> 1] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
const ref = rows.find((r) => r.threads === THREADS[0]);
console.log(`Machine: ${cpus().length} cores (${cpus()[0]?.model?.trim()}), load average ${load0} at start, ${loadavg().map((x) => x.toFixed(2)).join(' ')} at the end.`);
console.log(`Lab page (web/dist), default model, greedy ${N_DECODE} tokens after a ${ref?.promptTokens}-token prompt; evaluation of base + ${FORMAT}, one window of ${CTX}; ${ROUNDS} round(s), medians.`);
console.log('');
console.log('| threads | prefill tok/s | decode tok/s | eval tok/s | eval wall s | same text and ppl as the first row |');
console.log('|--:|--:|--:|--:|--:|---|');
for (const threads of THREADS) {
  const rs = rows.filter((r) => r.threads === threads);
  const same = rs.every((r) => r.text === ref.text && r.ppl === ref.ppl) ? 'yes' : 'NO';
  const col = (k, d = 1) => median(rs.map((r) => r[k])).toFixed(d);
  console.log(`| ${threads} | ${col('prefill')} | ${col('decode')} | ${col('eval')} | ${col('evalWall')} | ${same} |`);
}
