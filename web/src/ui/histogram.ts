// The weight histogram with the chosen format's levels over it, and the level occupancy chart,
// drawn with Observable Plot from numbers the wasm core computed.
import * as Plot from '@observablehq/plot';
import { formatCount } from '../format';
import type { HistogramResult } from '../messages';

export interface Bin {
  x0: number;
  x1: number;
  count: number;
}

export function toBins(h: HistogramResult): Bin[] {
  const width = (h.hi - h.lo) / h.counts.length;
  return h.counts.map((count, i) => ({ x0: h.lo + i * width, x1: h.lo + (i + 1) * width, count }));
}

/** What the x-axis spans: the bulk of the values, the selected group's levels, or everything. */
export type RangeMode = 'robust' | 'group' | 'full';

/** The worker bins this many times finer than shown, so a zoomed range still has every bin it shows. */
export const FINE_PER_BIN = 32;
/** The robust range: from this quantile to 1 − it (the 0.1st to 99.9th percentile). */
export const ROBUST_QUANTILE = 0.001;

/**
 * Fine bins [a, b) that hold the sorted values of rank ⌊q(n−1)⌋ to ⌈(1−q)(n−1)⌉: the q and
 * 1 − q quantiles, rounded outwards to bin edges.
 */
export function quantileBins(counts: number[], q: number): [number, number] {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return [0, counts.length];
  const lowRank = Math.floor(q * (total - 1));
  const highRank = Math.ceil((1 - q) * (total - 1));
  let a = 0;
  let b = counts.length;
  let seen = 0;
  let foundLow = false;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i]!;
    if (!foundLow && seen > lowRank) {
      a = i;
      foundLow = true;
    }
    if (seen > highRank) {
      b = i + 1;
      break;
    }
  }
  return [a, b];
}

/** The bins shown for a range: whole groups of `FINE_PER_BIN`-fold finer bins, so every count is exact. */
export interface ShownRange {
  bins: Bin[];
  /** The x-axis domain: the bins' outer edges. */
  domain: [number, number];
  /** Values of the histogram outside the shown bins. */
  outside: number;
}

/**
 * Regroups fine bins [a, b) into at most `shown` bins of whole fine bins (widening b, or a at the
 * end, to a whole number of groups) and counts what falls outside.
 */
export function regroup(h: HistogramResult, a: number, b: number, shown: number): ShownRange {
  const n = h.counts.length;
  const fine = (h.hi - h.lo) / n;
  const per = Math.max(1, Math.ceil((b - a) / shown));
  const groups = Math.ceil((b - a) / per);
  let start = a;
  if (start + groups * per > n) start = Math.max(0, n - groups * per);
  const end = Math.min(n, start + groups * per);
  const bins: Bin[] = [];
  for (let g = start; g < end; g += per) {
    let count = 0;
    for (let i = g; i < Math.min(end, g + per); i++) count += h.counts[i]!;
    bins.push({ x0: h.lo + g * fine, x1: h.lo + Math.min(end, g + per) * fine, count });
  }
  const all = h.counts.reduce((x, y) => x + y, 0);
  const inside = bins.reduce((x, bin) => x + bin.count, 0);
  return { bins, domain: [bins[0]?.x0 ?? h.lo, bins[bins.length - 1]?.x1 ?? h.hi], outside: all - inside };
}

/** The bins and domain of `mode` for histogram `h` (binned `FINE_PER_BIN` times finer than `shown`). */
export function rangeOf(h: HistogramResult, mode: RangeMode, levels: number[], shown: number): ShownRange {
  const n = h.counts.length;
  if (mode === 'group' && levels.length > 1) {
    const span = levels[levels.length - 1]! - levels[0]!;
    const fine = (h.hi - h.lo) / n;
    const lo = levels[0]! - 0.05 * span;
    const hi = levels[levels.length - 1]! + 0.05 * span;
    const a = Math.min(n - 1, Math.max(0, Math.floor((lo - h.lo) / fine)));
    const b = Math.max(a + 1, Math.min(n, Math.ceil((hi - h.lo) / fine)));
    return regroup(h, a, b, shown);
  }
  if (mode === 'full') return regroup(h, 0, n, shown);
  const [a, b] = quantileBins(h.counts, ROBUST_QUANTILE);
  return regroup(h, a, b, shown);
}

