// The Methods panel's bindings (crate/src/bindings/methods.rs), in Node:
// - llama.cpp's presets: the per-tensor types the lab plans for the default model equal those
//   `llama-quantize --allow-requantize` wrote (tests/fixtures/presets/*.json, the goldens of the
//   native test tests/rust/presets.rs), and quantizing gives exactly the planned types;
// - calibration (importance matrix), imatrix quantization and GPTQ on a tiny random llama
//   (tests/e2e/tiny-gguf.mjs): progress, cancel, typed errors, and that the data-driven methods
//   beat round-to-nearest on what they optimise.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import init, { exportHfLayout, exportQuantized, LabEval, LabModel, listMethods, listPresets, methodSupports, parseGgufHeader, parseTarget } from '../../web/src/pkg/quantlab.js';
import { tinyLlama } from '../e2e/tiny-gguf.mjs';
import { thrown } from './thrown';

const MODEL = new URL('../../models/SmolLM2-135M-Instruct.Q4_1.gguf', import.meta.url);
const WASM = new URL('../../web/src/pkg/quantlab_bg.wasm', import.meta.url);
const PRESETS = new URL('../fixtures/presets/', import.meta.url);
const SLOW = 600_000;

let base: LabModel;
let tiny: LabModel;
const TINY_BYTES = new Uint8Array(tinyLlama({ dim: 64, ff: 128, layers: 2, ctx: 64 }));
beforeAll(async () => {
  if (!existsSync(WASM)) throw new Error('web/src/pkg is missing: run `npm test` (it builds the wasm core)');
  if (!existsSync(MODEL)) throw new Error('models/ is missing the default model: run `npm test` (setup downloads it)');
  await init({ module_or_path: readFileSync(WASM) });
  base = LabModel.fromGguf(new Uint8Array(readFileSync(MODEL)));
  tiny = LabModel.fromGguf(TINY_BYTES);
}, SLOW);

/** Text the byte-level tiny tokenizer turns into one token per byte. */
const TEXT = 'Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse. '.repeat(8);

describe('methods and presets from the core', () => {
  test('the method list and its support rules come from recipe::Method', () => {
    expect(listMethods().map((m) => m.name)).toEqual(['rtn', 'imatrix', 'gptq']);
    expect(methodSupports('gptq', 'q4_0')).toBe(true);
    expect(methodSupports('gptq', 'q4_k_m')).toBe(false);
    expect(methodSupports('imatrix', 'q4_k_m')).toBe(true);
    expect(methodSupports('imatrix', 'nf4')).toBe(false);
    expect(thrown(() => methodSupports('awesome', 'q4_0'))).toMatchObject({ kind: 'badInput', what: 'options' });
    expect(parseTarget('q4_k_m')).toMatchObject({ name: 'q4_k_m', isFileType: true });
    expect(parseTarget('int4-sym-g64')).toMatchObject({ isFileType: false });
  });

  test("planned per-tensor types equal llama-quantize's for every preset golden", () => {
    const goldens = readdirSync(PRESETS).filter((f) => f.endsWith('.json'));
    const names = new Set(listPresets().map((p) => p.name));
    expect(goldens.length).toBeGreaterThan(10);
    for (const file of goldens) {
      const golden = JSON.parse(readFileSync(new URL(file, PRESETS), 'utf8')) as { file_type: string; tensors: Record<string, string> };
      expect(names.has(golden.file_type)).toBe(true);
      const planned = base.plannedTypes(golden.file_type, 'llama.cpp');
      expect(planned).toHaveLength(211);
      for (const t of planned) expect([golden.file_type, t.name, t.type]).toEqual([golden.file_type, t.name, golden.tensors[t.name]]);
    }
  });

  test('a preset quantizes to exactly its planned types, and the report counts them', () => {
    const planned = base.plannedTypes('q4_0', 'llama.cpp');
    const q = base.quantizeTarget('q4_0', 'llama.cpp');
    try {
      const report = q.quantReport()!;
      expect(report.tensors.map((t) => [t.name, t.to.toUpperCase()])).toEqual(planned.map((t) => [t.name, t.type.toUpperCase()]));
      // The tied embedding (also the output matrix) stays Q8_0, as llama-quantize keeps it.
      expect(report.byType).toEqual([
        { type: expect.stringMatching(/^q8_0$/i), tensors: 1, bytes: expect.any(Number) },
        { type: expect.stringMatching(/^q4_0$/i), tensors: 210, bytes: expect.any(Number) },
      ]);
    } finally {
      q.free();
    }
    expect(thrown(() => base.quantizeTarget('int4-sym-g64', 'llama.cpp'))).toMatchObject({ kind: 'badInput', what: 'format' });
    expect(thrown(() => base.quantizeTarget('q4_0', 'mixed'))).toMatchObject({ kind: 'badInput', what: 'options' });
  }, SLOW);
});

