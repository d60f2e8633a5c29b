// The lab's newer wasm bindings in Node: parseSafetensorsHeader on a file built byte by byte in
// the test (tests/e2e/tiny-safetensors.mjs), LabModel.activationStats on the default model
// (shared inputs, the k × median outlier rule recomputed here, cancel), and quantReport's
// per-matrix error against quantizeTensor on the same stored tensor (a separate code path).
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, test } from 'vitest';
import init, { dequantizeGgml, LabModel, parseGgufHeader, parseSafetensorsHeader, quantizeTensor } from '../../web/src/pkg/quantlab.js';
import { thrown } from './thrown';
// @ts-ignore: a plain .mjs helper shared with the browser tests (no types)
import { buildSafetensors } from '../e2e/tiny-safetensors.mjs';

const MODEL = new URL('../../models/SmolLM2-135M-Instruct.Q4_1.gguf', import.meta.url);

beforeAll(async () => {
  await init({ module_or_path: readFileSync(new URL('../../web/src/pkg/quantlab_bg.wasm', import.meta.url)) });
});

interface Row { name: string; dims: number[]; type: string; typeId: number; nElements: number; nBytes: number; offset: number }

describe('parseSafetensorsHeader', () => {
  const tensors = [
    { name: 'b.f16', dtype: 'F16', shape: [2, 3], values: [0.5, -1, 2, 0.25, 1.5, -0.125] },
    { name: 'a.f32', dtype: 'F32', shape: [3, 4], values: Array.from({ length: 12 }, (_, i) => Math.fround(i / 3 - 1)) },
    { name: 'c.bf16', dtype: 'BF16', shape: [4], values: [1, -2, 0.5, 3] },
    { name: 'c.codes', dtype: 'U8', shape: [5], values: [1, 2, 3, 4, 5] },
  ];
  const file = new Uint8Array(buildSafetensors({ tensors, metadata: { 'quantlab.format': 'nf4' } }));

  test('rows in file order, ggml-order dims, ggml type ids, values decode exactly', () => {
    const h = parseSafetensorsHeader(file, file.length) as { status: string; container: string; tensors: Row[]; summary: { parameterCount: number; fileType: string | null } };
    expect(h.status).toBe('ok');
    expect(h.container).toBe('safetensors');
    expect(h.tensors.map((t) => [t.name, t.type, t.typeId, t.dims])).toEqual([
      ['b.f16', 'F16', 1, [3, 2]],
      ['a.f32', 'F32', 0, [4, 3]],
      ['c.bf16', 'BF16', 30, [4]],
      ['c.codes', 'U8', -1, [5]],
    ]);
    expect(h.summary.parameterCount).toBe(6 + 12 + 4 + 5);
    expect(h.summary.fileType).toBe('nf4');
    for (const [i, t] of h.tensors.slice(0, 3).entries()) {
      const values = dequantizeGgml(t.type, file.subarray(t.offset, t.offset + t.nBytes), t.nElements);
      expect(Array.from(values)).toEqual(tensors[i]!.values);
    }
  });

  test('a short prefix asks for more bytes; broken headers are clear errors', () => {
    expect(parseSafetensorsHeader(file.subarray(0, 20), file.length)).toMatchObject({ status: 'need-more-bytes' });
    expect(() => parseSafetensorsHeader(file, file.length - 3)).toThrow(/data_offsets .* outside/);
    const bad = new Uint8Array(buildSafetensors({ tensors: [{ name: 'x', dtype: 'F32', shape: [2], values: [1, 2] }] }));
    const text = new TextDecoder().decode(bad).replace('[2]', '[3]');
    expect(() => parseSafetensorsHeader(new TextEncoder().encode(text), bad.length)).toThrow(/needs 12 bytes, data_offsets give 8/);
    expect(() => parseSafetensorsHeader(new Uint8Array(4), 4)).toThrow(/too short/);
  });
});

describe('LabModel on the default model', () => {
  let model: LabModel;
  let bytes: Uint8Array;
  beforeAll(() => {
    bytes = new Uint8Array(readFileSync(MODEL));
    model = LabModel.fromGguf(bytes);
  });

  test('activationStats: one entry per matrix, shared inputs, the outlier rule, cancel', () => {
    const calls: number[] = [];
    const r = model.activationStats('Call me Ishmael. Some years ago', { maxTokens: 4 }, (done: number) => void calls.push(done)) as {
      tokens: number;
      outlierK: number;
      tensors: { tensor: string; colAbsmax: Float32Array; colRms: Float32Array; outliers: number[] }[];
    };
    expect(r.tokens).toBe(4);
    expect(calls).toEqual([1, 2, 3, 4]);
    expect(r.tensors).toHaveLength(30 * 7 + 1);
    const by = new Map(r.tensors.map((t) => [t.tensor, t]));
    expect(by.get('blk.2.attn_q.weight')!.colAbsmax).toEqual(by.get('blk.2.attn_v.weight')!.colAbsmax);
    expect(by.get('blk.2.ffn_down.weight')!.colAbsmax).toHaveLength(1536);
    expect(by.get('blk.2.attn_output.weight')!.colAbsmax).toHaveLength(576);
    expect(by.has('token_embd.weight')).toBe(true); // tied classifier
    for (const t of r.tensors) {
      const sorted = Array.from(t.colAbsmax).sort((a, b) => a - b);
      const n = sorted.length;
      const median = n % 2 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
      const expected = Array.from(t.colAbsmax).flatMap((a, i) => (a > r.outlierK * median ? [i] : []));
      expect(t.outliers, t.tensor).toEqual(expected);
      t.colRms.forEach((rms, i) => expect(rms).toBeLessThanOrEqual(t.colAbsmax[i]! * (1 + 1e-6)));
    }
    expect(thrown(() => model.activationStats('Call me Ishmael.', { maxTokens: 4 }, () => false))).toMatchObject({ kind: 'cancelled', total: 4 });
    expect(() => model.activationStats('x', { maxTokens: 4, outlierK: -1 })).toThrow(/outlierK/);
  });

  test('quantReport error of a matrix equals quantizeTensor on the same stored tensor', () => {
    const q = model.quantize('q8_0');
    const report = q.quantReport() as { tensors: { name: string; to: string; error: { mse: number; sqnrDb: number | string } }[] };
    q.free();
    const header = parseGgufHeader(bytes, bytes.length) as { tensors: Row[] };
    for (const name of ['blk.0.attn_q.weight', 'blk.29.ffn_down.weight']) {
      const row = header.tensors.find((t) => t.name === name)!;
      const direct = quantizeTensor('q8_0', row.typeId, row.nElements, row.dims[0]!, bytes.subarray(row.offset, row.offset + row.nBytes), 0, 1) as { metrics: { mse: number; sqnrDb: number } };
      const entry = report.tensors.find((t) => t.name === name)!;
      expect(entry.to).toBe('q8_0');
      expect(entry.error.mse).toBe(direct.metrics.mse);
      expect(entry.error.sqnrDb).toBe(direct.metrics.sqnrDb);
    }
    // token_embd is Q8_0 already: copied, no error.
    expect(report.tensors.find((t) => t.name === 'token_embd.weight')!.error.sqnrDb).toBe('inf');
  });
});
