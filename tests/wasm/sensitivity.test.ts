// The sensitivity scan and the recipe builder of the lab (crate/src/bindings/sensitivity.rs), in
// Node, on a tiny random llama (tests/e2e/tiny-gguf.mjs), against the native CLI run on the same
// file and text: `quantlab sensitivity --json` gives the same ranked rows (names, tensors, bytes;
// KL and Δln ppl to float rounding: the CLI's kernels are x86's, these wasm's), the same
// recommendation and byte for byte the same recipe file; `quantlab quantize --recipe` writes
// the types and sizes `quantizeRecipe` reports. Progress, cancel and the typed errors too.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import init, { LabModel, type LabSensitivity, parseGgufHeader } from '../../web/src/pkg/quantlab.js';
import { tinyLlama } from '../e2e/tiny-gguf.mjs';
import { thrown } from './thrown';

const WASM = new URL('../../web/src/pkg/quantlab_bg.wasm', import.meta.url);
// The native binary `npm test` builds in its cargo suite, which runs before this one.
const NATIVE = resolve(process.env.CARGO_TARGET_DIR ?? resolve(__dirname, '../../target'), 'debug/quantlab');
const TINY_BYTES = new Uint8Array(tinyLlama({ dim: 64, ff: 128, layers: 2, ctx: 64 }));
/** Text the byte-level tiny tokenizer turns into one token per byte. */
const TEXT = 'Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse. '.repeat(8);
const SCAN = ['-f', 'q4_0', '--unit', 'layer', '--calib-tokens', '128', '--ctx', '64', '--threads', '1'];
/** The native CLI is a debug build (the quantlab crate at opt-level 0). */
const SLOW = 600_000;

interface CliRow { unit: string; tensors: string[]; bytes: number; bytes_high: number; kl: number; kl_stderr: number; delta_ln_ppl: number; delta_ln_ppl_stderr: number; top1: number }
interface CliReport {
  unit: string; ctx: number; windows: number; tokens_scored: number; uniform_bytes: number; elements: number;
  uniform: { kl: number }; units: CliRow[];
  recommendation: { budget_bytes: number; bytes: number; bits_per_weight: number; formats: { format: string; units: number; bytes: number }[]; choices: { unit: string; format: string; bytes: number; kl: number }[]; predicted_kl: number; recipe: unknown };
  other_scans: { format: string; uniform_bytes: number; units: CliRow[] }[];
}

let tiny: LabModel;
let dir: string;
let cli: CliReport;
let cliRecipe: string;
/** `-f q4_0,q5_0 --target-format q5_0`: the multiple-choice recipe. */
let cliMix: CliReport;
let cliMixRecipe: string;
beforeAll(async () => {
  if (!existsSync(WASM)) throw new Error('web/src/pkg is missing: run `npm test` (it builds the wasm core)');
  if (!existsSync(NATIVE)) throw new Error(`${NATIVE} is missing: build it with \`cargo build\` (npm test's cargo suite does)`);
  await init({ module_or_path: readFileSync(WASM) });
  tiny = LabModel.fromGguf(TINY_BYTES);
  dir = mkdtempSync(join(tmpdir(), 'ql-sensitivity-'));
  writeFileSync(join(dir, 'tiny.gguf'), TINY_BYTES);
  writeFileSync(join(dir, 'calib.txt'), TEXT);
  const args = ['sensitivity', join(dir, 'tiny.gguf'), ...SCAN, '--calib', join(dir, 'calib.txt'), '--json', '--target-bpw', '6.5', '--recipe-out', join(dir, 'recipe.json')];
  cli = JSON.parse(execFileSync(NATIVE, args, { encoding: 'utf8' })) as CliReport;
  cliRecipe = readFileSync(join(dir, 'recipe.json'), 'utf8');
  const mix = ['sensitivity', join(dir, 'tiny.gguf'), ...SCAN.slice(2), '-f', 'q4_0,q5_0', '--calib', join(dir, 'calib.txt'), '--json', '--target-format', 'q5_0', '--recipe-out', join(dir, 'mix.json')];
  cliMix = JSON.parse(execFileSync(NATIVE, mix, { encoding: 'utf8' })) as CliReport;
  cliMixRecipe = readFileSync(join(dir, 'mix.json'), 'utf8');
}, SLOW);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Equal to float rounding (x86 vs wasm kernels sum in another order). */
const close = (a: number, b: number) => Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b));

function expectRows(web: CliRow[], native: CliRow[]) {
  expect(web.map((r) => [r.unit, r.tensors, r.bytes, r.bytes_high])).toEqual(native.map((r) => [r.unit, r.tensors, r.bytes, r.bytes_high]));
  for (const [i, r] of web.entries()) {
    for (const key of ['kl', 'kl_stderr', 'delta_ln_ppl', 'delta_ln_ppl_stderr', 'top1'] as const) {
      expect(close(r[key], native[i][key]), `${r.unit} ${key}: ${r[key]} vs ${native[i][key]}`).toBe(true);
    }
  }
}