describe('calibration and the data-driven methods', () => {
  test('calibrate: an importance entry per blk matrix, progress to the end, whole chunks', () => {
    const seen: number[][] = [];
    const imatrix = tiny.calibrate(TEXT, { tokens: 256, chunk: 64 }, (done: number, total: number) => void seen.push([done, total]));
    try {
      expect(imatrix.info()).toMatchObject({ chunks: 4, chunk: 64, tokens: 256, entries: 14 });
      expect(seen.at(-1)).toEqual([256, 256]);
      const q = imatrix.importance('blk.0.attn_q.weight')!;
      expect(q).toHaveLength(64);
      expect([...q].every((v) => v > 0 && Number.isFinite(v))).toBe(true);
      // q, k and v read one input: one importance.
      expect([...imatrix.importance('blk.0.attn_v.weight')!]).toEqual([...q]);
      expect(imatrix.importance('blk.1.ffn_down.weight')).toHaveLength(128);
      expect(imatrix.importance('token_embd.weight')).toBeUndefined();
      // The file llama-imatrix writes: a GGUF.
      expect(new TextDecoder().decode(imatrix.toGguf('test text').subarray(0, 4))).toBe('GGUF');
    } finally {
      imatrix.free();
    }
  });

  test('calibration cancels, and refuses texts under one chunk and bad options with typed errors', () => {
    expect(thrown(() => tiny.calibrate(TEXT, { tokens: 256, chunk: 64 }, (done: number) => done < 64))).toMatchObject({ kind: 'cancelled', done: 64, total: 256 });
    expect(thrown(() => tiny.calibrate('short', { tokens: 256, chunk: 64 }))).toMatchObject({ kind: 'badInput', what: 'text' });
    expect(thrown(() => tiny.calibrate(TEXT, { tokens: 256, chunk: 0 }))).toMatchObject({ kind: 'badInput', what: 'options' });
    expect(thrown(() => tiny.calibrate(TEXT.repeat(6), { tokens: 8192, chunk: 4096 }))).toMatchObject({ kind: 'badInput', what: 'options' });
    expect(thrown(() => tiny.calibrate(TEXT, { tokenz: 1 } as never))).toMatchObject({ kind: 'badInput', what: 'options' });
  });

  test("layer 0's importance equals Σx²/n of rmsnorm(embedding) · attn_norm, computed here from the file", () => {
    const tokens = tiny.tokenize(TEXT).slice(0, 256);
    expect(tokens).toHaveLength(256);
    const embd = f32Tensor(TINY_BYTES, 'token_embd.weight');
    const norm = f32Tensor(TINY_BYTES, 'blk.0.attn_norm.weight');
    const dim = norm.length;
    const want = new Float64Array(dim);
    for (const t of tokens) {
      const x = embd.subarray(t * dim, (t + 1) * dim);
      const ms = x.reduce((a, v) => a + v * v, 0) / dim;
      const r = 1 / Math.sqrt(ms + 1e-5);
      for (let j = 0; j < dim; j++) want[j]! += (x[j]! * r * norm[j]!) ** 2;
    }
    const imatrix = tiny.calibrate(TEXT, { tokens: 256, chunk: 64 });
    try {
      const got = imatrix.importance('blk.0.attn_k.weight')!;
      for (let j = 0; j < dim; j++) expect(Math.abs(got[j]! - want[j]! / 256)).toBeLessThan(1e-5 * (want[j]! / 256));
    } finally {
      imatrix.free();
    }
  });

  test('imatrix quantization keeps the size and changes the codes of every matrix with an entry', () => {
    const imatrix = tiny.calibrate(TEXT, { tokens: 256, chunk: 64 });
    const rtn = tiny.quantizeTarget('q4_0', 'pure');
    const weighted = tiny.quantizeImatrix('q4_0', 'pure', imatrix);
    try {
      const [r, w] = [rtn.quantReport()!, weighted.quantReport()!];
      expect(w.bytesAfter).toBe(r.bytesAfter);
      // Different codes: the plain error differs on every matrix with an entry (not the embedding).
      const differs = r.tensors.filter((t, i) => t.error.mse !== w.tensors[i]!.error.mse).map((t) => t.name);
      expect(differs).toHaveLength(14);
      expect(differs).not.toContain('token_embd.weight');
    } finally {
      rtn.free();
      weighted.free();
      imatrix.free();
    }
  });

  test('GPTQ: layer-by-layer progress, lower output KL than RTN on the calibration text, cancel and errors', () => {
    const seen: number[] = [];
    const rtn = tiny.quantizeTarget('int3-asym-g32', 'pure');
    const gptq = tiny.quantizeGptq('int3-asym-g32', 'pure', TEXT, { tokens: 256 }, (done: number, total: number) => void seen.push(done / total));
    try {
      expect(seen.at(-1)).toBe(1);
      expect(seen.every((f, i) => i === 0 || f >= seen[i - 1]!)).toBe(true);
      const report = gptq.quantReport()!;
      expect(report.tensors.filter((t) => t.to === 'int3-asym-g32')).toHaveLength(15);
      const [klRtn, klGptq] = evalKl(tiny, [rtn, gptq]);
      expect(klGptq).toBeLessThan(klRtn!);
    } finally {
      rtn.free();
      gptq.free();
    }
    expect(thrown(() => tiny.quantizeGptq('q4_0', 'pure', TEXT, { tokens: 256 }, () => false))).toMatchObject({ kind: 'cancelled' });
    expect(thrown(() => tiny.quantizeGptq('q4_0', 'pure', TEXT, { tokens: 256, chunk: 64 } as never))).toMatchObject({ kind: 'badInput', what: 'options' });
    expect(thrown(() => tiny.quantizeGptq('q4_0', 'pure', 'x', { tokens: 256 }))).toMatchObject({ kind: 'badInput', what: 'text' });
  });
});

