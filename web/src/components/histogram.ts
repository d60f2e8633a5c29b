// <ql-histogram> and <ql-levels>: a tensor's values, and a format's level grid over them, drawn by
// the lab's own renderer (ui/histogram.ts) from the worker's exact bin counts.
import { FormatChoiceError } from '../errors';
import { formatCount } from '../format';
import type { HistogramResult, Scope, TensorView } from '../messages';
import { FINE_PER_BIN, type RangeMode, rangeOf, renderHistogram } from '../ui/histogram';
import { control, indexInput, int, pickTensor, QlElement, reflect, select, text } from './base';

const SCOPES: Record<string, Scope> = { tensor: 'tensor', row: 'row', group: 'group' };
const RANGES: Record<RangeMode, string> = { robust: 'bulk (0.1–99.9 %)', full: 'full range', group: "the group's levels" };

/** The values shown, and the format's levels when a format was given. */
interface Shown {
  histogram: HistogramResult;
  view: TensorView | null;
}

/**
 * `<ql-histogram src tensor format bins scope group>`: the histogram of a tensor's values (of one
 * row or group with `scope`), with the format's levels over it when `format` is set.
 */
export class QlHistogram extends QlElement {
  static observedAttributes = ['src', 'tensor', 'format', 'bins', 'scope', 'group'];
  declare src: string | null;
  declare tensor: string | null;
  declare format: string | null;
  declare bins: number;
  declare scope: string | null;
  declare group: number;
  protected readonly label: string = 'Weight histogram';
  private log = control(this.controls, 'Log counts', Object.assign(document.createElement('input'), { type: 'checkbox' }));
  private range = control(this.controls, 'Range', select(RANGES, 'robust'));
  private shown: Shown | null = null;

  constructor() {
    super();
    this.log.setAttribute('part', 'log-toggle');
    this.range.setAttribute('part', 'range-select');
    // Display choices redraw the numbers already fetched.
    for (const c of [this.log, this.range]) c.addEventListener('change', () => this.draw());
  }

  protected async render(signal: AbortSignal): Promise<string> {
    const lab = await this.ready();
    const tensor = pickTensor(lab, this.tensor);
    const bins = Math.max(1, this.bins);
    this.say(`Binning ${tensor}…`);
    // Binned finer than shown, so a zoomed range is regrouped from exact counts (as the lab does).
    const fine = bins * FINE_PER_BIN;
    const format = this.format;
    if (format) {
      const view = await lab.histogram(tensor, { format, bins: fine, scope: SCOPES[this.scope ?? 'tensor'] ?? 'tensor', group: Math.max(0, this.group), signal });
      signal.throwIfAborted();
      this.shown = { histogram: view.histogram, view };
    } else {
      const histogram = await lab.histogram(tensor, { bins: fine, signal });
      signal.throwIfAborted();
      this.shown = { histogram, view: null };
    }
    return this.draw();
  }

  private draw(): string {
    const s = this.shown;
    if (!s) return '';
    const h = s.histogram;
    const mode = this.range.value as RangeMode;
    const levels = s.view?.formatError ? [] : (s.view?.levels ?? []);
    const shown = rangeOf(h, mode, levels, Math.max(1, this.bins));
    const overlay = s.view && levels.length ? { levels, label: s.view.format } : undefined;
    renderHistogram(this.chart, h, { log: this.log.checked, width: this.width(), overlay, range: mode, shown });
    Object.assign(this.chart.dataset, { values: String(h.total), lo: String(h.lo), hi: String(h.hi), counts: JSON.stringify(shown.bins.map((b) => b.count)) });
    const v = s.view;
    const parts = [`${formatCount(h.total)} values of ${h.tensor} from ${h.lo.toPrecision(4)} to ${h.hi.toPrecision(4)}`, `${shown.bins.length} bins`];
    if (shown.outside > 0) parts.push(`${formatCount(shown.outside)} outside the range shown`);
    if (v?.formatError) parts.push(`${v.format} cannot be applied here: ${v.formatError}`);
    else if (v) parts.push(`${v.levels.length} ${v.format} levels (group ${v.group}), ${v.bitsPerWeight.toFixed(2)} bits/weight`);
    this.caption.textContent = parts.join(' · ');
    return `${h.tensor}${v ? ` under ${v.format}` : ''}: done`;
  }
}

/**
 * `<ql-levels src format tensor group>`: one group of the tensor's values with the levels the
 * format can store for it (its scale applied), and how many values it clips.
 */
export class QlLevels extends QlElement {
  static observedAttributes = ['src', 'tensor', 'format', 'group', 'bins'];
  declare src: string | null;
  declare tensor: string | null;
  declare format: string | null;
  declare group: number;
  declare bins: number;
  protected readonly label: string = 'Quantization levels';
  private groupInput = indexInput(this.controls, 'Group', 'group-input', (group) => (this.group = group));

  protected async render(signal: AbortSignal): Promise<string> {
    const lab = await this.ready();
    const tensor = pickTensor(lab, this.tensor);
    const format = this.format ?? 'nf4';
    const bins = Math.max(1, this.bins);
    this.say(`Placing ${format}'s levels on ${tensor}…`);
    const v = await lab.histogram(tensor, { format, bins: bins * FINE_PER_BIN, scope: 'group', group: Math.max(0, this.group), signal });
    signal.throwIfAborted();
    if (v.formatError) throw new FormatChoiceError(`${format} cannot be applied to ${tensor}: ${v.formatError}`);
    this.groupInput.max = String(v.nGroups - 1);
    this.groupInput.value = String(v.group);
    const shown = rangeOf(v.histogram, 'group', v.levels, bins);
    renderHistogram(this.chart, v.histogram, { log: false, width: this.width(), overlay: { levels: v.levels, label: v.format }, range: 'group', shown });
    this.chart.dataset.levelCount = String(v.levels.length);
    const [lo, hi] = [v.levels[0], v.levels[v.levels.length - 1]];
    this.caption.textContent = `${v.levels.length} ${v.format} levels from ${lo?.toPrecision(4)} to ${hi?.toPrecision(4)} for group ${v.group} of ${v.nGroups} (${v.groupLen} values, ${v.clipped} clipped) · ${v.bitsPerWeight.toFixed(2)} bits/weight`;
    return `${v.levels.length} levels`;
  }
}

reflect(QlHistogram, { src: text(), tensor: text(), format: text(), bins: int(64), scope: text('tensor'), group: int(0) });
reflect(QlLevels, { src: text(), tensor: text(), format: text('nf4'), group: int(0), bins: int(64) });
