// QuantBench (the binding scripts/bench-quantize-wasm.mjs times) must run the real quantizer:
// its output for each GGUF block type equals quantizeGgml's on the same values, which the
// formats tests check against llama.cpp and gguf-py. Bad input gives an error, not a panic.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, test } from 'vitest';
import init, { QuantBench, quantizeGgml } from '../../web/src/pkg/quantlab.js';

const TYPES = ['Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'];

beforeAll(async () => {
  await init({ module_or_path: readFileSync(new URL('../../web/src/pkg/quantlab_bg.wasm', import.meta.url)) });
});

// 8 super-blocks of varied values: a ramp, a scaled sine and a few outliers and zeros.
function values(): Float32Array {
  const v = new Float32Array(8 * 256);
  for (let i = 0; i < v.length; i++) v[i] = Math.sin(i * 0.37) * (1 + (i % 97) / 13) + (i % 256 === 7 ? 40 : 0);
  v.fill(0, 512, 768);
  return v;
}

describe('QuantBench', () => {
  const input = values();
  let bench: QuantBench;
  beforeAll(() => {
    bench = new QuantBench(input); // after the module's init above
  });
  for (const type of TYPES) {
    test(`${type}: run() writes the bytes quantizeGgml returns`, () => {
      const expected = quantizeGgml(type, input);
      expect(bench.run(type)).toBe(expected.length);
      expect(Buffer.compare(Buffer.from(bench.output()), Buffer.from(expected))).toBe(0);
      // A second run into the reused buffer gives the same bytes.
      bench.run(type);
      expect(Buffer.compare(Buffer.from(bench.output()), Buffer.from(expected))).toBe(0);
    });
  }
  test('types switch in either direction (buffer grows and shrinks)', () => {
    bench.run('Q2_K');
    bench.run('Q8_0');
    expect(Buffer.compare(Buffer.from(bench.output()), Buffer.from(quantizeGgml('Q8_0', input)))).toBe(0);
    bench.run('Q4_0');
    expect(Buffer.compare(Buffer.from(bench.output()), Buffer.from(quantizeGgml('Q4_0', input)))).toBe(0);
  });
  test('unknown types and partial blocks are errors', () => {
    expect(() => bench.run('Q9_9')).toThrow(/unknown ggml type 'Q9_9'/);
    const partial = new QuantBench(input.subarray(0, 300));
    expect(() => partial.run('Q4_K')).toThrow(/not whole/);
    partial.free();
  });
});
