// The per-layer output error chart and table (Methods panel, lesson 5): layer on x, the relative
// output error ‖WX − ŴX‖² / ‖WX‖² on a log y axis, one mark per method.
import * as Plot from '@observablehq/plot';
import type { LayerErrorRow } from '../pkg/quantlab.js';
import { el } from './dom';

const METHODS = [
  { key: 'rtn', label: 'RTN', color: '#7a8aa6', symbol: 'circle' },
  { key: 'gptq', label: 'GPTQ', color: 'crimson', symbol: 'triangle' },
  { key: 'awq', label: 'AWQ', color: '#2a9d8f', symbol: 'square' },
] as const;

function fmt(v: number | null): string {
  return v === null ? '—' : v.toExponential(3);
}

/** The chart of `rows` whose kind is `kind` ('all': every matrix) and the table of those rows. */
export function renderLayerErrors(container: HTMLElement, rows: LayerErrorRow[], kind: string): void {
  const shown = kind === 'all' ? rows : rows.filter((r) => r.kind === kind);
  // The methods side by side at each layer (a small x offset each).
  const points = shown.flatMap((r) => METHODS.flatMap((m, i) => (r[m.key] === null ? [] : [{ x: r.layer + (i - 1) * 0.15, tensor: r.tensor, method: m.label, error: r[m.key] as number }])));
  const chart = Plot.plot({
    width: Math.max(320, Math.min(900, container.clientWidth || 640)),
    height: 260,
    marginLeft: 70,
    x: { label: 'layer', tickFormat: 'd', ticks: [...new Set(shown.map((r) => r.layer))], domain: shown.length ? [Math.min(...shown.map((r) => r.layer)) - 0.5, Math.max(...shown.map((r) => r.layer)) + 0.5] : [-0.5, 0.5] },
    y: { type: 'log', nice: true, label: 'relative output error', grid: true },
    color: { legend: true, domain: METHODS.map((m) => m.label), range: METHODS.map((m) => m.color) },
    symbol: { domain: METHODS.map((m) => m.label), range: METHODS.map((m) => m.symbol) },
    marks: [Plot.dot(points, { x: 'x', y: 'error', stroke: 'method', symbol: 'method', title: (d) => `${d.tensor} ${d.method}: ${d.error.toExponential(3)}` })],
  });
  chart.setAttribute('role', 'img');
  chart.setAttribute('aria-label', `Relative output error per layer for ${shown.length} matrices (${kind === 'all' ? 'every kind' : kind}), RTN vs GPTQ vs AWQ, log scale`);
  const table = el('table', undefined, { class: 'layer-error-table' });
  const head = el('tr');
  for (const h of ['tensor', 'format', 'RTN', 'GPTQ', 'AWQ', 'GPTQ / RTN', 'AWQ / RTN']) head.append(el('th', h));
  table.append(head);
  for (const r of shown) {
    const tr = el('tr', undefined, { 'data-tensor': r.tensor });
    const ratio = (v: number | null) => (v === null || r.rtn === 0 ? '—' : (v / r.rtn).toFixed(3));
    for (const c of [r.tensor, r.format, fmt(r.rtn), fmt(r.gptq), fmt(r.awq), ratio(r.gptq), ratio(r.awq)]) tr.append(el('td', c));
    table.append(tr);
  }
  container.replaceChildren(chart, table);
  container.dataset.rows = JSON.stringify(shown);
}
