// quantlab's WebGPU weight matmuls in headless Chromium (SwiftShader here), the browser twin of
// scripts/bench-gpu.sh: per format, GEMV (one token; every portable strategy: 1, 4, 64 threads
// per row and 4, 8, 16 rows per thread — wgpu's WebGPU backend exposes no subgroups) and GEMM
// time, effective GB/s and GFLOP/s at n×K×rows = 1×576×1536, 1×4096×4096 and 512×4096×4096
// (64 with QUICK=1), then the
// 4096² GEMV speed-up of every format over f32, same strategy and best against best. Prints
// markdown. Not part of `npm test`.
//
//     node scripts/bench-gpu-browser.mjs
//     FORMATS=f32,int4-sym-g128 QUICK=1 GEMV_ONLY=1 node scripts/bench-gpu-browser.mjs
//
// The matrices are those of the native bench (quantlab::gpu::bench::bench_matrix), uploaded
// through the wasm binding GpuMatmulBench (crate/src/bindings/gpu_bench.rs) with f32 activations
// (SwiftShader has no shader-f16). Each product: one untimed run, then the fastest of RUNS runs
// of ≥ 150 ms (scripts/bench-browser/gpu.js). GB/s counts the repacked weight bytes plus x and y.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { openBenchPage, repoRoot } from './bench-browser/page.mjs';

const FORMATS = (process.env.FORMATS ?? 'f32,f16,q8_0,q4_0,q4_1,q4_k,q6_k,int8-sym-channel,int4-sym-g128,int4-asym-g128,nf4,q5_k').split(',');
const QUICK = process.env.QUICK === '1';
const GEMV_ONLY = process.env.GEMV_ONLY === '1';
const RUNS = Number(process.env.RUNS ?? 3);
// GpuMatmulBench.create's strategy arguments: threads per row (`gemv`) or rows per thread (`gemv_rows`).
const STRATEGIES = [{ rowThreads: 1 }, { rowThreads: 4 }, { rowThreads: 64 }, { rowsPerThread: 4 }, { rowsPerThread: 8 }, { rowsPerThread: 16 }];

const roots = { '/bench/': join(repoRoot, 'scripts/bench-browser'), '/pkg/': join(repoRoot, 'web/src/pkg') };
if (!existsSync(join(roots['/pkg/'], 'quantlab_bg.wasm'))) {
  console.error('bench-gpu-browser: the wasm core is missing (scripts/build-wasm.sh)');
  process.exit(1);
}
const log = (...a) => console.error('bench-gpu-browser:', ...a);
const load0 = loadavg().map((x) => x.toFixed(2)).join(' ');
const { page, blocked, pageErrors, close } = await openBenchPage(roots, '/bench/gpu.html');
const rows = [];
let env;
try {
  const call = (name, arg) => page.evaluate(([n, a]) => window.gpuBench[n](a), [name, arg]);
  env = await call('env');
  log('browser:', env.userAgent, '| WebGPU:', JSON.stringify(env.webgpu));
  const bigN = QUICK ? 64 : 512;
  for (const format of FORMATS) {
    for (const [cols, nRows] of [[576, 1536], [4096, 4096]]) {
      if (/_k$/i.test(format) && cols % 256 !== 0) {
        rows.push({ format, n: 1, cols, rows: nRows, skipped: 'K-quants need K a multiple of 256' });
        continue;
      }
      const shapes = STRATEGIES.map((strategy) => ({ n: 1, ...strategy }));
      if (cols === 4096 && !GEMV_ONLY) shapes.push({ n: bigN, rowThreads: 1 });
      for (const s of shapes) {
        try {
          const r = await call('measure', { format, n: s.n, cols, rows: nRows, rowThreads: s.rowThreads, rowsPerThread: s.rowsPerThread, runs: RUNS });
          rows.push(r);
          log(`${format} ${s.n}×${cols}×${nRows} ${s.n === 1 ? r.strategy : 'GEMM'}: ${r.ms.toFixed(2)} ms`);
        } catch (e) {
          rows.push({ format, n: s.n, cols, rows: nRows, error: String(e?.message ?? e).split('\n')[0] });
          log(`${format} ${s.n}×${cols}×${nRows}: error ${rows.at(-1).error}`);
        }
      }
    }
  }
  if (pageErrors.length) log('page errors:', pageErrors.join(' | '));
} finally {
  await close();
}
if (blocked.length) log(`aborted ${blocked.length} request(s) outside the local server:`, [...new Set(blocked)].join(', '));
print();

function print() {
  const w = env?.webgpu;
  console.log(`machine: ${cpus().length} cores, ${cpus()[0]?.model ?? '?'}, load ${load0} at start, ${loadavg().map((x) => x.toFixed(2)).join(' ')} at end`);
  console.log(`browser: ${env?.userAgent}; adapter: ${w ? `${w.vendor} / ${w.architecture}${w.isFallbackAdapter ? ' (fallback)' : ''}; features: ${w.features.join(', ') || 'none'}` : 'none'}`);
  console.log();
  console.log('| format | kernel | n×K×rows | GEMV strategy | GPU bytes | time ms | GB/s | GFLOP/s |');
  console.log('|--------|--------|----------|---------------|----------:|--------:|-----:|--------:|');
  for (const r of rows) {
    const shape = `${r.n}×${r.cols}×${r.rows}`;
    if (r.skipped || r.error) {
      console.log(`| ${r.format} | ${r.skipped ?? `error: ${r.error}`} | ${shape} | - | - | - | - | - |`);
      continue;
    }
    const s = r.ms / 1e3;
    const bytes = r.gpuBytes + 4 * r.n * (r.cols + r.rows);
    const flops = 2 * r.n * r.cols * r.rows;
    const what = r.n === 1 ? r.strategy : 'GEMM';
    console.log(`| ${r.format} | ${r.kernel} | ${shape} | ${what} | ${(r.gpuBytes / 1e6).toFixed(1)} MB | ${r.ms.toFixed(2)} | ${(bytes / s / 1e9).toFixed(2)} | ${(flops / s / 1e9).toFixed(2)} |`);
  }
  const gemv = rows.filter((r) => r.n === 1 && r.cols === 4096 && r.ms !== undefined);
  const f32 = gemv.filter((r) => r.format === 'f32');
  if (!f32.length) return;
  const best = (list) => list.reduce((a, b) => (b.ms < a.ms ? b : a));
  const f32Best = best(f32);
  console.log();
  console.log('GEMV 1×4096×4096 speed-up over f32 (target for INT4: ≥ 3×), same strategy, and best vs best:');
  console.log();
  const labels = [...new Set(gemv.map((r) => r.strategy))];
  console.log(`| format | ${labels.join(' | ')} | best vs best f32 (${f32Best.strategy}, ${f32Best.ms.toFixed(1)} ms) |`);
  console.log(`|--------|${labels.map(() => '---|').join('')}---|`);
  for (const format of [...new Set(gemv.map((r) => r.format))]) {
    const mine = gemv.filter((r) => r.format === format);
    const cells = labels.map((l) => {
      const a = f32.find((r) => r.strategy === l);
      const b = mine.find((r) => r.strategy === l);
      return a && b ? `${(a.ms / b.ms).toFixed(2)}×` : '-';
    });
    const b = best(mine);
    console.log(`| ${format} | ${cells.join(' | ')} | ${(f32Best.ms / b.ms).toFixed(2)}× (${b.strategy}, ${b.ms.toFixed(1)} ms) |`);
  }
}