export interface Overlay {
  /** Representable values of the selected group. */
  levels: number[];
  label: string;
}

export function renderHistogram(container: HTMLElement, h: HistogramResult, options: { log: boolean; width: number; overlay?: Overlay; range: RangeMode; shown: ShownRange }): void {
  const { bins, domain } = options.shown;
  const levels = options.overlay?.levels ?? [];
  // The full range shows the levels in full even where they reach past the data (that is the
  // wasted range); a zoomed range clips them at its edges.
  const [lo, hi] = options.range === 'full' ? [Math.min(domain[0], ...levels), Math.max(domain[1], ...levels)] : domain;
  const clip = levels.length ? [levels[0]!, levels[levels.length - 1]!] : [];
  const chart = Plot.plot({
    width: Math.max(300, options.width),
    height: 320,
    marginLeft: 60,
    x: { label: 'weight value', domain: [lo, hi] },
    y: options.log ? { type: 'log', label: 'count (log)', grid: true } : { label: 'count', grid: true },
    marks: [
      Plot.rectY(
        // log scale cannot show 0: empty bins are dropped there, and only there.
        options.log ? bins.filter((b) => b.count > 0) : bins,
        { x1: 'x0', x2: 'x1', y: 'count', fill: 'steelblue', inset: 0, title: (b: Bin) => `[${b.x0.toPrecision(4)}, ${b.x1.toPrecision(4)}): ${formatCount(b.count)}` },
      ),
      // 256-level formats would paint the chart solid: thin, translucent lines.
      Plot.ruleX(levels, { clip: true, stroke: 'darkorange', strokeWidth: levels.length > 64 ? 0.5 : 1.5, strokeOpacity: levels.length > 64 ? 0.4 : 0.9, title: (v: number) => `level ${v.toPrecision(5)}` }),
      Plot.ruleX(clip, { clip: true, stroke: 'crimson', strokeWidth: 2, strokeDasharray: '6 4' }),
      options.log ? null : Plot.ruleY([0]),
    ],
  });
  chart.setAttribute('role', 'img');
  const overlayText = options.overlay ? `, with ${levels.length} ${options.overlay.label} levels from ${clip[0]?.toPrecision(4)} to ${clip[1]?.toPrecision(4)}` : '';
  chart.setAttribute('aria-label', `Histogram of ${h.tensor}: ${formatCount(h.total)} values from ${h.lo.toPrecision(4)} to ${h.hi.toPrecision(4)}${overlayText}`);
  container.replaceChildren(chart);
  // Every value is either in a bin shown or counted outside the shown range.
  container.dataset.total = String(bins.reduce((a, b) => a + b.count, 0) + options.shown.outside);
  container.dataset.outside = String(options.shown.outside);
  container.dataset.bins = String(bins.length);
  container.dataset.range = options.range;
  container.dataset.domain = JSON.stringify([lo, hi]);
  container.dataset.levels = JSON.stringify(levels);
}

/** Bars of how many weights use each code. */
export function renderOccupancy(container: HTMLElement, occupancy: number[], options: { width: number; format: string }): void {
  const data = occupancy.map((count, code) => ({ code, count }));
  const used = data.filter((d) => d.count > 0).length;
  const chart = Plot.plot({
    width: Math.max(240, options.width),
    height: 320,
    marginLeft: 60,
    x: { label: 'code', ticks: Math.min(16, occupancy.length) },
    y: { label: 'weights', grid: true },
    marks: [Plot.rectY(data, { x1: (d) => d.code - 0.5, x2: (d) => d.code + 0.5, y: 'count', fill: 'darkorange', title: (d) => `code ${d.code}: ${formatCount(d.count)}` }), Plot.ruleY([0])],
  });
  chart.setAttribute('role', 'img');
  chart.setAttribute('aria-label', `Level occupancy under ${options.format}: ${used} of ${occupancy.length} codes used`);
  container.replaceChildren(chart);
  container.dataset.used = String(used);
  container.dataset.codes = String(occupancy.length);
  container.dataset.total = String(occupancy.reduce((a, b) => a + b, 0));
}
