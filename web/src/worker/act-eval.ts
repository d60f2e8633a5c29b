// Compare rows with quantized activations (contract: `LabEval.run(text, {activations})`,
// crate/src/bindings/act_eval.rs, the code path of `quantlab eval --activations`): the
// calibration text such a row may need (static ranges, SmoothQuant: the CLI's default text,
// Moby-Dick chapters 4+ for the setup's tokens) and the saved row that answers a request; and
// the Outliers panel's view of one layer input before and after SmoothQuant (`smoothingStats`).
import { LabError } from '../errors';
import type { ActivationSetup, EvalKvCache, Methods, QuantManifest, SmoothingChannels } from '../messages';
import type { EvalActivations } from '../pkg/quantlab.js';
import { type Ctx } from './context';
import { calibText } from './methods';
import { cachedResult, getRuntime, wasmCall } from './runtime';

/** Calibration tokens of a setup that does not name them: enough for stable channel maxima, seconds of wasm time. */
export const DEFAULT_ACT_CALIB_TOKENS = 512;

/** What `LabEval.run` is given for `setup`, and what the row records of its calibration text. */
export interface ActRequest {
  opts: EvalActivations;
  calibration: string;
}

/**
 * `setup` as `LabEval.run`'s `activations`, with the calibration text. The core reads the text
 * only where the setup calibrates (static ranges, SmoothQuant) and refuses a setup that needs it
 * without it, so it is always passed; the row records where it came from.
 */
export async function actRequest(setup: ActivationSetup, dataUrl: string, ctx: Ctx): Promise<ActRequest> {
  const calibTokens = setup.calibTokens ?? DEFAULT_ACT_CALIB_TOKENS;
  const text = await calibText({ kind: 'default' }, calibTokens, dataUrl, ctx);
  const opts: EvalActivations = {
    quant: setup.quant,
    calibText: text.text,
    calibTokens,
    ...(setup.smoothquant !== undefined ? { smoothquant: setup.smoothquant } : {}),
    ...(setup.threshold !== undefined ? { threshold: setup.threshold } : {}),
  };
  return { opts, calibration: `${text.label}, ${calibTokens} tokens (read for static ranges and SmoothQuant)` };
}

/** The same setup: format, alpha, threshold and calibration tokens. */
function sameSetup(a: ActivationSetup, b: ActivationSetup): boolean {
  const tokens = (s: ActivationSetup) => s.calibTokens ?? DEFAULT_ACT_CALIB_TOKENS;
  return a.quant === b.quant && a.smoothquant === b.smoothquant && a.threshold === b.threshold && tokens(a) === tokens(b);
}

/** A saved row of `weights` (the weights-only row's label) with `setup`'s activations, for the same model and protocol. */
export function cachedActRow(saved: QuantManifest[], sha256: string, weights: string, setup: ActivationSetup, ctx: number, maxWindows: number | null, kvCache: EvalKvCache): QuantManifest | undefined {
  const same = saved.filter((m) => m.result.activations?.weights === weights && sameSetup(m.result.activations, setup));
  for (const m of same) {
    const hit = cachedResult([m], sha256, m.result.format, ctx, maxWindows, undefined, kvCache);
    if (hit) return hit;
  }
  return undefined;
}

/** The last smoothing run (every smoothed input), by model and settings. */
let smoothing: { key: string; owner: object; stats: ReturnType<import('../pkg/quantlab.js').LabModel['smoothingStats']>; text: string } | null = null;

/** Channel maxima of `tensor`'s input before and after SmoothQuant at `alpha`, and LLM.int8()'s outlier columns at `threshold`. */
export async function smoothingStats({ tensor, alpha, threshold, tokens, dataUrl }: Methods['smoothingStats']['args'], ctx: Ctx): Promise<SmoothingChannels> {
  const rt = await getRuntime(ctx);
  const key = `${alpha}|${threshold}|${tokens}`;
  if (smoothing?.key !== key || smoothing.owner !== rt) {
    const text = await calibText({ kind: 'default' }, tokens, dataUrl, ctx);
    ctx.progress('analyze', 0, 2 * tokens);
    const stats = wasmCall('smoothing statistics', () =>
      rt.base.smoothingStats(text.text, { alpha, threshold, tokens }, (done: number, total: number) => {
        ctx.progress('analyze', done, total);
        return !ctx.cancelled();
      }),
    );
    smoothing = { key, owner: rt, stats, text: text.label };
  }
  const found = smoothing.stats.inputs.find((i) => i.tensors.includes(tensor));
  if (!found) throw new LabError(`${tensor}'s input is not smoothed: SmoothQuant folds its factors into the attention and FFN norms, so only attn_q/k/v and ffn_gate/up inputs have them (nothing foldable precedes attn_output, ffn_down or the LM head)`);
  const s = smoothing.stats;
  return { tensor, tensors: found.tensors, tokens: s.tokens, text: smoothing.text, alpha: s.alpha, threshold: s.threshold, absmax: found.absmax, factors: found.factors, smoothedAbsmax: found.smoothedAbsmax, outliers: found.outliers };
}
