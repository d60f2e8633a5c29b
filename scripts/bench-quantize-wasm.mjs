// Single-thread quantize throughput of the wasm core (the module the lab ships, run in Node)
// for every GGUF block type, in MB/s of f32 input (best of RUNS), measured two ways:
//   wasm       QuantBench.run: the quantizer on values already in wasm memory, into an output
//              buffer allocated beforehand — what the native bench (bench_quantize.rs) measures;
//   wasm+copy  quantizeGgml from JS: the same plus copying the input into wasm memory and the
//              output back out (what the lab's worker pays per call).
// Prints `SIDE<TAB>TYPE<TAB>MB/s` lines. Time is the process's CPU time (process.cpuUsage; Node 20
// has no per-thread clock), like the native and C benches' thread CPU time: on a shared machine
// wall time (performance.now) mostly measures the other processes. Each type and way gets one
// untimed warm-up call first. Used by scripts/bench-quantize.sh.
//     node scripts/bench-quantize-wasm.mjs [N] [RUNS] [CACHE]
// CACHE: a file that keeps the generated values between calls (generating 16M values with
// BigInt arithmetic takes longer than the benchmark itself).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import init, { QuantBench, quantizeGgml } from '../web/src/pkg/quantlab.js';

const N = Number(process.argv[2] ?? 16777216);
const RUNS = Number(process.argv[3] ?? 3);
const CACHE = process.argv[4];
const TYPES = ['Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'];

await init({ module_or_path: readFileSync(new URL('../web/src/pkg/quantlab_bg.wasm', import.meta.url)) });

// Gaussian values from SplitMix64 + Box-Muller (seed 42): the generator of the native and C
// benches (uniform ((z >> 11) + 0.5) / 2^53, one cosine value per pair of draws).
function gaussian(n) {
  let state = 42n;
  const mask = (1n << 64n) - 1n;
  const unit = () => {
    state = (state + 0x9e3779b97f4a7c15n) & mask;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & mask;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & mask;
    return (Number((z ^ (z >> 31n)) >> 11n) + 0.5) / 2 ** 53;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u1 = unit();
    const u2 = unit();
    out[i] = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
  return out;
}

function values() {
  if (CACHE && existsSync(CACHE)) {
    const bytes = readFileSync(CACHE);
    if (bytes.byteLength === 4 * N) return new Float32Array(bytes.buffer, bytes.byteOffset, N);
  }
  const v = gaussian(N);
  if (CACHE) writeFileSync(CACHE, v);
  return v;
}
const data = values().subarray(0, N - (N % 256));
const cpuSeconds = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};
// Best of RUNS CPU-time measurements of `call`, after one untimed call. The warm-up matters:
// V8 runs a wasm function in its baseline compiler (Liftoff) until the optimizing tier
// (TurboFan) has compiled it in the background, and a long call never switches tiers midway.
async function best(call) {
  call();
  await new Promise((resolve) => setTimeout(resolve, 200));
  let seconds = Infinity;
  for (let r = 0; r < RUNS; r++) {
    const start = cpuSeconds();
    call();
    seconds = Math.min(seconds, cpuSeconds() - start);
  }
  return ((data.length * 4) / 1e6 / seconds).toFixed(1);
}

const bench = new QuantBench(data);
for (const type of TYPES) {
  const bytes = bench.run(type);
  const inPlace = await best(() => {
    if (bench.run(type) !== bytes) throw new Error(`QuantBench.run(${type}) changed its output size`);
  });
  console.log(`wasm\t${type}\t${inPlace}`);
  console.log(`wasm+copy\t${type}\t${await best(() => quantizeGgml(type, data))}`);
}
bench.free();
