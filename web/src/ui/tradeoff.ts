// The quality-vs-size chart of Compare: one dot per measured format, the Pareto frontier, and
// each dot's canonical format name placed where it collides with nothing (ui/labels.ts). The
// domains are padded so no dot sits on the plot's edge and every label fits inside the plot.
import * as Plot from '@observablehq/plot';
import { paretoFrontier } from '../analysis';
import { type Box, placeLabels } from './labels';

export interface TradeoffPoint {
  label: string;
  bitsPerWeight: number;
  loss: number;
  /** A mixed-precision recipe (drawn as a diamond) rather than one format or preset. */
  kind?: 'recipe';
}

const SVG = 'http://www.w3.org/2000/svg';
const DOT_RADIUS = 5;
const FONT_SIZE = 11;

/** [lo, hi] widened by `fraction` of its span on each side (a single value gets a unit span). */
export function padLinear(lo: number, hi: number, fraction: number, minimum = 0): [number, number] {
  const span = hi - lo || Math.abs(hi) * 0.2 || 1;
  const pad = Math.max(fraction * span, minimum);
  return [lo - pad, hi + pad];
}

/** The same on a log scale: the padding is a factor. */
export function padLog(lo: number, hi: number, fraction: number): [number, number] {
  const span = Math.log(hi / lo) || Math.log(2);
  const factor = Math.exp(fraction * span);
  return [lo / factor, hi * factor];
}

/** Draws the chart into `host`; returns the frontier's labels. `log` picks a log quality axis. */
export function renderTradeoff(host: HTMLElement, points: TradeoffPoint[], options: { yLabel: string; log: boolean; width: number }): string[] {
  const finite = points.filter((p) => Number.isFinite(p.loss) && (!options.log || p.loss > 0));
  const frontier = paretoFrontier(finite);
  const xs = finite.map((p) => p.bitsPerWeight);
  const ys = finite.map((p) => p.loss);
  const yDomain = options.log ? padLog(Math.min(...ys), Math.max(...ys), 0.15) : padLinear(Math.min(...ys), Math.max(...ys), 0.15);
  const chart = Plot.plot({
    width: Math.max(300, options.width),
    height: 340,
    marginTop: 30,
    marginLeft: 64,
    marginRight: 24,
    marginBottom: 40,
    x: { label: 'bits per weight', grid: true, domain: padLinear(Math.min(...xs), Math.max(...xs), 0.08, 0.25) },
    y: { label: options.yLabel, grid: true, type: options.log ? 'log' : 'linear', domain: yDomain },
    marks: [
      Plot.frame({ stroke: '#d5dae3' }),
      Plot.line(frontier, { x: 'bitsPerWeight', y: 'loss', stroke: 'darkorange', strokeWidth: 2 }),
      // Formats and presets as circles, recipes as diamonds (a symbol channel would draw every dot as a path).
      ...(['circle', 'diamond'] as const).map((symbol) =>
        Plot.dot(
          finite.filter((d) => (d.kind === 'recipe') === (symbol === 'diamond')),
          { x: 'bitsPerWeight', y: 'loss', r: DOT_RADIUS, symbol, fill: (d: TradeoffPoint) => (frontier.includes(d) ? 'darkorange' : 'steelblue'), title: (d: TradeoffPoint) => `${d.kind === 'recipe' ? 'recipe ' : ''}${d.label}: ${d.bitsPerWeight.toFixed(3)} bits/weight, ${d.loss.toPrecision(5)}` },
        ),
      ),
    ],
  });
  chart.setAttribute('role', 'img');
  chart.setAttribute('aria-label', `${options.yLabel} against bits per weight for ${finite.length} points; Pareto frontier: ${frontier.map((p) => p.label).join(', ')}`);
  host.replaceChildren(chart);
  labelPoints(chart as SVGSVGElement & Plot.Plot, finite);
  return frontier.map((p) => p.label);
}

/** Adds the labels once the chart is in the page (text is measured there). */
function labelPoints(chart: SVGSVGElement & Plot.Plot, points: TradeoffPoint[]): void {
  const x = chart.scale('x')!;
  const y = chart.scale('y')!;
  const [x0, x1] = x.range as [number, number];
  const [y1, y0] = y.range as [number, number];
  const area: Box = { x: Math.min(x0, x1), y: Math.min(y0, y1), width: Math.abs(x1 - x0), height: Math.abs(y1 - y0) };
  // Axis titles, in the chart's own units (its width may be scaled down to fit the page).
  const frame = chart.getBoundingClientRect();
  const scale = frame.width > 0 ? chart.viewBox.baseVal.width / frame.width || 1 : 1;
  const obstacles: Box[] = [...chart.querySelectorAll('[aria-label="x-axis label"] text, [aria-label="y-axis label"] text')].map((t) => {
    const r = t.getBoundingClientRect();
    return { x: (r.left - frame.left) * scale, y: (r.top - frame.top) * scale, width: r.width * scale, height: r.height * scale };
  });
  const group = document.createElementNS(SVG, 'g');
  group.setAttribute('aria-label', 'point labels');
  group.setAttribute('font-size', String(FONT_SIZE));
  // Plot centres text on its root; these labels are placed by their left edge.
  group.setAttribute('text-anchor', 'start');
  chart.append(group);
  const texts = points.map((p) => {
    const t = document.createElementNS(SVG, 'text');
    t.textContent = p.label;
    t.setAttribute('class', 'point-label');
    t.dataset.label = p.label;
    group.append(t);
    return t;
  });
  // A chart drawn while its panel is hidden has no text metrics: estimate them.
  const requests = points.map((p, i) => ({ x: x.apply(p.bitsPerWeight) as number, y: y.apply(p.loss) as number, width: (texts[i]!.getComputedTextLength() || 0.6 * FONT_SIZE * p.label.length) + 2, height: FONT_SIZE + 3 }));
  const placed = placeLabels(requests, area, obstacles, DOT_RADIUS);
  placed.forEach((box, i) => {
    const t = texts[i]!;
    t.setAttribute('x', String(box.x + 1));
    t.setAttribute('y', String(box.y + box.height - 3));
    if (box.distance > 8) {
      // A label pushed away from its dot keeps a thin line back to it.
      const r = requests[i]!;
      const line = document.createElementNS(SVG, 'line');
      line.setAttribute('x1', String(r.x));
      line.setAttribute('y1', String(r.y));
      line.setAttribute('x2', String(Math.max(box.x, Math.min(r.x, box.x + box.width))));
      line.setAttribute('y2', String(Math.max(box.y, Math.min(r.y, box.y + box.height))));
      line.setAttribute('stroke', '#9aa3b5');
      group.prepend(line);
    }
  });
}
