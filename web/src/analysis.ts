// Small pure computations on numbers the wasm core returned: histograms of a slice, codebook
// errors, normal quantiles, the Pareto frontier. Unit-tested in tests/web/analysis.test.ts.
import type { HistogramResult } from './messages';

/** Histogram of `values` over their own [min, max] in `bins` equal bins (NaN/Inf counted apart). */
export function histogramOf(tensor: string, values: ArrayLike<number>, bins: number): HistogramResult {
  let min = Infinity;
  let max = -Infinity;
  let nonFinite = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) nonFinite++;
    else {
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  const finite = values.length - nonFinite;
  const counts = new Array<number>(bins).fill(0);
  if (finite === 0) return { tensor, lo: 0, hi: 0, counts, total: 0, outside: 0, nonFinite, min: null, max: null };
  // A constant slice still gets a visible bin around its value.
  const [lo, hi] = min === max ? [min - 0.5, max + 0.5] : [min, max];
  const width = (hi - lo) / bins;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) continue;
    counts[Math.min(bins - 1, Math.floor((v - lo) / width))]!++;
  }
  return { tensor, lo, hi, counts, total: finite, outside: 0, nonFinite, min, max };
}

/** Sorted, distinct copy (some families list their levels in code order, with ±0 twice). */
export function sortedLevels(levels: number[]): number[] {
  const sorted = [...levels].filter(Number.isFinite).sort((a, b) => a - b);
  return sorted.filter((v, i) => i === 0 || v !== sorted[i - 1]);
}

/** The median (mean of the two middle values for an even count), as the outlier rule uses it. */
export function median(values: ArrayLike<number>): number {
  const v = Array.from(values).sort((a, b) => a - b);
  if (v.length === 0) return 0;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/** Φ⁻¹(p), the standard normal quantile (Acklam's rational approximation, |rel. error| < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`normalQuantile needs 0 < p < 1, got ${p}`);
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  if (p > 1 - low) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}

/** 16 equal-probability quantiles of N(0,1), Φ⁻¹((i + ½)/16), scaled so the outermost is ±1. */
export function normalQuantileLevels(n = 16): number[] {
  const q = Array.from({ length: n }, (_, i) => normalQuantile((i + 0.5) / n));
  const m = Math.max(...q.map(Math.abs));
  return q.map((v) => v / m);
}

/** Index of the level nearest to x in ascending `levels`. */
function nearest(levels: number[], x: number): number {
  let lo = 0;
  let hi = levels.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (levels[mid]! <= x) lo = mid;
    else hi = mid;
  }
  return Math.abs(x - levels[lo]!) <= Math.abs(levels[hi]! - x) ? lo : hi;
}

/**
 * Mean squared error of blockwise absmax quantization with a codebook in [-1, 1]: each block of
 * `block` values is divided by its absmax, rounded to the nearest level, and scaled back — the
 * NF4 recipe with any codebook.
 */
export function codebookMse(values: ArrayLike<number>, block: number, levels: number[]): number {
  const sorted = sortedLevels(levels);
  let sum = 0;
  for (let start = 0; start < values.length; start += block) {
    const end = Math.min(values.length, start + block);
    let absmax = 0;
    for (let i = start; i < end; i++) absmax = Math.max(absmax, Math.abs(values[i]!));
    if (absmax === 0) continue;
    for (let i = start; i < end; i++) {
      const x = values[i]!;
      const e = x - absmax * sorted[nearest(sorted, x / absmax)]!;
      sum += e * e;
    }
  }
  return values.length ? sum / values.length : 0;
}

export interface FrontierPoint {
  bitsPerWeight: number;
  /** Lower is better (perplexity, KL). */
  loss: number;
}

/** The points no other point beats on both size and loss, ordered by bits per weight. */
export function paretoFrontier<T extends FrontierPoint>(points: T[]): T[] {
  const sorted = [...points].filter((p) => Number.isFinite(p.loss)).sort((a, b) => a.bitsPerWeight - b.bitsPerWeight || a.loss - b.loss);
  const frontier: T[] = [];
  for (const p of sorted) {
    if (frontier.length === 0 || p.loss < frontier[frontier.length - 1]!.loss) frontier.push(p);
  }
  return frontier;
}

/** Index of the first differing token id; -1 when identical; the shorter length when one is a prefix. */
export function firstDivergence(a: number[], b: number[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}
