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

export interface Overlay {
  /** Representable values of the selected group. */
  levels: number[];
  label: string;
}

export function renderHistogram(container: HTMLElement, h: HistogramResult, options: { log: boolean; width: number; overlay?: Overlay }): void {
  const bins = toBins(h);
  const levels = options.overlay?.levels ?? [];
  // Show the levels in full even where they reach past the data (that is the wasted range).
  const lo = Math.min(h.lo, ...levels);
  const hi = Math.max(h.hi, ...levels);
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
      Plot.ruleX(levels, { stroke: 'darkorange', strokeWidth: levels.length > 64 ? 0.5 : 1.5, strokeOpacity: levels.length > 64 ? 0.4 : 0.9, title: (v: number) => `level ${v.toPrecision(5)}` }),
      Plot.ruleX(clip, { stroke: 'crimson', strokeWidth: 2, strokeDasharray: '6 4' }),
      options.log ? null : Plot.ruleY([0]),
    ],
  });
  chart.setAttribute('role', 'img');
  const overlayText = options.overlay ? `, with ${levels.length} ${options.overlay.label} levels from ${clip[0]?.toPrecision(4)} to ${clip[1]?.toPrecision(4)}` : '';
  chart.setAttribute('aria-label', `Histogram of ${h.tensor}: ${formatCount(h.total)} values from ${h.lo.toPrecision(4)} to ${h.hi.toPrecision(4)}${overlayText}`);
  container.replaceChildren(chart);
  container.dataset.total = String(h.counts.reduce((a, b) => a + b, 0));
  container.dataset.bins = String(h.counts.length);
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
