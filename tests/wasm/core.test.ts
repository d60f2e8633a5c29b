// The wasm core as the browser uses it (same module, same bindings), run in Node: the real
// default model's header and a histogram, plus malformed input. Independent facts about the
// model come from gguf-py's reader (see tests/rust/gguf.rs).
import { existsSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, test } from 'vitest';
import init, { coreVersion, parseGgufHeader, tensorHistogram } from '../../web/src/pkg/quantlab.js';

const MODEL = new URL('../../models/SmolLM2-135M-Instruct.Q4_1.gguf', import.meta.url);
const WASM = new URL('../../web/src/pkg/quantlab_bg.wasm', import.meta.url);

let model: Uint8Array;
beforeAll(async () => {
  if (!existsSync(WASM)) throw new Error('web/src/pkg is missing: run `npm test` (it builds the wasm core)');
  if (!existsSync(MODEL)) throw new Error('models/ is missing the default model: run `npm test` (setup downloads it)');
  await init({ module_or_path: readFileSync(WASM) });
  model = new Uint8Array(readFileSync(MODEL));
});

interface Tensor { name: string; dims: number[]; type: string; typeId: number; nElements: number; nBytes: number; offset: number }

describe('wasm core', () => {
  test('reports its version', () => {
    expect(coreVersion()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  test('a short prefix asks for more bytes instead of failing', () => {
    const r = parseGgufHeader(model.subarray(0, 4096), model.byteLength);
    expect(r.status).toBe('need-more-bytes');
    if (r.status !== 'need-more-bytes') throw new Error(`expected need-more-bytes, got ${r.status}`);
    expect(r.needed).toBeGreaterThan(4096);
  });

  test('parses the default model header from a prefix', () => {
    const h = parseGgufHeader(model.subarray(0, 4 << 20), model.byteLength);
    expect(h.status).toBe('ok');
    if (h.status !== 'ok') throw new Error(`expected a parsed header, got ${h.status}`);
    expect(h.version).toBe(3);
    expect(h.tensors).toHaveLength(272);
    expect(h.summary.architecture).toBe('llama');
    expect(h.summary.blockCount).toBe(30);
    const embd = h.tensors.find((t: Tensor) => t.name === 'token_embd.weight');
    expect(embd).toMatchObject({ dims: [576, 49152], type: 'Q8_0', nBytes: 30_081_024, offset: 1_785_664 });
    // Long arrays are abbreviated for display, not dropped.
    expect(h.metadata['tokenizer.ggml.tokens']).toMatchObject({ len: 49152 });
  });

  test('histogram of blk.0.attn_q.weight counts every weight', () => {
    const h = parseGgufHeader(model.subarray(0, 4 << 20), model.byteLength);
    if (h.status !== 'ok') throw new Error(`expected a parsed header, got ${h.status}`);
    const t = h.tensors.find((x: Tensor) => x.name === 'blk.0.attn_q.weight');
    if (!t) throw new Error('blk.0.attn_q.weight is in the header');
    const bytes = model.subarray(t.offset, t.offset + t.nBytes);
    const hist = tensorHistogram(t.typeId, t.nElements, t.dims[0]!, bytes, 128);
    expect(hist.counts).toHaveLength(128);
    expect(hist.counts.reduce((a: number, b: number) => a + b, 0)).toBe(576 * 576);
    expect(hist.total).toBe(576 * 576);
    expect(hist.nonFinite).toBe(0);
    expect(hist.lo).toBe(hist.min);
    expect(hist.hi).toBe(hist.max);
  });

  test('malformed input gives errors with readable messages', () => {
    expect(() => parseGgufHeader(new TextEncoder().encode('PK\u0003\u0004 zip'), 9)).toThrow(/not a GGUF file/);
    // The whole (short) file is the prefix: truncation is now an error, not a request for more.
    expect(() => parseGgufHeader(model.subarray(0, 100_000), 100_000)).toThrow(/truncated/i);
    expect(() => parseGgufHeader(model.subarray(0, 4 << 20), 40_000_000)).toThrow(/truncated.*tensor/i);
    expect(() => tensorHistogram(4, 32, 32, new Uint8Array(18), 16)).toThrow(/removed from ggml/);
    expect(() => tensorHistogram(3, 64, 32, new Uint8Array(20), 16)).toThrow(/expected 40 bytes/);
  });
});
