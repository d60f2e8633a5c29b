// Activation quantization in the wasm core (crate/src/bindings/act_eval.rs, smoothing.rs), in
// Node, on the default model: `LabEval.run(text, {activations})` gives the rows `quantlab eval
// --activations … --json` prints for the same inputs (the CLI is the reference: the page must not
// disagree with it): W8A8 per-token beside W8 weights-only, W8A8 static (min-max ranges) after
// SmoothQuant α=0.5 from the smoothed base, and LLM.int8() at threshold 4 on the base. The eval
// text is the CLI's default (chapters 1–3, one window of 32) and the calibration text its default
// too (Moby-Dick chapters 4+ for 64 tokens, read the way the lab reads them). The protocol is
// short (one window of 32, 64 calibration tokens) because the reference is the debug CLI build.
//
// Tolerances. The rows with f32 activations (the base, the weights-only rows) agree to 1e-6
// relative in ppl and mean NLL and 1e-4 in KL, top-1 exactly, as tests/wasm/model.test.ts
// measured: f32 exp/powf/sin/cos come from glibc natively and from Rust's libm port in wasm32 and
// differ in the last ulp now and then. Rounding activations to INT8 is discontinuous: those
// last-ulp differences move a few values across a rounding boundary, each by a whole step of
// max|x|/127, so the rows with quantized activations are two draws of the same quantization
// noise, not the same numbers (measured on one window of 64: ppl 0.4 % and KL 10 % apart, top-1
// one token). They are held to the CLI's paired standard errors instead: Δppl within 2 s.e. of
// the CLI's Δppl, KL within 2 s.e. of its KL, top-1 within 2 s.e.; and they must differ from the
// weights-only row by more than that (the activations were quantized at all).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import init, { calibrationChapters, type EvalResult, evalText, LabEval, LabModel } from '../../web/src/pkg/quantlab.js';
import { thrown } from './thrown';

const MODEL = resolve(__dirname, '../../models/SmolLM2-135M-Instruct.Q4_1.gguf');
const WASM = new URL('../../web/src/pkg/quantlab_bg.wasm', import.meta.url);
const DATA = resolve(__dirname, '../../data/moby-dick');
const SLOW = 600_000;
const CALIB_TOKENS = 64;
const PROTOCOL = ['--ctx', '32', '--max-windows', '1', '--threads', '1', '--device', 'cpu', '--json'];

const chapter = (n: number) => (JSON.parse(readFileSync(resolve(DATA, `chapter_${n}.json`), 'utf8')) as { text: string }).text;

let base: LabModel;
let text: string;
let calibText: string;
beforeAll(async () => {
  if (!existsSync(WASM)) throw new Error('web/src/pkg is missing: run `npm test` (it builds the wasm core)');
  if (!existsSync(MODEL)) throw new Error('models/ is missing the default model: run `npm test` (setup downloads it)');
  await init({ module_or_path: readFileSync(WASM) });
  base = LabModel.fromGguf(new Uint8Array(readFileSync(MODEL)));
  text = evalText([1, 2, 3].map(chapter));
  // The CLI's default calibration text: chapters 4+ until they hold enough UTF-8 bytes.
  const plan = calibrationChapters(CALIB_TOKENS);
  const chapters: string[] = [];
  for (let n = plan.first, bytes = 0; n <= plan.last && bytes < plan.charsWanted; n++) {
    chapters.push(chapter(n));
    bytes += Buffer.byteLength(chapters[chapters.length - 1]!);
  }
  calibText = evalText(chapters);
}, SLOW);

interface CliRow {
  format: string;
  activations: string;
  ppl: number;
  mean_nll: number;
  kl_mean: number | null;
  top1_agreement: number | null;
  paired?: { delta_ppl: number; delta_ppl_stderr: number; kl_mean: number; kl_stderr: number; top1: number; top1_stderr: number };
}