describe('sensitivity scan: the CLI code path in the browser core', () => {
  let scan: LabSensitivity;
  const progress: [number, number][] = [];
  beforeAll(() => {
    scan = tiny.sensitivity('q4_0', TEXT, { tokens: 128, ctx: 64, unit: 'layer' }, (done: number, total: number) => void progress.push([done, total]));
  });
  afterAll(() => scan.free());

  test('rows and the recipe equal `quantlab sensitivity --json --target-bpw --recipe-out`', () => {
    // 2 layers and the (tied) embedding.
    expect(cli.units).toHaveLength(3);
    const advice = scan.recommend({ highFormat: 'q8_0', bitsPerWeight: 6.5 });
    const report = scan.report();
    expect([report.unit, report.ctx, report.windows, report.tokens_scored, report.uniform_bytes, report.elements]).toEqual([cli.unit, cli.ctx, cli.windows, cli.tokens_scored, cli.uniform_bytes, cli.elements]);
    expect(close(report.uniform.kl, cli.uniform.kl)).toBe(true);
    expectRows(report.units as CliRow[], cli.units);
    const kls = report.units.map((r) => r.kl);
    expect(kls.every((k) => Number.isFinite(k) && k > 0)).toBe(true);
    expect(kls).toEqual([...kls].sort((a, b) => b - a));

    const rec = cli.recommendation;
    const picks = (choices: { unit: string; format: string }[]) => choices.map((c) => [c.unit, c.format]);
    expect([advice.budget_bytes, advice.bytes, picks(advice.choices), advice.formats]).toEqual([rec.budget_bytes, rec.bytes, picks(rec.choices), rec.formats]);
    expect(advice.choices.some((c) => c.format === 'q8_0')).toBe(true);
    expect(advice.bytes).toBeLessThanOrEqual(advice.budget_bytes);
    expect(close(advice.predicted_kl, rec.predicted_kl)).toBe(true);
    expect(advice.recipe).toEqual(rec.recipe);
    expect(advice.recipe_json).toBe(cliRecipe);
  });

  test('progress counts model-positions up to the total; a unit subset gives the same rows', () => {
    const total = progress[0][1];
    // 3 units and the uniform model, 2 windows of 63 positions each.
    expect(total).toBe(4 * 2 * 63);
    expect(progress.at(-1)).toEqual([total, total]);
    expect(progress.every(([d], i) => i === 0 || d >= progress[i - 1][0])).toBe(true);
    const part = tiny.sensitivity('q4_0', TEXT, { tokens: 128, ctx: 64, units: ['blk.1', 'token_embd'] });
    try {
      const rows = part.report().units;
      const full = scan.report().units;
      expect(rows.map((r) => r.unit).sort()).toEqual(['blk.1', 'token_embd']);
      for (const r of rows) expect({ ...r, bytes_high: 0 }).toEqual({ ...full.find((f) => f.unit === r.unit)!, bytes_high: 0 });
    } finally {
      part.free();
    }
  });

  test('the budget as bytes or as a format; a budget below the uniform model is refused', () => {
    const byBytes = scan.recommend({ budgetBytes: cli.recommendation.budget_bytes });
    expect(byBytes.recipe_json).toBe(cliRecipe);
    const asQ50 = scan.recommend({ targetFormat: 'q5_0' });
    expect(asQ50.bytes).toBeLessThanOrEqual(asQ50.budget_bytes);
    expect(asQ50.budget_bytes).toBeGreaterThan(cli.uniform_bytes);
    expect(thrown(() => scan.recommend({ budgetBytes: cli.uniform_bytes - 1 }))).toMatchObject({ kind: 'badInput', what: 'options' });
    expect(thrown(() => scan.recommend({ budgetBytes: 1e6, bitsPerWeight: 5 }))).toMatchObject({ kind: 'badInput', what: 'options' });
    expect(thrown(() => scan.recommend({ bitsPerWeight: -1 }))).toMatchObject({ kind: 'badInput', what: 'options' });
    expect(thrown(() => scan.recommend({ bitsPerWeight: 5, highFormat: 'q9_9' }))).toMatchObject({ kind: 'badInput', what: 'format' });
  });
});

