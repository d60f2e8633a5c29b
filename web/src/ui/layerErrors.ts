// Per-layer error chart (layer browser and comparison panel): SQNR of every weight matrix under
// one format, in file order, so the layers a format hurts most stand out. Matrices with an
// infinite SQNR (copied unchanged) or no measurement get no bar.
import * as Plot from '@observablehq/plot';

/** "blk.12.ffn_down.weight" → {block: 12, kind: "ffn_down"}; non-block tensors keep their name. */
export function tensorKind(name: string): { block: number | null; kind: string } {
  const m = /^blk\.(\d+)\.(.+?)(\.weight)?$/.exec(name);
  return m ? { block: Number(m[1]), kind: m[2]! } : { block: null, kind: name.replace(/\.weight$/, '') };
}

/** One matrix's SQNR in dB ("inf"/null/undefined when copied unchanged or not measured). */
export interface LayerError {
  name: string;
  sqnr: number | string | null | undefined;
}

export function renderLayerErrors(container: HTMLElement, rows: LayerError[], format: string, width: number, height = 240): void {
  const data = rows
    .filter((r): r is { name: string; sqnr: number } => typeof r.sqnr === 'number' && Number.isFinite(r.sqnr))
    .map((r, i) => ({ i, name: r.name, sqnr: r.sqnr, ...tensorKind(r.name) }));
  if (data.length === 0) {
    container.replaceChildren();
    delete container.dataset.matrices;
    return;
  }
  const chart = Plot.plot({
    width: Math.max(300, width),
    height,
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
