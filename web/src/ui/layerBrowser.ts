// Panel 2: every tensor, sortable by size, kurtosis, outlier count and error under the chosen
// format. Rows are selectable by click or keyboard (Enter/Space, arrows move between rows).
import { formatBpw, formatBytes, formatShape } from '../format';
import type { TensorAnalysis, TensorRow } from '../messages';
import { el } from './dom';

type SortKey = 'order' | 'name' | 'bytes' | 'kurtosis' | 'outliers' | 'error';

interface Column {
  key: SortKey | null;
  label: string;
  cell(t: TensorRow, a: TensorAnalysis | undefined): HTMLTableCellElement;
}

/** Relative error (MSE / signal power): the sort key for "error", larger is worse. */
export function relativeError(a: TensorAnalysis | undefined): number {
  if (!a?.metrics) return NaN;
  return a.metrics.signalPower > 0 ? a.metrics.mse / a.metrics.signalPower : a.metrics.mse;
}

export function formatDb(db: number | string | null | undefined): string {
  if (db === 'inf') return '∞';
  if (db === '-inf') return '−∞';
  return typeof db === 'number' ? db.toFixed(1) : '—';
}

const td = (text: string, attrs: Record<string, string> = {}) => el('td', text, attrs);

const columns: Column[] = [
  { key: 'name', label: 'Name', cell: (t) => td(t.name) },
  { key: null, label: 'Shape', cell: (t) => td(formatShape(t.dims)) },
  { key: null, label: 'Type', cell: (t) => td(t.type) },
  { key: 'bytes', label: 'Size', cell: (t) => td(formatBytes(t.nBytes), { 'data-bytes': String(t.nBytes) }) },
  { key: null, label: 'Bits/weight', cell: (t) => td(formatBpw(t.bitsPerWeight)) },
  {
    key: 'kurtosis',
    label: 'Kurtosis',
    cell: (_, a) => td(a?.kurtosis == null ? '—' : a.kurtosis.toFixed(2), { 'data-kurtosis': String(a?.kurtosis ?? '') }),
  },
  {
    key: 'outliers',
    label: 'Outlier ch. (in/out)',
    cell: (_, a) => td(a ? `${a.outlierCols} / ${a.outlierRows}` : '—', { 'data-outliers': a ? String(a.outlierCols + a.outlierRows) : '' }),
  },
  {
    key: 'error',
    label: 'SQNR dB (format)',
    cell: (_, a) =>
      td(a?.error ? 'n/a' : formatDb(a?.metrics?.sqnrDb), { 'data-sqnr': String(a?.metrics?.sqnrDb ?? ''), title: a?.error ?? (a ? `${a.format}: ${a.bitsPerWeight?.toFixed(3)} bits/weight` : '') }),
  },
];

export class LayerBrowser {
  private tensors: TensorRow[] = [];
  private analysis = new Map<string, TensorAnalysis>();
  private sort: { key: SortKey; descending: boolean } = { key: 'order', descending: false };
  private selected: string | null = null;

  constructor(private table: HTMLTableElement, private onSelect: (name: string) => void) {
    this.renderHead();
  }

  setTensors(tensors: TensorRow[]): void {
    this.tensors = tensors;
    this.analysis.clear();
    this.render();
  }

  addAnalysis(a: TensorAnalysis): void {
    this.analysis.set(a.name, a);
    const row = this.table.tBodies[0]!.querySelector<HTMLTableRowElement>(`tr[data-index="${this.tensors.findIndex((t) => t.name === a.name)}"]`);
    if (row) this.fillRow(row, this.tensors.find((t) => t.name === a.name)!);
  }

  clearAnalysis(): void {
    this.analysis.clear();
    this.render();
  }

  markSelected(name: string): void {
    this.selected = name;
    for (const tr of this.table.tBodies[0]!.rows) {
      const on = tr.dataset.tensor === name;
      tr.setAttribute('aria-selected', String(on));
      if (on) tr.scrollIntoView({ block: 'nearest' });
    }
  }

  private sortValue(t: TensorRow, i: number): number | string {
    const a = this.analysis.get(t.name);
    switch (this.sort.key) {
      case 'order': return i;
      case 'name': return t.name;
      case 'bytes': return t.nBytes;
      case 'kurtosis': return a?.kurtosis ?? NaN;
      case 'outliers': return a ? a.outlierCols + a.outlierRows : NaN;
      case 'error': return relativeError(a);
    }
  }

  private renderHead(): void {
    const tr = this.table.tHead!.rows[0]!;
    tr.replaceChildren();
    for (const c of columns) {
      const th = el('th', undefined, { scope: 'col' });
      if (c.key) {
        const key = c.key;
        const button = el('button', c.label, { type: 'button', class: 'sort', 'data-sort': key });
        button.addEventListener('click', () => {
          // Stats sort worst first; a second click reverses.
          this.sort = this.sort.key === key ? { key, descending: !this.sort.descending } : { key, descending: key !== 'name' };
          this.render();
        });
        th.append(button);
        th.setAttribute('aria-sort', 'none');
      } else th.textContent = c.label;
      tr.append(th);
    }
  }

  private fillRow(tr: HTMLTableRowElement, t: TensorRow): void {
    const a = this.analysis.get(t.name);
    tr.replaceChildren(...columns.map((c) => c.cell(t, a)));
  }

  render(): void {
    const indexed = this.tensors.map((t, i) => ({ t, i, v: this.sortValue(t, i) }));
    const dir = this.sort.descending ? -1 : 1;
    indexed.sort((x, y) => {
      // Unknown values (not analysed, or the format failed) go last in either direction.
      const xn = typeof x.v === 'number' && Number.isNaN(x.v);
      const yn = typeof y.v === 'number' && Number.isNaN(y.v);
      if (xn !== yn) return xn ? 1 : -1;
      if (x.v < y.v) return -dir;
      if (x.v > y.v) return dir;
      return x.i - y.i;
    });
    for (const th of this.table.tHead!.rows[0]!.cells) {
      const key = th.querySelector<HTMLElement>('button')?.dataset.sort;
      if (key) th.setAttribute('aria-sort', key === this.sort.key ? (this.sort.descending ? 'descending' : 'ascending') : 'none');
    }
    const body = this.table.tBodies[0]!;
    body.replaceChildren(
      ...indexed.map(({ t, i }) => {
        const tr = el('tr', undefined, { tabindex: '0', 'data-tensor': t.name, 'data-index': String(i), 'aria-selected': String(t.name === this.selected) });
        this.fillRow(tr, t);
        tr.addEventListener('click', () => this.onSelect(t.name));
        tr.addEventListener('keydown', (event) => {
          if (event.key === 'Enter' || event.key === ' ') {
            event.preventDefault();
            this.onSelect(t.name);
          } else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
            event.preventDefault();
            ((event.key === 'ArrowDown' ? tr.nextElementSibling : tr.previousElementSibling) as HTMLElement | null)?.focus();
          }
        });
        return tr;
      }),
    );
  }
}