describe('several formats: the multiple-choice recipe of `quantlab sensitivity -f q4_0,q5_0`', () => {
  test('both scans and the recipe equal the CLI\'s; the recipe is no worse than q5_0 everywhere by the scans', () => {
    const scan = tiny.sensitivity('q4_0,q5_0', TEXT, { tokens: 128, ctx: 64, unit: 'layer' });
    try {
      // After the recommendation, as the CLI reports it: bytes_high filled.
      const advice = scan.recommend({ targetFormat: 'q5_0' });
      const report = scan.report();
      expectRows(report.units as CliRow[], cliMix.units);
      expect(report.other_scans.map((o) => o.format)).toEqual(['q5_0']);
      expectRows(report.other_scans[0].units as CliRow[], cliMix.other_scans[0].units);
      expect(advice.recipe_json).toBe(cliMixRecipe);
      expect(advice.formats.map((f) => f.format)).toEqual(['q4_0', 'q5_0', 'q8_0']);
      const q5 = report.other_scans[0].units.reduce((a, u) => a + u.kl, 0);
      expect(advice.predicted_kl).toBeLessThanOrEqual(q5 + 1e-12);
      expect(advice.bytes).toBeLessThanOrEqual(report.other_scans[0].uniform_bytes);
    } finally {
      scan.free();
    }
  });
});

describe('quantizeRecipe: `quantlab quantize --recipe` in memory', () => {
  test('the recipe types and sizes equal the file the CLI writes', () => {
    const out = join(dir, 'recipe.gguf');
    execFileSync(NATIVE, ['quantize', join(dir, 'tiny.gguf'), '--recipe', join(dir, 'recipe.json'), '-o', out], { stdio: 'pipe' });
    const file = new Uint8Array(readFileSync(out));
    const header = parseGgufHeader(file, file.length);
    if (header.status !== 'ok') throw new Error('the CLI output did not parse');
    const seen: number[] = [];
    const q = tiny.quantizeRecipe(cliRecipe, 'llama.cpp', (done: number) => void seen.push(done));
    try {
      const report = q.quantReport()!;
      const recipe = JSON.parse(cliRecipe) as { tensors: { name: string; format: string }[] };
      expect(report.tensors).toHaveLength(recipe.tensors.length);
      for (const t of report.tensors) {
        const written = header.tensors.find((h) => h.name === t.name)!;
        expect([t.name, t.to.toLowerCase(), t.bytesAfter]).toEqual([t.name, written.type.toLowerCase(), written.nBytes]);
        expect(t.to.toLowerCase()).toBe(recipe.tensors.find((r) => r.name === t.name)!.format);
      }
      expect(new Set(report.tensors.map((t) => t.to.toLowerCase()))).toEqual(new Set(['q4_0', 'q8_0']));
      expect(seen.length).toBeGreaterThan(0);
    } finally {
      q.free();
    }
  });

  test('bad recipes are typed errors', () => {
    expect(thrown(() => tiny.quantizeRecipe('{"version": 2}', 'pure'))).toMatchObject({ kind: 'unsupported' });
    expect(thrown(() => tiny.quantizeRecipe('not json', 'pure'))).toMatchObject({ kind: 'badInput' });
    const unknown = JSON.stringify({ version: 1, default: { format: 'q4_0' }, tensors: [{ name: 'blk.9.attn_q.weight', format: 'q8_0' }] });
    expect(thrown(() => tiny.quantizeRecipe(unknown, 'pure'))).toMatchObject({ kind: 'badInput' });
    const gptq = JSON.stringify({ version: 1, default: { format: 'q4_0', method: 'gptq' } });
    expect(thrown(() => tiny.quantizeRecipe(gptq, 'pure'))).toMatchObject({ kind: 'unsupported' });
    expect(thrown(() => tiny.quantizeRecipe(cliRecipe, 'mixed'))).toMatchObject({ kind: 'badInput', what: 'options' });
  });
});

describe('scan errors and cancel', () => {
  test('cancel from the progress callback throws kind cancelled', () => {
    let calls = 0;
    const e = thrown(() => tiny.sensitivity('q4_0', TEXT, { tokens: 128, ctx: 64 }, () => ++calls < 5));
    expect(e).toMatchObject({ kind: 'cancelled' });
    expect(calls).toBe(5);
  });

  test('bad options, formats, units and texts are typed errors', () => {
    expect(thrown(() => tiny.sensitivity('q4_0', TEXT, { unit: 'row' as never }))).toMatchObject({ kind: 'badInput', what: 'options' });
    expect(thrown(() => tiny.sensitivity('q4_0', TEXT, { tokenz: 5 } as never))).toMatchObject({ kind: 'badInput', what: 'options' });
    expect(thrown(() => tiny.sensitivity('q4_0', TEXT, { units: ['blk.7'] }))).toMatchObject({ kind: 'badInput', what: 'options' });
    expect(thrown(() => tiny.sensitivity('q9_9', TEXT, undefined))).toMatchObject({ kind: 'badInput', what: 'format' });
    expect(thrown(() => tiny.sensitivity('q4_0', 'x', undefined))).toMatchObject({ kind: 'badInput' });
  });
});
