// The model runtime as the lab's worker uses it (LabModel / LabEval / exportQuantized), run in
// Node on the real default model. References:
// - the eval text's perplexity: numpy float64 forward + Hugging Face tokenizer
//   (tests/fixtures/forward/ppl_evaltext.json, scripts/dev/reference_ppl.py --eval-text 64 2);
// - q8_0 KL / top-1 / ppl (within libm-sized tolerances, see below), 16 greedy tokens and the
//   exported q8_0 file (exact): what the NATIVE code
//   computes for the same settings (tests/fixtures/forward/runtime_native.json, recomputed and
//   checked by the Rust integration test tests/rust/runtime.rs on every run).
import { existsSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, test } from 'vitest';
import init, { evalText, exportQuantized, LabEval, LabModel } from '../../web/src/pkg/quantlab.js';
import { thrown } from './thrown';

const MODEL = new URL('../../models/SmolLM2-135M-Instruct.Q4_1.gguf', import.meta.url);
const WASM = new URL('../../web/src/pkg/quantlab_bg.wasm', import.meta.url);
const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/forward/${name}`, import.meta.url), 'utf8'));
const NUMPY = fixture('ppl_evaltext.json');
const NATIVE = fixture('runtime_native.json');
// The machine running the suite may be loaded: generous per-test limits (not timing targets).
const SLOW = 600_000;

let bytes: Uint8Array;
let base: LabModel;
let q8: LabModel;
beforeAll(async () => {
  if (!existsSync(WASM)) throw new Error('web/src/pkg is missing: run `npm test` (it builds the wasm core)');
  if (!existsSync(MODEL)) throw new Error('models/ is missing the default model: run `npm test` (setup downloads it)');
  await init({ module_or_path: readFileSync(WASM) });
  bytes = new Uint8Array(readFileSync(MODEL));
  base = LabModel.fromGguf(bytes);
}, SLOW);

const text = () =>
  evalText([1, 2, 3].map((i) => {
    const url = new URL(`../../data/moby-dick/chapter_${i}.json`, import.meta.url);
    if (!existsSync(url)) throw new Error('data/moby-dick is missing: run `npm test` (setup copies it)');
    return JSON.parse(readFileSync(url, 'utf8')).text;
  }));

/** |a − b| ≤ rel·|b|. */
const within = (a: number, b: number, rel: number) => Math.abs(a - b) <= rel * Math.abs(b);

function fnv1a32(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i]!, 0x01000193) >>> 0;
  return h >>> 0;
}

describe('LabModel', () => {
  test('info describes the default model', () => {
    const info = base.info();
    expect(info).toMatchObject({
      architecture: 'llama',
      sourceFormat: 'Q4_1',
      config: { dim: 576, hiddenDim: 1536, nLayers: 30, nHeads: 9, nKvHeads: 3, vocabSize: 49152 },
    });
    // 211 weight matrices + 61 norm vectors, as in the file; tied embeddings (no output.weight).
    expect(info.tensors).toHaveLength(272);
    expect(info.tensors.find((t: { name: string }) => t.name === 'token_embd.weight')).toMatchObject({
      type: 'Q8_0', rows: 49152, cols: 576, bytes: 30_081_024,
    });
    expect(info.parameterCount).toBe(134_515_008);
    expect(info.bitsPerWeight).toBeCloseTo((8 * info.residentBytes) / info.parameterCount, 12);
    expect(base.quantReport()).toBeUndefined();
  });

  test('quantize to q8_0 reports every matrix and can be cancelled', () => {
    const seen: [number, number, string][] = [];
    q8 = base.quantize('q8_0', (done: number, total: number, name: string) => { seen.push([done, total, name]); });
    expect(seen).toHaveLength(211);
    expect(seen[210]).toEqual([211, 211, 'blk.29.ffn_up.weight']);
    const report = q8.quantReport();
    if (!report) throw new Error('a quantized copy has a quantization report');
    expect(report.tensors).toHaveLength(211);
    expect(report.fallbacks).toBe(0);
    expect(report.tensors[1]).toMatchObject({ name: 'blk.0.attn_q.weight', from: 'Q4_1', to: 'q8_0' });
    expect(report.bitsPerWeight).toBeCloseTo(8.5, 12);
    expect(q8.info().sourceFormat).toBe('Q8_0');
    expect(thrown(() => base.quantize('q8_0', (done: number) => done < 3))).toMatchObject({ kind: 'cancelled', done: 3, total: 211 });
    expect(() => base.quantize('q4_0', () => { throw new Error('from the callback'); })).toThrow('from the callback');
  }, SLOW);

  test('evaluation matches the numpy reference, and q8_0 matches the native numbers', () => {
    const ev = new LabEval(base);
    ev.add(q8);
    const progress: number[] = [];
    const r = ev.run(text(), { ctx: NATIVE.ctx, maxWindows: NATIVE.windows, protocol: 'default' },
      (done: number, total: number) => { progress.push(done); expect(total).toBe(126); });
    expect(progress).toEqual(Array.from({ length: 126 }, (_, i) => i + 1)); // every position
    expect(r).toMatchObject({ protocol: 'default', ctx: 64, windows: 2, tokensScored: 126, textTokens: NUMPY.text_tokens, device: 'cpu' });
    const [b, q] = r.results;
    // Independent reference (f64 numpy forward of the same Q4_1 weights; ours is f32).
    expect(NUMPY.ctx).toBe(64);
    expect(NUMPY.scored).toBe(126);
    expect(within(b.ppl, NUMPY.ppl, 0.005)).toBe(true);
    // Same code natively. Not bit-identical: f32/f64 exp, powf, sin and cos come from glibc
    // natively and from Rust's libm port in wasm32, which differ in the last ulp now and then
    // (measured: ppl 1.2e-7, KL mean 2e-6, KL max 3e-5 relative). The argmax-based numbers
    // (top-1, greedy tokens) are exact.
    const REL = { ppl: 1e-6, ppl_stderr: 1e-6, mean_nll: 1e-6, kl_mean: 1e-4, kl_max: 1e-3 } as const;
    const check = (got: number, want: number, what: string, rel: number) =>
      expect(within(got, want, rel), `${what}: wasm ${got} vs native ${want} (rel ${rel})`).toBe(true);
    for (const [k, camel] of [['ppl', 'ppl'], ['ppl_stderr', 'pplStderr'], ['mean_nll', 'meanNll']] as const) {
      check(b[camel], NATIVE.base[k], `base ${k}`, REL[k]);
      check(q[camel], NATIVE.q8_0[k], `q8_0 ${k}`, REL[k]);
    }
    check(q.klMean ?? NaN, NATIVE.q8_0.kl_mean, 'q8_0 KL mean', REL.kl_mean);
    check(q.klMax ?? NaN, NATIVE.q8_0.kl_max, 'q8_0 KL max', REL.kl_max);
    expect(q.top1Agreement).toBe(NATIVE.q8_0.top1_agreement);
    expect(b.klMean).toBeUndefined();
    expect(q.tokensPerSec).toBeGreaterThan(0);
  }, SLOW);

  test('evaluation is cancellable within a window and refuses bad settings', () => {
    const ev = new LabEval(base);
    expect(thrown(() => ev.run(text(), { ctx: 64, maxWindows: 1 }, (done: number) => done < 5)))
      .toMatchObject({ kind: 'cancelled', done: 5, total: 63 });
    expect(() => ev.run(text(), { protocol: 'ollama' })).toThrow(/unknown protocol 'ollama'/);
    expect(thrown(() => ev.run(text(), { protocol: 'ollama' }))).toMatchObject({ kind: 'badInput', what: 'options' });
    expect(() => ev.run(text(), { ctx: 1 })).toThrow(/ctx = 1 leaves no token to score/);
    expect(() => ev.run('too short', { ctx: 64 })).toThrow(/fewer than one window of ctx = 64/);
    // Misspelt options from untyped JavaScript: the .d.ts refuses them, the binding must too.
    // @ts-expect-error 'bogus' is not an EvalOpts key
    expect(() => ev.run(text(), { ctx: 64, bogus: 1 })).toThrow(/invalid evaluation options: unknown option 'bogus'/);
    // @ts-expect-error 'maxToken' is not a GenerateOpts key
    expect(() => base.generate('x', { maxToken: 3 })).toThrow(/unknown option 'maxToken'/);
  });

  test('a quantized KV cache runs on the CPU core with the f32-cache base as the reference', () => {
    const ev = new LabEval(base);
    const r = ev.run(text(), { ctx: 32, maxWindows: 1, kvCache: 'int4' });
    expect(r.kvCache).toBe('int4');
    expect(r.results.length).toBe(2);
    expect(r.results[0].klMean).toBeUndefined();
    expect(r.results[1].klMean).toBeGreaterThan(0);
    expect(ev.run(text(), { ctx: 32, maxWindows: 1 }).results[0].ppl).toBe(r.results[0].ppl);
    // A name from untyped JavaScript: the .d.ts lists the valid ones, the binding must refuse others.
    const bad = { kvCache: 'q4_0' } as unknown as { kvCache: 'f32' };
    expect(thrown(() => ev.run(text(), bad))).toMatchObject({ kind: 'badInput', what: 'options' });
    expect(() => ev.run(text(), bad)).toThrow("kvCache: unknown KV cache type 'q4_0' (expected f32, f16, int8, int4 or fp8)");
  });

  test('16 greedy tokens equal the native ones, streamed piece by piece', () => {
    const pieces: string[] = [];
    const ids: number[] = [];
    const g = base.generate(NATIVE.greedy.prompt, { maxTokens: 16 }, (piece: string, id: number) => {
      pieces.push(piece);
      ids.push(id);
    });
    expect(Array.from(base.tokenize(NATIVE.greedy.prompt))).toEqual(NATIVE.greedy.prompt_ids);
    expect(g.promptTokens).toBe(NATIVE.greedy.prompt_ids.length);
    expect(g.tokenIds).toEqual(NATIVE.greedy.tokens);
    expect(ids).toEqual(g.tokenIds);
    expect(pieces.join('')).toBe(g.text);
    expect(g.stopReason).toBe(NATIVE.greedy.tokens.length === 16 ? 'maxTokens' : 'eog');
    expect(g.prefillTokensPerSec).toBeGreaterThan(0);
    expect(g.decodeTokensPerSec).toBeGreaterThan(0);
    // Returning false stops.
    const stopped = base.generate(NATIVE.greedy.prompt, { maxTokens: 16 }, (_: string, __: number) => ids.length > 100);
    expect(stopped.stopReason).toBe('callback');
    expect(stopped.tokenIds).toEqual(NATIVE.greedy.tokens.slice(0, 1));
    // The re-quantized copies whose wasm dot products have their own SIMD128 code.
    for (const [format, tokens] of Object.entries(NATIVE.greedy_formats as Record<string, number[]>)) {
      const q = base.quantize(format);
      try {
        expect(q.generate(NATIVE.greedy.prompt, { maxTokens: 16 }).tokenIds, format).toEqual(tokens);
      } finally {
        q.free();
      }
    }
    expect(() => base.generate('x', { temperature: -1 })).toThrow(/temperature must be a finite number/);
    expect(() => base.generate('', {})).toThrow(/prompt is empty/);
  }, SLOW);

  test('continueGeneration finishes a generation from part-way with the same tokens and text (greedy and seeded)', () => {
    for (const opts of [{ maxTokens: 8 }, { maxTokens: 8, seed: 7, temperature: 0.9, topK: 40 }]) {
      const pieces: string[] = [];
      const full = base.generate(NATIVE.greedy.prompt, opts, (piece: string) => {
        pieces.push(piece);
      });
      expect(full.tokenIds.length).toBe(8);
      const k = 3;
      const rest: string[] = [];
      const done = base.continueGeneration(NATIVE.greedy.prompt, opts, Uint32Array.from(full.tokenIds.slice(0, k)), (piece: string) => {
        rest.push(piece);
      });
      expect(done.tokenIds, JSON.stringify(opts)).toEqual(full.tokenIds);
      expect(done.text).toBe(full.text);
      expect(done.promptTokens).toBe(full.promptTokens);
      // Only the new tokens stream; with the first k pieces they make the whole text.
      expect(rest.length).toBe(8 - k);
      expect(pieces.slice(0, k).join('') + rest.join('')).toBe(full.text);
    }
    expect(() => base.continueGeneration('x', { maxTokens: 2 }, Uint32Array.from([1, 2, 3]))).toThrow(/3 tokens were already generated, more than the budget of 2/);
  }, SLOW);

  test('exportQuantized writes the same q8_0 GGUF as the native quantizer', () => {
    let calls = 0;
    const out = exportQuantized(bytes, 'q8_0', () => { calls++; });
    expect(calls).toBe(272);
    expect(out.extension).toBe(NATIVE.export_q8_0.extension);
    expect(out.bytes.length).toBe(NATIVE.export_q8_0.bytes);
    expect(fnv1a32(out.bytes)).toBe(NATIVE.export_q8_0.fnv1a32);
    expect(out.summary).toMatch(/output tensors\s+211 x Q8_0/);
    expect(LabModel.fromGguf(out.bytes).info().sourceFormat).toBe('Q8_0');
    expect(thrown(() => exportQuantized(bytes, 'q4_k', (done: number) => done < 2))).toMatchObject({ kind: 'cancelled', done: 2, message: expect.stringMatching(/export to q4_k/) });
  }, SLOW);

  test('bad inputs throw readable errors', () => {
    expect(() => LabModel.fromGguf(bytes.subarray(0, 1_000_000))).toThrow(/truncated/);
    expect(thrown(() => LabModel.fromGguf(bytes.subarray(0, 1_000_000)))).toMatchObject({ kind: 'badInput', what: 'file' });
    const wrong = bytes.slice(0, 4096);
    wrong.set(new TextEncoder().encode('GGML'), 0);
    expect(() => LabModel.fromGguf(wrong)).toThrow(/not a GGUF file \(magic is 'GGML'/);
    expect(() => LabModel.fromGguf(new Uint8Array(0))).toThrow(/empty file/);
    expect(() => base.quantize('q9_9')).toThrow(/unknown format 'q9_9'.*Valid formats/s);
    expect(thrown(() => base.quantize('q9_9'))).toMatchObject({ kind: 'badInput', what: 'format' });
    expect(() => exportQuantized(bytes, 'q9_9')).toThrow(/unknown format 'q9_9'/);
    expect(() => exportQuantized(bytes.subarray(0, 1_000_000), 'q8_0')).toThrow(/truncated/);
  });
});
