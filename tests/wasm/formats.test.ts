// The quantizers compiled to wasm must produce the same bytes as natively: the golden
// fixtures from gguf-py and llama.cpp's C reference (tests/fixtures/ggml), checked here through
// the wasm module the lab ships, plus the scheme/metrics bindings on the default model.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, test } from 'vitest';
import init, {
  dequantizeGgml,
  parseGgufHeader,
  parseScheme,
  quantizeGgml,
  quantizeTensor,
  validFormats,
  weightStats,
} from '../../web/src/pkg/quantlab.js';
import { LEGACY_REFERENCES, randomBlocks } from './ggml_legacy_ref';

const fixtures = new URL('../fixtures/ggml/', import.meta.url);
const read = (name: string) => new Uint8Array(readFileSync(new URL(name, fixtures)));
const f32 = (bytes: Uint8Array) => new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
const bitsEqual = (a: Float32Array, b: Float32Array) =>
  a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

beforeAll(async () => {
  await init({ module_or_path: readFileSync(new URL('../../web/src/pkg/quantlab_bg.wasm', import.meta.url)) });
});

describe('ggml quantizers in wasm are byte-identical to the references', () => {
  const manifest = JSON.parse(readFileSync(new URL('manifest.json', fixtures), 'utf8'));
  for (const c of manifest.cases.filter((c: { input?: string }) => c.input)) {
    test(`${c.name} vs gguf-py`, () => {
      const input = f32(read(c.input));
      const packed = quantizeGgml(c.type, input);
      expect(Buffer.compare(Buffer.from(packed), Buffer.from(read(c.packed)))).toBe(0);
      expect(bitsEqual(dequantizeGgml(c.type, packed, input.length), f32(read(c.dequantized)))).toBe(true);
    });
  }
  const kq = JSON.parse(readFileSync(new URL('kq_manifest.json', fixtures), 'utf8'));
  const input = f32(read(kq.input));
  for (const t of kq.types) {
    test(`${t.type} vs llama.cpp's quantize_row_*_ref`, () => {
      const packed = quantizeGgml(t.type, input);
      expect(Buffer.compare(Buffer.from(packed), Buffer.from(read(t.packed)))).toBe(0);
    });
  }
});

// The legacy types' fast paths (explicit SIMD128 in wasm) against an independent TypeScript
// port of llama.cpp's reference quantizers, on 3001 random blocks of 12 shapes (one row whose
// length is a multiple of 32 but not of 128).
describe('legacy quantizers in wasm match a port of the C references on random blocks', () => {
  const blocks = 3001;
  const row = randomBlocks(blocks, 0x5eedfa57);
  for (const [type, reference] of Object.entries(LEGACY_REFERENCES)) {
    test(type, () => {
      const refs = Array.from({ length: blocks }, (_, b) => reference(row.subarray(32 * b, 32 * b + 32)));
      // The f16 fields through the core's F16 encoder (checked against gguf-py above), which
      // accepts finite values only: a range that overflows f32 gives d = ±inf, stored as such.
      const scales = refs.flatMap((r) => r.scales);
      const f16 = quantizeGgml('F16', Float32Array.from(scales, (v) => (Number.isFinite(v) ? v : 0)));
      scales.forEach((v, i) => !Number.isFinite(v) && f16.set(v > 0 ? [0x00, 0x7c] : [0x00, 0xfc], 2 * i));
      const want: number[] = [];
      let h = 0;
      for (const r of refs) {
        want.push(...f16.subarray(h, h + 2 * r.scales.length), ...r.quants);
        h += 2 * r.scales.length;
      }
      const got = quantizeGgml(type, row);
      const size = want.length / blocks;
      expect(got.length).toBe(want.length);
      const bad = refs.findIndex((_, b) => got.subarray(size * b, size * (b + 1)).some((v, i) => v !== want[size * b + i]));
      const where = bad < 0 ? '' : `block ${bad} (${row.subarray(32 * bad, 32 * bad + 32).join(', ')})`;
      expect(where).toBe('');
    });
  }
});

describe('schemes and tensor reports', () => {
  test('scheme names parse to typed schemes; bad names list the valid ones', () => {
    expect(parseScheme('INT4-asym-g64')).toMatchObject({
      name: 'int4-asym-g64',
      scheme: { value: { kind: 'int', bits: 4 }, mapping: 'asymmetric', granularity: { kind: 'group', size: 64 } },
    });
    expect(() => parseScheme('awq')).toThrow(/Valid formats.*int8-sym-channel/);
    expect(validFormats()).toMatch(/nf4/);
  });

  const MODEL = new URL('../../models/SmolLM2-135M-Instruct.Q4_1.gguf', import.meta.url);
  test('re-quantizing a Q4_1 tensor: q4_1 is lossless, q8_0 beats int4, nf4 has 16 levels', () => {
    const model = new Uint8Array(readFileSync(MODEL));
    const h = parseGgufHeader(model.subarray(0, 4 << 20), model.byteLength);
    if (h.status !== 'ok') throw new Error(`expected a parsed header, got ${h.status}`);
    const t = h.tensors.find((x: { name: string }) => x.name === 'blk.0.attn_q.weight');
    if (!t) throw new Error('blk.0.attn_q.weight is in the header');
    const bytes = model.subarray(t.offset, t.offset + t.nBytes);
    const report = (scheme: string) => quantizeTensor(scheme, t.typeId, t.nElements, t.dims[0], bytes, 0, 64);
    // The stored weights are already on a Q4_1 grid: quantizing them to Q4_1 again is exact.
    const q41 = report('q4_1');
    expect(q41.metrics.mse).toBe(0);
    expect(q41.bitsPerWeight).toBe(5);
    const q80 = report('q8_0');
    const int4 = report('int4-asym-g64');
    expect(q80.metrics.sqnrDb).toBeGreaterThan(Number(int4.metrics.sqnrDb));
    expect(q80.bitsPerWeight).toBe(8.5);
    const nf4 = report('nf4');
    expect(nf4.bitsPerWeight).toBe(4.5);
    expect(nf4.levels).toHaveLength(16);
    expect(nf4.occupancy.reduce((a: number, b: number) => a + b, 0)).toBe(576 * 576);
    expect(nf4.histogram.total).toBe(576 * 576);
    const stats = weightStats(t.typeId, t.nElements, t.dims[0], bytes, 6);
    expect(stats.rows).toBe(576);
    expect(stats.colAbsmax).toHaveLength(576);
    expect(() => report('int4-sym-g128')).toThrow(/576.*128|128.*576/);
  });
});
