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
import init, { exportQuantized, LabEval, LabImatrix, LabModel, listMethods, listPresets, methodSupports, parseGgufHeader, parseTarget } from '../../web/src/pkg/quantlab.js';
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
    expect(listMethods().map((m) => m.name)).toEqual(['rtn', 'imatrix', 'gptq', 'awq', 'hqq']);
    expect(listMethods().map((m) => m.calibration)).toEqual(['none', 'activations', 'layerSequential', 'layerSequential', 'none']);
    expect(methodSupports('awq', 'q4_k_m')).toBe(true);
    expect(methodSupports('awq', 'nf4')).toBe(false);
    expect(methodSupports('hqq', 'int4-asym-g64')).toBe(true);
    expect(methodSupports('hqq', 'int4-sym-g64')).toBe(false);
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

  test('a saved importance matrix (toGguf → fromGguf) gives the same importances and codes; a corrupt or foreign one is refused', () => {
    const imatrix = tiny.calibrate(TEXT, { tokens: 256, chunk: 64 });
    const saved = imatrix.toGguf('calib');
    const restored = LabImatrix.fromGguf(saved, imatrix.info().textTokens, tiny);
    const [a, b] = [tiny.quantizeImatrix('q4_0', 'pure', imatrix), tiny.quantizeImatrix('q4_0', 'pure', restored)];
    try {
      expect(restored.info()).toEqual(imatrix.info());
      expect([...restored.importance('blk.1.ffn_down.weight')!]).toEqual([...imatrix.importance('blk.1.ffn_down.weight')!]);
      expect(b.quantReport()!.tensors.map((t) => t.error.mse)).toEqual(a.quantReport()!.tensors.map((t) => t.error.mse));
      expect(thrown(() => LabImatrix.fromGguf(saved.subarray(0, 64), 256, tiny))).toMatchObject({ kind: 'badInput', what: 'file' });
      expect(thrown(() => LabImatrix.fromGguf(new Uint8Array([71, 71, 85, 70, 3, 0, 0, 0, 1, 2, 3]), 256, tiny))).toMatchObject({ kind: 'badInput', what: 'file' });
      // The default model's matrices are wider than the tiny model's: a foreign matrix is refused.
      expect(thrown(() => LabImatrix.fromGguf(saved, 256, base))).toMatchObject({ kind: 'badInput', what: 'file' });
    } finally {
      for (const x of [a, b, imatrix, restored]) x.free();
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

  test('AWQ: layer-by-layer progress, lower output KL than RTN on the calibration text, scaled norms, cancel and errors', () => {
    const seen: number[] = [];
    const rtn = tiny.quantizeTarget('int3-asym-g32', 'pure');
    const awq = tiny.quantizeAwq('int3-asym-g32', 'pure', TEXT, { tokens: 256 }, (done: number, total: number) => void seen.push(done / total));
    try {
      expect(seen.at(-1)).toBe(1);
      expect(seen.every((f, i) => i === 0 || f >= seen[i - 1]!)).toBe(true);
      expect(awq.quantReport()!.tensors.filter((t) => t.to === 'int3-asym-g32')).toHaveLength(15);
      const [klRtn, klAwq] = evalKl(tiny, [rtn, awq]);
      expect(Number.isFinite(klAwq)).toBe(true);
      expect(klAwq).toBeLessThan(klRtn!);
    } finally {
      rtn.free();
      awq.free();
    }
    expect(thrown(() => tiny.quantizeAwq('q4_0', 'pure', TEXT, { tokens: 256 }, () => false))).toMatchObject({ kind: 'cancelled' });
    expect(thrown(() => tiny.quantizeAwq('q4_0', 'pure', TEXT, { tokens: 256, actOrder: true }))).toMatchObject({ kind: 'badInput', what: 'options' });
    expect(thrown(() => tiny.quantizeAwq('q4_0', 'pure', 'x', { tokens: 256 }))).toMatchObject({ kind: 'badInput', what: 'text' });
  });

  test('HQQ: every matrix (the embedding too), progress per tensor, lower weight error than RTN, cancel and errors', () => {
    const seen: string[] = [];
    const rtn = tiny.quantizeTarget('int4-asym-g32', 'pure');
    const hqq = tiny.quantizeHqq('int4-asym-g32', 'pure', (_d: number, _t: number, tensor: string) => void seen.push(tensor));
    try {
      const [r, h] = [rtn.quantReport()!, hqq.quantReport()!];
      expect(h.tensors.map((t) => t.to)).toEqual(r.tensors.map((t) => t.to));
      expect(seen).toContain('token_embd.weight');
      // Summed squared error below RTN's, as tests/rust/hqq.rs finds on the default model's layers.
      const sum = (rep: typeof r) => rep.tensors.reduce((a, t) => a + t.error.mse, 0);
      expect(sum(h)).toBeLessThan(sum(r));
    } finally {
      rtn.free();
      hqq.free();
    }
    expect(thrown(() => tiny.quantizeHqq('int4-asym-g32', 'pure', () => false))).toMatchObject({ kind: 'cancelled' });
    expect(thrown(() => tiny.quantizeHqq('q4_0', 'pure'))).toMatchObject({ kind: 'badInput', what: 'format' });
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

  test.each([
    ['awq', 'q4_0', 'gguf'],
    ['awq', 'int4-asym-g32', 'safetensors'],
    ['hqq', 'q4_1', 'gguf'],
    ['hqq', 'int4-asym-g32', 'safetensors'],
  ] as const)('%s onto %s, pure: exportAwq / exportHqq write the file of `quantlab quantize --method`', (method, target, extension) => {
    if (!existsSync(native)) throw new Error(`${native} is missing: build it with \`cargo build\` (npm test's cargo suite does)`);
    const dir = mkdtempSync(join(tmpdir(), `ql-${method}-`));
    try {
      writeFileSync(join(dir, 'tiny.gguf'), TINY_BYTES);
      writeFileSync(join(dir, 'calib.txt'), TEXT);
      const outPath = join(dir, `out.${extension}`);
      const calib = method === 'awq' ? ['--calib', join(dir, 'calib.txt'), '--calib-tokens', '256'] : [];
      execFileSync(native, ['quantize', join(dir, 'tiny.gguf'), '-f', target, '--pure', '--method', method, ...calib, '-o', outPath], { stdio: 'pipe' });
      const seen: number[] = [];
      const progress = (done: number, total: number) => void seen.push(done / total);
      const web = method === 'awq' ? tiny.exportAwq(TINY_BYTES, target, 'pure', TEXT, { tokens: 256 }, progress) : tiny.exportHqq(TINY_BYTES, target, 'pure', progress);
      expect(seen.at(-1)).toBe(1);
      expect(web.extension).toBe(extension);
      const file = new Uint8Array(readFileSync(outPath));
      expect(web.bytes.length).toBe(file.length);
      if (method === 'hqq') expect(Buffer.from(web.bytes).equals(Buffer.from(file))).toBe(true);
      else {
        // AWQ folds scales computed from the model's activations into the f32 norms, and the
        // forward's SIMD sums run in another order on x86 than in wasm32: those vectors may differ
        // in the last bit. Everything else, every quantized tensor included, is byte-identical.
        const [a, b] = [tensorsOf(web.bytes, extension), tensorsOf(file, extension)];
        expect([...a.keys()]).toEqual([...b.keys()]);
        for (const [name, bytes] of a) {
          if (!/_norm\.weight$/.test(name)) expect([name, Buffer.from(bytes).equals(Buffer.from(b.get(name)!))]).toEqual([name, true]);
          else {
            const [x, y] = [new Float32Array(bytes.slice().buffer), new Float32Array(b.get(name)!.slice().buffer)];
            x.forEach((v, i) => expect(Math.abs(v - y[i]!)).toBeLessThanOrEqual(1e-6 * Math.abs(y[i]!)));
          }
        }
      }
      expect(Buffer.from(exportQuantized(TINY_BYTES, target).bytes).equals(Buffer.from(file))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test.each([
    ['gptq', 'rtn'],
    ['awq', 'rtn'],
    ['gptq', 'gptq'],
    ['awq', 'awq'],
    ['awq', 'hqq'],
  ] as const)('the %s layout (Hugging Face checkpoint) with %s codes: exportHfLayout equals `quantlab quantize --layout --method`', (layout, method) => {
    if (!existsSync(native)) throw new Error(`${native} is missing: build it with \`cargo build\` (npm test's cargo suite does)`);
    const dir = mkdtempSync(join(tmpdir(), 'ql-layout-'));
    try {
      writeFileSync(join(dir, 'tiny.gguf'), TINY_BYTES);
      writeFileSync(join(dir, 'calib.txt'), TEXT);
      const calib = method === 'gptq' || method === 'awq' ? ['--calib', join(dir, 'calib.txt'), '--calib-tokens', '256'] : [];
      const cli = (m: string, out: string) => execFileSync(native, ['quantize', join(dir, 'tiny.gguf'), '-f', 'int4-asym-g32', '--layout', layout, '--method', m, ...(m === method ? calib : []), '-o', join(dir, out)], { stdio: 'pipe' });
      cli(method, 'out');
      const web = tiny.exportHfLayout(TINY_BYTES, 'int4-asym-g32', layout, method, TEXT, { tokens: 256 });
      expect(Buffer.from(web.safetensors).equals(readFileSync(join(dir, 'out', 'model.safetensors')))).toBe(true);
      expect(web.config).toBe(readFileSync(join(dir, 'out', 'config.json'), 'utf8'));
      expect(JSON.parse(web.config).quantization_config.quant_method).toBe(layout);
      expect(web.quantized).toBe(14);
      if (method !== 'rtn') {
        // The method's codes, not round to nearest's.
        cli('rtn', 'rtn');
        expect(Buffer.from(web.safetensors).equals(readFileSync(join(dir, 'rtn', 'model.safetensors')))).toBe(false);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('exportHfLayout refuses what the layout or method cannot do, with typed errors', () => {
    expect(thrown(() => tiny.exportHfLayout(TINY_BYTES, 'int4-asym-g32', 'awq', 'imatrix', TEXT, {}))).toMatchObject({ kind: 'badInput', what: 'options' });
    expect(thrown(() => tiny.exportHfLayout(TINY_BYTES, 'int4-sym-g32', 'awq', 'hqq', TEXT, {}))).toMatchObject({ kind: 'badInput', what: 'format' });
    expect(thrown(() => tiny.exportHfLayout(TINY_BYTES, 'int4-asym-g32', 'awq', 'awq', TEXT, { actOrder: true }))).toMatchObject({ kind: 'badInput', what: 'options' });
    expect(thrown(() => tiny.exportHfLayout(TINY_BYTES, 'int4-asym-g32', 'awq', 'awq', TEXT, { tokens: 256 }, () => false))).toMatchObject({ kind: 'cancelled' });
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

/** Each tensor's bytes by name, and the metadata (the header before the data) as `''`. */
function tensorsOf(file: Uint8Array, extension: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  if (extension === 'gguf') {
    const header = parseGgufHeader(file, file.length);
    if (header.status !== 'ok') throw new Error('the export did not parse as GGUF');
    out.set('', file.subarray(0, Math.min(...header.tensors.map((t) => t.offset))));
    for (const t of header.tensors) out.set(t.name, file.subarray(t.offset, t.offset + t.nBytes));
    return out;
  }
  const n = Number(Buffer.from(file).readBigUInt64LE(0));
  const json = JSON.parse(Buffer.from(file.subarray(8, 8 + n)).toString('utf8')) as Record<string, { data_offsets?: [number, number] }>;
  out.set('', file.subarray(0, 8 + n));
  for (const [name, t] of Object.entries(json)) if (t.data_offsets) out.set(name, file.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]));
  return out;
}

/** An F32 tensor of a GGUF file, read through the header parser. */
function f32Tensor(file: Uint8Array, name: string): Float32Array {
  const header = parseGgufHeader(file, file.length);
  if (header.status !== 'ok') throw new Error('the tiny model header did not parse');
  const t = header.tensors.find((r) => r.name === name)!;
  expect(t.type).toBe('F32');
  return new Float32Array(file.slice(t.offset, t.offset + t.nBytes).buffer);
}