describe('method exports: the browser core and the native CLI write the same file', () => {
  // The native binary `npm test` builds in its cargo suite, which runs before this one.
  const native = resolve(process.env.CARGO_TARGET_DIR ?? resolve(__dirname, '../../target'), 'debug/quantlab');
  test.each([
    ['q4_0', 'gguf'],
    ['int4-asym-g32', 'safetensors'],
  ])('GPTQ onto %s, pure: exportGptq bytes equal `quantlab quantize --method gptq`', (target, extension) => {
    if (!existsSync(native)) throw new Error(`${native} is missing: build it with \`cargo build\` (npm test's cargo suite does)`);
    const dir = mkdtempSync(join(tmpdir(), 'ql-gptq-'));
    try {
      writeFileSync(join(dir, 'tiny.gguf'), TINY_BYTES);
      writeFileSync(join(dir, 'calib.txt'), TEXT);
      const outPath = join(dir, `out.${extension}`);
      execFileSync(native, ['quantize', join(dir, 'tiny.gguf'), '-f', target, '--pure', '--method', 'gptq', '--calib', join(dir, 'calib.txt'), '--calib-tokens', '256', '-o', outPath], { stdio: 'pipe' });
      const seen: number[] = [];
      const web = tiny.exportGptq(TINY_BYTES, target, 'pure', TEXT, { tokens: 256 }, (done: number, total: number) => void seen.push(done / total));
      expect(seen.at(-1)).toBe(1);
      expect(web.extension).toBe(extension);
      const file = new Uint8Array(readFileSync(outPath));
      expect(web.bytes.length).toBe(file.length);
      expect(Buffer.from(web.bytes).equals(Buffer.from(file))).toBe(true);
      // GPTQ ran: the file is not round to nearest's export of the same format.
      const rtn = exportQuantized(TINY_BYTES, target);
      expect(rtn.extension).toBe(extension);
      expect(Buffer.from(rtn.bytes).equals(Buffer.from(file))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test.each(['gptq', 'awq'] as const)('the %s layout (Hugging Face checkpoint): exportHfLayout equals `quantlab quantize --layout`', (layout) => {
    if (!existsSync(native)) throw new Error(`${native} is missing: build it with \`cargo build\` (npm test's cargo suite does)`);
    const dir = mkdtempSync(join(tmpdir(), 'ql-layout-'));
    try {
      writeFileSync(join(dir, 'tiny.gguf'), TINY_BYTES);
      execFileSync(native, ['quantize', join(dir, 'tiny.gguf'), '-f', 'int4-asym-g32', '--layout', layout, '-o', join(dir, 'out')], { stdio: 'pipe' });
      const web = exportHfLayout(TINY_BYTES, 'int4-asym-g32', layout);
      expect(Buffer.from(web.safetensors).equals(readFileSync(join(dir, 'out', 'model.safetensors')))).toBe(true);
      expect(web.config).toBe(readFileSync(join(dir, 'out', 'config.json'), 'utf8'));
      expect(JSON.parse(web.config).quantization_config.quant_method).toBe(layout);
      expect(web.quantized).toBe(14);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('imatrix onto q4_0, pure: exportImatrix bytes equal `quantlab quantize --imatrix` with the same matrix file', () => {
    if (!existsSync(native)) throw new Error(`${native} is missing: build it with \`cargo build\` (npm test's cargo suite does)`);
    const dir = mkdtempSync(join(tmpdir(), 'ql-imatrix-'));
    const imatrix = tiny.calibrate(TEXT, { tokens: 256, chunk: 64 });
    try {
      writeFileSync(join(dir, 'tiny.gguf'), TINY_BYTES);
      writeFileSync(join(dir, 'imatrix.gguf'), imatrix.toGguf('calib.txt'));
      const outPath = join(dir, 'out.gguf');
      execFileSync(native, ['quantize', join(dir, 'tiny.gguf'), '-f', 'q4_0', '--pure', '--imatrix', join(dir, 'imatrix.gguf'), '-o', outPath], { stdio: 'pipe' });
      const web = tiny.exportImatrix(TINY_BYTES, 'q4_0', 'pure', imatrix);
      const file = new Uint8Array(readFileSync(outPath));
      expect(web.extension).toBe('gguf');
      expect(Buffer.from(web.bytes).equals(Buffer.from(file))).toBe(true);
      expect(Buffer.from(exportQuantized(TINY_BYTES, 'q4_0').bytes).equals(Buffer.from(file))).toBe(false);
    } finally {
      imatrix.free();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Mean KL of each model from `ref` on the calibration text (one window). */
function evalKl(ref: LabModel, models: LabModel[]): number[] {
  const ev = new LabEval(ref);
  try {
    for (const m of models) ev.add(m);
    const run = ev.run(TEXT, { ctx: 64, maxWindows: 4 });
    return run.results.slice(1).map((r) => r.klMean!);
  } finally {
    ev.free();
  }
}

/** An F32 tensor of a GGUF file, read through the header parser. */
function f32Tensor(file: Uint8Array, name: string): Float32Array {
  const header = parseGgufHeader(file, file.length);
  if (header.status !== 'ok') throw new Error('the tiny model header did not parse');
  const t = header.tensors.find((r) => r.name === name)!;
  expect(t.type).toBe('F32');
  return new Float32Array(file.slice(t.offset, t.offset + t.nBytes).buffer);
}
