// Browser side by side: quantlab (the lab's wasm core, web/src/pkg) and wllama (npm
// @wllama/wllama, llama.cpp compiled to wasm) in ONE headless Chromium, on the SAME GGUF file,
// the same prompt, the same token budget, greedy. Prints a markdown table of prefill and decode
// tokens/s and the ratio behind issue #5's target ("decode of the default model in Chromium, the
// lab's chosen path, at least as fast as wllama on the same GGUF in the same browser"). Not part
// of `npm test`.
//
//     node scripts/bench-browser.mjs                # 3 rounds, 32 decoded tokens
//     ROUNDS=1 N_DECODE=16 MODEL=models/x.gguf node scripts/bench-browser.mjs
//
// Needs what `npm test`'s setup installs on a fresh clone: /usr/bin/chromium (or $CHROMIUM),
// node_modules (playwright-core, @wllama/wllama), the wasm core in web/src/pkg
// (scripts/build-wasm.sh), the model in models/ and the Moby-Dick text in data/.
//
// What runs (scripts/bench-browser/bench.js has the page side):
// - quantlab 'auto' = what the lab's generation panel does with Device 'auto': upload to WebGPU,
//   run the CPU-vs-WebGPU decode probe once (GpuLabModel.probe), generate on the faster side.
//   'CPU (wasm)' = LabModel.generate (one thread, as the lab's worker runs it); 'WebGPU' =
//   GpuLabModel.generate (GPU sampling). Called directly through the bindings, on the page's
//   main thread, so prefill and decode come from the engine's own counters, as for wllama.
// - wllama: loadModel on a Blob of the same bytes, createCompletion({prompt, temperature 0,
//   cache_prompt false}); CPU with 1 thread, CPU with 2 threads (only if the page is
//   cross-origin isolated: this server sends COOP/COEP, so SharedArrayBuffer works), and
//   wllama's default device (all layers on WebGPU when the browser has it).
// - Timed generations come after an untimed 2-token warm-up generation of the same prompt
//   (quantlab: once per device before the rounds; wllama: each round, as each round loads a
//   fresh instance); the warm-up column gives its seconds. Rounds run the configurations in
//   turn; the table gives each one's median prefill/decode over the rounds.
// - Nothing is downloaded: every request outside this server is aborted and reported.
// - Chromium flags: tests/e2e/harness.mjs's launchBrowser (SwiftShader WebGPU, unsafe WebGPU).
import { readFileSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { openBenchPage, repoRoot } from './bench-browser/page.mjs';

const MODEL = process.env.MODEL ?? join(repoRoot, 'models/SmolLM2-135M-Instruct.Q4_1.gguf');
const N_DECODE = Number(process.env.N_DECODE ?? 32);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
// Which configurations to run (comma list); default all.
const ONLY = (process.env.ONLY ?? 'auto,cpu,webgpu,wllama-1t,wllama-2t,wllama-webgpu').split(',');

const roots = {
  '/bench/': join(repoRoot, 'scripts/bench-browser'),
  '/pkg/': join(repoRoot, 'web/src/pkg'),
  '/wllama/': join(repoRoot, 'node_modules/@wllama/wllama'),
};
for (const [need, what] of [
  [MODEL, 'the model (scripts/setup.sh downloads it)'],
  [join(roots['/pkg/'], 'quantlab_bg.wasm'), 'the wasm core (scripts/build-wasm.sh)'],
  [join(roots['/wllama/'], 'esm/wasm/wllama.wasm'), '@wllama/wllama (npm install)'],
]) {
  if (!existsSync(need)) {
    console.error(`bench-browser: missing ${need}: ${what}`);
    process.exit(1);
  }
}
const modelRel = relative(join(repoRoot, 'models'), MODEL);
if (modelRel.startsWith('..')) {
  console.error(`bench-browser: MODEL must be inside ${join(repoRoot, 'models')} (served as /models/)`);
  process.exit(1);
}
const modelUrl = `/models/${modelRel.split('/').map(encodeURIComponent).join('/')}`;
// The prompt of scripts/bench-runtime-common.sh's bench_prompt: Moby-Dick chapter 1's first 300 characters.
const prompt = JSON.parse(readFileSync(join(repoRoot, 'data/moby-dick/chapter_1.json'), 'utf8')).text.slice(0, 300);

// The bench page, the wasm core and wllama's package (models/ and data/ come from static.mjs's
// serveRepoFile), cross-origin isolated (scripts/bench-browser/page.mjs).
const log = (...a) => console.error('bench-browser:', ...a);
const load0 = loadavg().map((x) => x.toFixed(2)).join(' ');
const { page, blocked, pageErrors, close } = await openBenchPage(roots, '/bench/index.html');
let result;
try {
  // WLLAMA_LOGS=1: every wllama/llama.cpp log line goes to stderr (to see which backend it used).
  if (process.env.WLLAMA_LOGS) await page.evaluate(() => (window.ALL_LOGS = true));
  result = await run(page);
  if (pageErrors.length) log('page errors:', pageErrors.join(' | '));
} finally {
  await close();
}
if (blocked.length) log(`aborted ${blocked.length} request(s) outside the local server:`, [...new Set(blocked)].join(', '));
print(result);

/** Runs every configuration ROUNDS times; returns the collected runs. */
async function run(page) {
  const call = (name, ...args) => page.evaluate(([n, a]) => window.bench[n](...a), [name, args]);
  const env = await call('env');
  log('browser:', env.userAgent, '| cross-origin isolated:', env.crossOriginIsolated, '| WebGPU:', JSON.stringify(env.webgpu));
  const load = await call('quantlabLoad', modelUrl);
  log(`quantlab: model loaded in ${(load.loadMs / 1000).toFixed(2)} s (${load.sourceFormat})`);
  const setup = { env, load };
  const runs = {};
  const add = (key, r) => {
    (runs[key] ??= []).push(r);
    log(`${key}: prompt ${r.promptTokens ?? '-'} tok, ${r.generated ?? '-'} generated, prefill ${fmt(r.prefillTps)} tok/s, decode ${fmt(r.decodeTps)} tok/s${r.error ? `, error: ${r.error}` : ''}`);
  };
  const attempt = async (f) => {
    try {
      return await f();
    } catch (e) {
      return { error: String(e?.message ?? e).split('\n')[0] };
    }
  };
  // Warm-ups (untimed in the table, their time reported): one 2-token generation of the prompt
  // on each quantlab device, before any timed run (the auto probe would otherwise warm the CPU).
  const warm = {};
  if (ONLY.includes('cpu') || ONLY.includes('auto')) {
    warm.cpu = await attempt(() => call('quantlabCpu', prompt, 2));
    log('quantlab CPU warm-up:', fmt(warm.cpu.wallMs / 1000, 2), 's');
  }
  if (ONLY.includes('webgpu') || ONLY.includes('auto')) {
    setup.upload = await attempt(() => call('quantlabGpuUpload'));
    log('quantlab WebGPU upload:', JSON.stringify(setup.upload));
    if (!setup.upload.error) {
      warm.webgpu = await attempt(() => call('quantlabGpu', prompt, 2));
      log('quantlab WebGPU warm-up:', fmt(warm.webgpu.wallMs / 1000, 2), 's');
    }
  }
  setup.warm = warm;
  for (let round = 0; round < ROUNDS; round++) {
    log(`round ${round + 1}/${ROUNDS}, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    const first = round === 0;
    for (const key of ONLY) {
      let r;
      if (key === 'cpu') r = await attempt(() => call('quantlabCpu', prompt, N_DECODE));
      else if (key === 'webgpu') r = setup.upload?.error ? setup.upload : await attempt(() => call('quantlabGpu', prompt, N_DECODE));
      else if (key === 'auto') {
        if (setup.upload?.error) setup.probe ??= { useGpu: false, reason: `WebGPU failed (${setup.upload.error})` };
        setup.probe ??= await attempt(() => call('quantlabProbe'));
        if (first) log('quantlab auto probe:', setup.probe.reason ?? setup.probe.error);
        // The lab falls back to the CPU when the probe itself fails.
        r = await attempt(() => call(setup.probe.useGpu ? 'quantlabGpu' : 'quantlabCpu', prompt, N_DECODE));
        r.path = setup.probe.useGpu ? 'WebGPU' : 'CPU (wasm)';
      } else if (key.startsWith('wllama-')) {
        const threads = key === 'wllama-2t' ? 2 : 1;
        if (threads > 1 && !env.crossOriginIsolated) {
          r = { error: 'page not cross-origin isolated: no SharedArrayBuffer, no wllama threads' };
        } else {
          r = await attempt(() => call('wllama', modelUrl, prompt, N_DECODE, threads, key === 'wllama-webgpu'));
          if (first && r.backendLog) log(`${key} backend log:\n  ${r.backendLog.join('\n  ')}`);
        }
      } else {
        throw new Error(`unknown configuration ${key} in ONLY`);
      }
      add(key, r);
    }
  }
  await call('quantlabFree');
  return { setup, runs };
}

function fmt(x, digits = 1) {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '-';
}

function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

function print({ setup, runs }) {
  const { env, load, upload, probe } = setup;
  const labels = {
    auto: `quantlab, lab's choice ('auto' → ${probe?.useGpu ? 'WebGPU' : 'CPU (wasm)'})`,
    cpu: 'quantlab, CPU (wasm, 1 thread)',
    webgpu: 'quantlab, WebGPU (GPU sampling)',
    'wllama-1t': 'wllama, CPU, 1 thread',
    'wllama-2t': 'wllama, CPU, 2 threads',
    'wllama-webgpu': 'wllama, default device (all layers to WebGPU), 1 thread',
  };
  // Where llama.cpp put the weights, from its log (its WebGPU backend may decline the adapter).
  const buffers = ONLY.filter((k) => k.startsWith('wllama-'))
    .map((k) => [k, runs[k]?.find((r) => r.modelBuffers)?.modelBuffers])
    .filter(([, b]) => b?.length)
    .map(([k, b]) => `${labels[k]}: ${b.join(' + ')}`);
  const ref = runs.cpu?.find((r) => r.text)?.text;
  const gpuDesc = env.webgpu ? [env.webgpu.vendor, env.webgpu.architecture, env.webgpu.description].filter(Boolean).join(' / ') : 'none';
  console.log(`Browser: ${env.userAgent.match(/(HeadlessChrome|Chrome)\/[\d.]+/)?.[0] ?? env.userAgent}, headless; WebGPU adapter: ${gpuDesc}` +
    (env.webgpu ? ` (${env.webgpu.isFallback ? 'fallback adapter, ' : ''}${env.webgpu.shaderF16 ? 'shader-f16' : 'no shader-f16'}, ${env.webgpu.subgroups ? 'subgroups' : 'no subgroups'})` : '') +
    `; cross-origin isolated: ${env.crossOriginIsolated}; navigator.hardwareConcurrency ${env.hardwareConcurrency}.`);
  console.log(`Machine: ${cpus().length} cores (${cpus()[0]?.model?.trim()}), load average ${load0} at start.`);
  console.log(`Model: ${relative(repoRoot, MODEL)} (${load.sourceFormat}, ${load.bitsPerWeight.toFixed(3)} bits/weight), the same bytes for both engines.`);
  const pt = Object.values(runs).flat().find((r) => r.promptTokens)?.promptTokens;
  console.log(`Greedy, prompt: first 300 characters of Moby-Dick ch. 1 (${pt ?? '?'} tokens), ${N_DECODE} tokens decoded; ${ROUNDS} round(s), medians of the rounds; tokens/s.`);
  if (upload && !upload.error) console.log(`quantlab WebGPU upload: ${(upload.uploadMs / 1000).toFixed(2)} s (adapter '${upload.adapter}', kernels: ${upload.kernels}).`);
  if (probe) console.log(`quantlab 'auto' probe (once per model, as the lab): ${probe.reason ?? probe.error}${probe.probeMs ? ` (${(probe.probeMs / 1000).toFixed(1)} s)` : ''}.`);
  console.log('');
  console.log('| engine, path | prompt tok | generated | prefill tok/s | decode tok/s | decode per round | warm-up s | text = quantlab CPU |');
  console.log('|---|--:|--:|--:|--:|---|--:|---|');
  for (const key of ONLY) {
    const rs = runs[key] ?? [];
    const ok = rs.filter((r) => !r.error);
    if (!ok.length) {
      console.log(`| ${labels[key]} | - | - | - | - | failed: ${rs[0]?.error ?? 'not run'} | - | - |`);
      continue;
    }
    const warm = key.startsWith('wllama-') ? ok.map((r) => r.warmMs) : [setup.warm?.[key === 'auto' ? (probe?.useGpu ? 'webgpu' : 'cpu') : key]?.wallMs];
    const same = ref === undefined ? '-' : ok.every((r) => r.text === ref) ? 'yes' : `no: "${ok[0].text.slice(0, 40).replace(/\s+/g, ' ')}…"`;
    console.log(`| ${labels[key]} | ${ok[0].promptTokens} | ${ok[0].generated} | ${fmt(median(ok.map((r) => r.prefillTps)))} | ${fmt(median(ok.map((r) => r.decodeTps)))} | ${ok.map((r) => fmt(r.decodeTps)).join(', ')} | ${fmt(median(warm) / 1000, 2)} | ${same} |`);
  }
  if (buffers.length) console.log(`\nwllama's weight buffers (llama.cpp log): ${buffers.join('; ')}.`);
  console.log('');
  const dec = (k) => median((runs[k] ?? []).filter((r) => !r.error).map((r) => r.decodeTps));
  const auto = dec('auto');
  const wl = ['wllama-1t', 'wllama-2t', 'wllama-webgpu'].filter((k) => Number.isFinite(dec(k)));
  if (Number.isFinite(auto) && wl.length) {
    const best = wl.reduce((a, b) => (dec(a) >= dec(b) ? a : b));
    const perRound = (runs.auto ?? []).map((r, i) => r.decodeTps / Math.max(...wl.map((k) => runs[k][i]?.decodeTps ?? NaN).filter(Number.isFinite)));
    console.log(`Target (lab's chosen path decode ≥ wllama's best decode, same GGUF, same browser): ${auto >= dec(best) ? 'MET' : 'MISSED'} — ` +
      `quantlab 'auto' ${fmt(auto)} tok/s vs ${labels[best]} ${fmt(dec(best))} tok/s: ratio ${fmt(auto / dec(best), 2)} ` +
      `(per round ${perRound.map((x) => fmt(x, 2)).join(', ')}); vs wllama 1 thread: ${fmt(auto / dec('wllama-1t'), 2)}.`);
  }
  console.log(`Load average at the end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}.`);
}
