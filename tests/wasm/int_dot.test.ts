// The wasm core's per-token int8 dot (`dot_i8_offset`, the CPU integer path of --matmul int8 with
// int8-token or llm-int8 activations) is its SIMD128 form (i32x4.dot_i16x8) in this build: its
// sums must equal the portable loop's and a plain JavaScript integer sum, bit for bit, on rows
// whose length is not a multiple of 16 (the scalar tail) and with the extreme codes ±127 and the
// weight codes 1 and 255 (q = −127, +127).
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, test } from 'vitest';
import init, { IntDotBench } from '../../web/src/pkg/quantlab.js';

beforeAll(async () => {
  await init({ module_or_path: readFileSync(new URL('../../web/src/pkg/quantlab_bg.wasm', import.meta.url)) });
});

function codes(k: number, seed: number): Int8Array {
  const a = new Int8Array(k);
  let s = seed;
  for (let i = 0; i < k; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = ((s >>> 16) % 255) - 127;
  }
  return a;
}

function jsSums(a: Int8Array, w: Uint8Array): number[] {
  const out: number[] = [];
  for (let r = 0; r < w.length / a.length; r++) {
    let s = 0;
    for (let j = 0; j < a.length; j++) s += a[j] * (w[r * a.length + j] - 128);
    out.push(s);
  }
  return out;
}

describe('IntDotBench', () => {
  for (const k of [1, 15, 16, 17, 77, 576, 1001]) {
    test(`K = ${k}: SIMD128 sums equal the portable loop and JS`, () => {
      const a = codes(k, k);
      const rows = 5;
      const w = new Uint8Array(rows * k);
      const wc = codes(rows * k, 7 * k);
      for (let i = 0; i < w.length; i++) w[i] = wc[i] + 128;
      // Row 0 at the extremes: every product 127·127 with one sign or the other.
      for (let j = 0; j < k; j++) {
        a[j] = j % 3 === 0 ? -127 : 127;
        w[j] = j % 2 === 0 ? 255 : 1;
      }
      const bench = new IntDotBench(a, w);
      const want = jsSums(a, w);
      expect(Array.from(bench.sums())).toEqual(want);
      expect(Array.from(bench.sumsPortable())).toEqual(want);
      expect(bench.runInt()).toBe(want[0]);
      expect(bench.runFloat()).toBe(want[0]); // |sum| < 2^24: exact in f32 too
      bench.free();
    });
  }
  test('weights that are not whole rows are an error', () => {
    expect(() => new IntDotBench(new Int8Array(4), new Uint8Array(6))).toThrow(/not whole rows of 4/);
    expect(() => new IntDotBench(new Int8Array(0), new Uint8Array(0))).toThrow(/not whole rows/);
  });
});
