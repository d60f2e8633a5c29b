// The weight histogram, drawn with Observable Plot from the bins the wasm core computed.
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

export function renderHistogram(container: HTMLElement, h: HistogramResult, options: { log: boolean; width: number }): void {
  const bins = toBins(h);
  const chart = Plot.plot({
    width: Math.max(320, options.width),
    height: 320,
    marginLeft: 60,
    x: { label: 'weight value', domain: [h.lo, h.hi] },
    y: options.log ? { type: 'log', label: 'count (log)', grid: true } : { label: 'count', grid: true },
    marks: [
      Plot.rectY(
        // log scale cannot show 0: empty bins are dropped there, and only there.
        options.log ? bins.filter((b) => b.count > 0) : bins,
        { x1: 'x0', x2: 'x1', y: 'count', fill: 'steelblue', inset: 0, title: (b: Bin) => `[${b.x0.toPrecision(4)}, ${b.x1.toPrecision(4)}): ${formatCount(b.count)}` },
      ),
      options.log ? null : Plot.ruleY([0]),
    ],
  });
  chart.setAttribute('role', 'img');
  chart.setAttribute('aria-label', `Histogram of ${h.tensor}: ${formatCount(h.total)} values from ${h.lo.toPrecision(4)} to ${h.hi.toPrecision(4)}`);
  container.replaceChildren(chart);
  container.dataset.total = String(h.counts.reduce((a, b) => a + b, 0));
  container.dataset.bins = String(h.counts.length);
}