function cli(args: string[]): CliRow[] {
  const native = resolve(process.env.CARGO_TARGET_DIR ?? resolve(__dirname, '../../target'), 'debug/quantlab');
  if (!existsSync(native)) throw new Error(`${native} is missing: build it with \`cargo build\` (npm test's cargo suite does)`);
  const out = execFileSync(native, ['eval', MODEL, ...args, '--calib-tokens', String(CALIB_TOKENS), ...PROTOCOL], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return (JSON.parse(out) as { rows: CliRow[] }).rows;
}

const within = (got: number, want: number, rel: number) => Math.abs(got - want) <= rel * Math.abs(want);

/** Every wasm row equals the CLI's row in the same place (rows with quantized activations: within its standard errors). */
function expectRows(r: EvalResult, rows: CliRow[]): void {
  expect(r.results.length).toBe(rows.length);
  r.results.forEach((got, i) => {
    const want = rows[i]!;
    const what = `${want.format}`;
    expect(got.activations ?? 'f32', what).toBe(want.activations);
    if (want.activations !== 'f32') {
      const p = want.paired!;
      const q = got.paired!;
      expect(Math.abs(q.deltaPpl - p.delta_ppl), `${what} Δppl: wasm ${q.deltaPpl} vs native ${p.delta_ppl} ± ${p.delta_ppl_stderr}`).toBeLessThanOrEqual(2 * p.delta_ppl_stderr);
      expect(Math.abs(q.klMean - p.kl_mean), `${what} KL: wasm ${q.klMean} vs native ${p.kl_mean} ± ${p.kl_stderr}`).toBeLessThanOrEqual(2 * p.kl_stderr);
      expect(Math.abs(q.top1 - p.top1), `${what} top-1`).toBeLessThanOrEqual(2 * p.top1_stderr);
      // Quantized at all: far more KL than the same model with f32 activations.
      const weightsOnly = rows.find((w) => w.activations === 'f32' && `${w.format}, ${r.actLabel}` === want.format) ?? rows[0]!;
      expect(q.klMean - (weightsOnly.kl_mean ?? 0), what).toBeGreaterThan(2 * p.kl_stderr);
      return;
    }
    expect(within(got.ppl, want.ppl, 1e-6), `${what} ppl: wasm ${got.ppl} vs native ${want.ppl}`).toBe(true);
    expect(within(got.meanNll, want.mean_nll, 1e-6), `${what} mean NLL`).toBe(true);
    if (i === 0) return;
    expect(within(got.klMean ?? NaN, want.kl_mean ?? NaN, 1e-4), `${what} KL: wasm ${got.klMean} vs native ${want.kl_mean}`).toBe(true);
    expect(got.top1Agreement, `${what} top-1`).toBe(want.top1_agreement);
  });
}

function run(models: LabModel[], activations: Parameters<LabEval['run']>[1]): EvalResult {
  const ev = new LabEval(base);
  try {
    for (const m of models) ev.add(m);
    return ev.run(text, activations);
  } finally {
    ev.free();
  }
}

describe('LabEval.run with quantized activations: the rows of `quantlab eval --activations`', () => {
  test('W8A8 per-token beside W8, and SmoothQuant W8A8 static from the smoothed base', () => {
    const w8 = base.quantize('int8-sym-channel');
    try {
      const token = run([w8], { ctx: 32, maxWindows: 1, activations: { quant: 'int8-token' } });
      const tokenRows = cli(['-f', 'int8-sym-channel', '--pure', '--activations', 'int8-token']);
      expect(tokenRows.map((r) => r.format)).toEqual(['base (Q4_1 checkpoint)', 'int8-sym-channel', `int8-sym-channel, ${token.actLabel}`]);
      expectRows(token, tokenRows);

      const smooth = run([w8], { ctx: 32, maxWindows: 1, activations: { quant: 'int8-static', smoothquant: 0.5, calibText, calibTokens: CALIB_TOKENS } });
      const smoothRows = cli(['-f', 'int8-sym-channel', '--pure', '--activations', 'int8-static', '--smoothquant', '0.5']);
      expect(smooth.actLabel).toBe('act int8-static (minmax), SmoothQuant α=0.5');
      expect(smoothRows[2]!.format).toBe(`int8-sym-channel, ${smooth.actLabel}`);
      expectRows(smooth, smoothRows);
    } finally {
      w8.free();
    }
  }, SLOW);

  test('LLM.int8() at a threshold on the base', () => {
    const r = run([], { ctx: 32, maxWindows: 1, activations: { quant: 'llm-int8', threshold: 4 } });
    const rows = cli(['--activations', 'llm-int8', '--llm-int8-threshold', '4']);
    expect(rows[1]!.format).toBe(`base (Q4_1 checkpoint), ${r.actLabel}`);
    expectRows(r, rows);
  }, SLOW);

  test('bad activation setups are refused with their kind before any work', () => {
    const opts = (activations: object) => ({ ctx: 32, maxWindows: 1, activations }) as Parameters<LabEval['run']>[1];
    const ev = new LabEval(base);
    try {
      expect(thrown(() => ev.run(text, opts({ quant: 'int8-token', smoothquant: 1.5, calibText })))).toMatchObject({ kind: 'badInput', what: 'options' });
      expect(() => ev.run(text, opts({ quant: 'int8-token', range: 'kl' }))).toThrow(/range rule kl applies to static scales \(int8-static\)/);
      expect(() => ev.run(text, opts({ quant: 'int8-token', threshold: 4 }))).toThrow(/LLM.int8\(\) threshold applies to llm-int8 only/);
      expect(() => ev.run(text, opts({ quant: 'int8-static' }))).toThrow(/calibText is missing/);
      expect(() => ev.run(text, opts({ quant: 'int9-token' }))).toThrow(/unknown activation format 'int9-token'/);
      expect(() => ev.run(text, opts({ quant: 'int8-token', bogus: 1 }))).toThrow(/invalid activations options: unknown option 'bogus'/);
    } finally {
      ev.free();
    }
  });
});

describe('smoothingStats and kvCacheBytes', () => {
  test('maxima after SmoothQuant are max|X_j| / s_j, outlier columns those reaching the threshold', () => {
    const s = base.smoothingStats(calibText, { alpha: 0.5, tokens: CALIB_TOKENS, threshold: 4 });
    expect(s.tokens).toBe(CALIB_TOKENS);
    expect(s.inputs.length).toBe(2 * base.info().config.nLayers);
    const q = s.inputs.find((i) => i.tensors.includes('blk.0.attn_q.weight'))!;
    expect(q.tensors).toEqual(['blk.0.attn_q.weight', 'blk.0.attn_k.weight', 'blk.0.attn_v.weight']);
    for (const [i, input] of s.inputs.entries()) {
      // Measured again on the smoothed model: the fold divides the norm by s_j. Layer 0's attention
      // input differs by f32 rounding only; later inputs read a residual stream the smoothed
      // products (x / s)(s W) computed with other roundings.
      const rel = i === 0 ? 1e-6 : 1e-4;
      input.smoothedAbsmax.forEach((m, j) => expect(Math.abs(m - input.absmax[j]! / input.factors[j]!)).toBeLessThanOrEqual(rel * m + 1e-7));
      expect(input.outliers).toEqual(input.absmax.flatMap((m, j) => (m >= 4 ? [j] : [])));
    }
    // Smoothing flattens the channels: the largest maximum over the median drops.
    const spread = (v: number[]) => Math.max(...v) / [...v].sort((a, b) => a - b)[v.length >> 1]!;
    expect(spread(q.smoothedAbsmax)).toBeLessThan(spread(q.absmax));
  }, SLOW);

  test('KV cache bytes at a context: llama.cpp reports 45.00 MiB for an f16 cache at n_ctx 2048', () => {
    expect(base.kvCacheBytes('f16', 2048)).toBe(45 * 2 ** 20);
    expect(base.kvCacheBytes('f32', 2048)).toBe(90 * 2 ** 20);
    // int8: 64 codes + one f32 scale per (position, KV head) of 64 values.
    expect(base.kvCacheBytes('int8', 1)).toBe(2 * 30 * 3 * (64 + 4));
    expect(thrown(() => base.kvCacheBytes('q4_0' as 'f32', 1))).toMatchObject({ kind: 'badInput' });
  });
});
