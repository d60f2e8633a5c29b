// Integer vs float GEMV in the single-thread wasm core (the module the lab ships, run in Node):
// IntDotBench.runInt (the CPU integer path's per-token int8 dot, SIMD128 i32x4.dot_i16x8: rows
// of int8 codes times one int8 activation row, i32 sums) against IntDotBench.runFloat (the f32
// GEMV of the same values, Matrix::matvec on one thread, SIMD128 f32x4), at K×rows 576×1536,
// 4096×4096 and 1536×576. Time is the process's CPU time (process.cpuUsage; wall time on a
// shared machine mostly measures the other processes), best of RUNS rounds, int and float
// interleaved in every round, each timed call repeated to at least 50 ms. Prints markdown.
//     node scripts/bench-int-dot-wasm.mjs [RUNS]
import { readFileSync } from 'node:fs';
import init, { IntDotBench } from '../web/src/pkg/quantlab.js';

const RUNS = Number(process.argv[2] ?? 7);
const SHAPES = [
  [576, 1536],
  [4096, 4096],
  [1536, 576],
];

await init({ module_or_path: readFileSync(new URL('../web/src/pkg/quantlab_bg.wasm', import.meta.url)) });

function codes(n, seed) {
  const a = new Int8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    a[i] = ((s >>> 16) % 255) - 127;
  }
  return a;
}

const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

function timeOnce(fn, reps) {
  const t0 = cpuSeconds();
  for (let i = 0; i < reps; i++) fn();
  return (cpuSeconds() - t0) / reps;
}

function repsFor(fn) {
  let reps = 1;
  while (timeOnce(fn, reps) * reps < 0.05) reps *= 2;
  return reps;
}

console.log(`node ${process.version}, ${RUNS} rounds`);
console.log('| K×rows | int8 GEMV ms | f32 GEMV ms | int8 / f32 speed-up | int GOP/s | f32 GFLOP/s |');
console.log('|---|--:|--:|--:|--:|--:|');
for (const [k, rows] of SHAPES) {
  const a = codes(k, k);
  const w = new Uint8Array(codes(k * rows, rows).map((c) => c + 128));
  const bench = new IntDotBench(a, w);
  const int = () => bench.runInt();
  const float = () => bench.runFloat();
  const reps = [repsFor(int), repsFor(float)];
  let best = [Infinity, Infinity];
  for (let r = 0; r < RUNS; r++) {
    best = [Math.min(best[0], timeOnce(int, reps[0])), Math.min(best[1], timeOnce(float, reps[1]))];
  }
  const ops = 2 * k * rows;
  console.log(
    `| ${k}×${rows} | ${(best[0] * 1e3).toFixed(3)} | ${(best[1] * 1e3).toFixed(3)} | ${(best[1] / best[0]).toFixed(2)}× | ` +
      `${(ops / best[0] / 1e9).toFixed(2)} | ${(ops / best[1] / 1e9).toFixed(2)} |`,
  );
  bench.free();
}
