// Single-thread quantize throughput of the wasm core (the module the lab ships, run in Node)
// for every GGUF block type: prints `TYPE<TAB>MB/s` lines (MB/s of f32 input, best of RUNS),
// timed with the process's CPU time like the native bench, after one untimed warm-up call. Used by scripts/bench-quantize.sh.
//     node scripts/bench-quantize-wasm.mjs [N] [RUNS] [CACHE]
// CACHE: a file that keeps the generated values between calls (generating 16M values with
// BigInt arithmetic takes longer than the benchmark itself).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import init, { quantizeGgml } from '../web/src/pkg/quantlab.js';

const N = Number(process.argv[2] ?? 16777216);
const RUNS = Number(process.argv[3] ?? 3);
const CACHE = process.argv[4];
const TYPES = ['Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'];

await init({ module_or_path: readFileSync(new URL('../web/src/pkg/quantlab_bg.wasm', import.meta.url)) });

// Gaussian values from SplitMix64 + Box-Muller (seed 42), as the native and C benches use.
function gaussian(n) {
  let state = 42n;
  const mask = (1n << 64n) - 1n;
  const next = () => {
    state = (state + 0x9e3779b97f4a7c15n) & mask;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & mask;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & mask;
    return Number((z ^ (z >> 31n)) >> 11n) / 2 ** 53;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = Math.max(next(), 1e-300);
    const u2 = next();
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
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
const data = values();
const cpuSeconds = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};
for (const type of TYPES) {
  // One untimed call first: V8 runs a wasm function in its baseline compiler (Liftoff) until the
  // optimizing tier (TurboFan) has compiled it in the background, and a long call never switches
  // tiers midway, so the first timed run of each type could otherwise be a baseline-code run.
  quantizeGgml(type, data.subarray(0, Math.min(N, 1 << 20)));
  await new Promise((resolve) => setTimeout(resolve, 200));
  let best = Infinity;
  for (let r = 0; r < RUNS; r++) {
    const start = cpuSeconds();
    quantizeGgml(type, data);
    best = Math.min(best, cpuSeconds() - start);
  }
  console.log(`${type}\t${((N * 4) / 1e6 / best).toFixed(1)}`);
}
