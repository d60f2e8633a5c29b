// The malformed-file corpus (tests/fixtures/malformed/, scripts/dev/make_malformed.py) through
// the wasm loader the lab uses: every file gives an error with a message, never a trap; NaN
// inputs and overflowing scales are refused in the browser as in the CLI.
import { existsSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, test } from 'vitest';
import init, { exportQuantized, LabModel, parseGgufHeader, quantizeTensor } from '../../web/src/pkg/quantlab.js';

const WASM = new URL('../../web/src/pkg/quantlab_bg.wasm', import.meta.url);
const corpus = (name: string) => new Uint8Array(readFileSync(new URL(`../fixtures/malformed/${name}`, import.meta.url)));

beforeAll(async () => {
  if (!existsSync(WASM)) throw new Error('web/src/pkg is missing: run `npm test` (it builds the wasm core)');
  await init({ module_or_path: readFileSync(WASM) });
});

const f32Bytes = (v: number[]) => new Uint8Array(new Float32Array(v).buffer);

describe('malformed files in the wasm loader', () => {
  test('header errors name the problem', () => {
    const cases: [string, RegExp][] = [
      ['bad_magic.gguf', /magic|not a GGUF/i],
      ['truncated_header.gguf', /truncated/i],
      ['alignment_2p31.gguf', /general\.alignment/],
      ['huge_token_count.gguf', /tokenizer\.ggml\.tokens/],
      ['tensor_past_end.gguf', /blk\.0\.ffn_down\.weight/],
    ];
    for (const [name, message] of cases) {
      const bytes = corpus(name);
      expect(() => parseGgufHeader(bytes, bytes.byteLength), name).toThrow(message);
      expect(() => LabModel.fromGguf(bytes), name).toThrow(message);
    }
  });

  test('a tokenizer larger than the embedding is refused at load', () => {
    expect(() => LabModel.fromGguf(corpus('vocab_beyond_embedding.gguf'))).toThrow(/300 tokens.*256 rows/);
  });

  test('NaN weights are refused by the quantizer and the export', () => {
    const values = Array.from({ length: 64 }, (_, i) => i / 64);
    values[5] = NaN;
    expect(() => quantizeTensor('q8_0', 0, 64, 64, f32Bytes(values), 0, 16)).toThrow(/NaN/);
    expect(() => quantizeTensor('int4-asym-g32', 0, 64, 64, f32Bytes(values), 0, 16)).toThrow(/NaN/);
    expect(() => exportQuantized(corpus('nan_weight.gguf'), 'q8_0')).toThrow(/NaN/);
  });
});
