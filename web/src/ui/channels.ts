// Panel 4's charts: one bar per channel (absmax or RMS), outliers in red, the k × median line.
import * as Plot from '@observablehq/plot';
import { median } from '../analysis';

export interface ChannelChartInput {
  absmax: number[];
  rms: number[];
  outliers: number[];
  k: number;
  metric: 'absmax' | 'rms';
  what: string;
}

export function renderChannels(container: HTMLElement, input: ChannelChartInput, width: number): void {
  const flagged = new Set(input.outliers);
  const values = input.metric === 'absmax' ? input.absmax : input.rms;
  const data = values.map((v, i) => ({ i, v, outlier: flagged.has(i) }));
  const threshold = input.k * median(input.absmax);
  const chart = Plot.plot({
    width: Math.max(300, width),
    height: 220,
    marginLeft: 60,
    x: { label: `${input.what} channel`, domain: [-0.5, values.length - 0.5] },
    y: { label: input.metric, grid: true },
    color: { domain: [false, true], range: ['#7a8aa6', 'crimson'] },
    marks: [
      Plot.rectY(data, { x1: (d) => d.i - 0.5, x2: (d) => d.i + 0.5, y: 'v', fill: 'outlier', title: (d) => `${input.what} ${d.i}: ${input.metric} ${d.v.toPrecision(4)}${d.outlier ? ' (outlier)' : ''}` }),
      input.metric === 'absmax' ? Plot.ruleY([threshold], { stroke: 'crimson', strokeDasharray: '6 4' }) : null,
      Plot.ruleY([0]),
    ],
  });
  chart.setAttribute('role', 'img');
  chart.setAttribute('aria-label', `${input.metric} of ${values.length} ${input.what} channels; ${input.outliers.length} outliers above ${threshold.toPrecision(4)} (k=${input.k} × median absmax)`);
  container.replaceChildren(chart);
  container.dataset.outliers = JSON.stringify(input.outliers);
  container.dataset.threshold = String(threshold);
}
