// The layer browser's per-layer error chart: SQNR of every analysed weight matrix under the
// chosen format, in file order, so the layers a format hurts most stand out.
import * as Plot from '@observablehq/plot';
import type { TensorAnalysis } from '../messages';

/** "blk.12.ffn_down.weight" → {block: 12, kind: "ffn_down"}; non-block tensors keep their name. */
export function tensorKind(name: string): { block: number | null; kind: string } {
  const m = /^blk\.(\d+)\.(.+?)(\.weight)?$/.exec(name);
  return m ? { block: Number(m[1]), kind: m[2]! } : { block: null, kind: name.replace(/\.weight$/, '') };
}

export function renderLayerErrors(container: HTMLElement, rows: TensorAnalysis[], width: number): void {
  const data = rows
    .filter((r) => typeof r.metrics?.sqnr_db === 'number')
    .map((r, i) => ({ i, name: r.name, sqnr: r.metrics!.sqnr_db as number, ...tensorKind(r.name) }));
  if (data.length === 0) {
    container.replaceChildren();
    return;
  }
  const format = rows[0]!.format;
  const chart = Plot.plot({
    width: Math.max(300, width),
    height: 240,
    marginLeft: 60,
    x: { label: 'weight matrix (file order)', ticks: [] },
    y: { label: `SQNR under ${format} (dB, higher is better)`, grid: true },
    color: { legend: true, type: 'categorical' },
    marks: [Plot.barY(data, { x: 'i', y: 'sqnr', fill: 'kind', title: (d) => `${d.name}: ${d.sqnr.toFixed(2)} dB` }), Plot.ruleY([0])],
  });
  chart.setAttribute('role', 'img');
  const worst = [...data].sort((a, b) => a.sqnr - b.sqnr).slice(0, 3);
  chart.setAttribute('aria-label', `SQNR of ${data.length} weight matrices under ${format}; lowest: ${worst.map((w) => `${w.name} ${w.sqnr.toFixed(1)} dB`).join(', ')}`);
  container.replaceChildren(chart);
  container.dataset.matrices = String(data.length);
}
