// Panels 3–5 (histogram with levels, outlier channels, NF4 placement) for the selected tensor.
import { codebookNames, renderNf4 } from '../ui/nf4';
import { formatCount } from '../format';
import type { ActivationChannels, ChannelStats, Nf4Placement, Scope, SmoothingChannels, TensorView } from '../messages';
import { getInt, getParam, setParam } from '../state';
import { renderChannels } from '../ui/channels';
import { $, el } from '../ui/dom';
import { FINE_PER_BIN, type RangeMode, rangeOf, renderHistogram, renderOccupancy, type ShownRange } from '../ui/histogram';
import { formatDb } from '../ui/layerBrowser';
import { isCancel, ProgressView } from '../ui/progress';
import { abortable } from '../api/calls';
import { type App, panelError } from './app';

const num = (sel: string) => Number(($(sel) as HTMLInputElement).value);
/** Channel indices for a caption: all of them, or the first 20 and the count. */
const listChannels = (xs: number[]) => (xs.length === 0 ? 'none' : xs.length > 20 ? `${xs.slice(0, 20).join(', ')} … (${xs.length})` : xs.join(', '));

export class WeightPanels {
  private view: TensorView | null = null;
  private stats: ChannelStats | null = null;
  private nf4: Nf4Placement | null = null;
  private activations: ActivationChannels | null = null;
  /** Settings of the last completed activation run (the worker keeps its results for every matrix). */
  private measured: string | null = null;
  private actProgress = new ProgressView($('#act-progress-host'), 'act-progress');
  private smoothing: SmoothingChannels | null = null;
  private smoothProgress = new ProgressView($('#smooth-progress-host'), 'smooth-progress');
  private histProgress = new ProgressView($('#histogram-progress-host'), 'histogram-progress');
  private outProgress = new ProgressView($('#outliers-progress-host'), 'outliers-progress');
  private nf4Progress = new ProgressView($('#nf4-progress-host'), 'nf4-progress');

  constructor(private app: App) {
    const scope = getParam('scope');
    if (scope === 'row' || scope === 'group') ($('#scope') as HTMLSelectElement).value = scope;
    ($('#group') as HTMLInputElement).value = String(getInt('group', 0));
    ($('#nf4-block') as HTMLInputElement).value = String(getInt('block', 0));
    for (const id of ['#scope', '#group', '#bins']) $(id).addEventListener('change', () => void this.drawHistogram());
    $('#log-counts').addEventListener('change', () => this.redrawHistogram());
    const range = getParam('range');
    for (const radio of document.querySelectorAll<HTMLInputElement>('input[name=hist-range]')) {
      radio.checked = radio.value === (range ?? 'robust');
      radio.addEventListener('change', () => {
        setParam('range', this.rangeMode() === 'robust' ? null : this.rangeMode());
        this.redrawHistogram();
      });
    }
    $('#channel-metric').addEventListener('change', () => {
      this.redrawChannels();
      this.redrawActivations();
    });
    $('#outlier-k').addEventListener('change', () => void this.drawChannels());
    $('#nf4-block').addEventListener('change', () => void this.drawNf4());
    $('#act-run').addEventListener('click', () => void this.drawActivations());
    $('#smooth-run').addEventListener('click', () => void this.drawSmoothing());
    let timer = 0;
    window.addEventListener('resize', () => {
      clearTimeout(timer);
      timer = window.setTimeout(() => {
        this.redrawHistogram();
        this.redrawChannels();
        this.redrawActivations();
        this.redrawSmoothing();
        this.redrawNf4();
      }, 150);
    });
  }

  hide(): void {
    for (const id of ['#histogram-panel', '#outliers-panel', '#nf4-panel']) $(id).hidden = true;
    this.view = this.stats = this.nf4 = this.activations = null;
    this.measured = null;
    $('#act-chart').replaceChildren();
    $('#act-caption').textContent = '';
    this.clearSmoothing();
  }

  private clearSmoothing(): void {
    this.smoothing = null;
    $('#smooth-before').replaceChildren();
    $('#smooth-after').replaceChildren();
    $('#smooth-caption').textContent = '';
  }

  async showTensor(): Promise<void> {
    for (const id of ['#histogram-panel', '#outliers-panel', '#nf4-panel']) $(id).hidden = false;
    await this.drawHistogram();
    await this.drawChannels();
    if (this.measured) await this.drawActivations();
    else this.clearActivations();
    await this.drawNf4();
  }

  private clearActivations(): void {
    this.activations = null;
    $('#act-chart').replaceChildren();
    $('#act-caption').textContent = 'Press "Measure activations" to run the calibration text through the model (a few seconds to a minute in the browser).';
  }

  /** Runs one worker call for the current tensor; drops the answer if the model changed meanwhile. */
  private async run<T>(progress: ProgressView, host: HTMLElement, title: string, start: () => import('../client').CallHandle<T>): Promise<T | null> {
    const generation = this.app.generation;
    panelError(host, null);
    try {
      const value = await progress.track(title, start());
      return generation === this.app.generation ? value : null;
    } catch (error) {
      panelError(host, isCancel(error) ? 'Cancelled.' : error);
      return null;
    }
  }

  async drawHistogram(): Promise<void> {
    const tensor = this.app.tensor;
    if (!tensor) return;
    const scope = ($('#scope') as HTMLSelectElement).value as Scope;
    const groupInput = $('#group') as HTMLInputElement;
    const asked = groupInput.value;
    const group = Math.max(0, Math.floor(num('#group')) || 0);
    setParam('scope', scope === 'tensor' ? null : scope);
    setParam('group', group || null);
    $('#histogram-title').textContent = `3. Weight histogram — ${tensor}`;
    const title = `${tensor} under ${this.app.format}`;
    const progress = this.histProgress;
    const v = await this.run(progress, $('#histogram-panel'), title, () =>
      // Binned finer than shown, so the zoomed ranges are regrouped from exact counts.
      abortable((signal) => this.app.lab.histogram(tensor, { format: this.app.format, bins: num('#bins') * FINE_PER_BIN, scope, group, signal, onProgress: progress.listener(title) })),
    );
    if (!v) return;
    this.view = v;
    groupInput.max = String(v.nGroups - 1);
    // The group actually shown (clamped), unless the user typed another while this one ran: their
    // value stands and its own change event draws it.
    if (groupInput.value === asked) groupInput.value = String(v.group);
    this.redrawHistogram();
  }

  redrawHistogram(): void {
    const v = this.view;
    if (!v) return;
    const host = $('#histogram');
    const occupancy = $('#occupancy');
    const mode = this.rangeMode();
    const shown = rangeOf(v.histogram, mode, v.levels, num('#bins'));
    renderHistogram(host, v.histogram, { log: ($('#log-counts') as HTMLInputElement).checked, width: host.clientWidth, overlay: { levels: v.levels, label: v.format }, range: mode, shown });
    this.describeRange(v, mode, shown);
    if (v.occupancy.length) renderOccupancy(occupancy, v.occupancy, { width: occupancy.clientWidth, format: v.format });
    else occupancy.replaceChildren(el('p', `${v.format} does not report its codes, so there is no occupancy to show.`, { class: 'caption' }));
    const h = v.histogram;
    const caption = $('#histogram-caption');
    const t = this.app.model?.header.tensors.find((x) => x.name === v.tensor);
    const where = v.scope === 'tensor' ? 'whole tensor' : v.scope === 'row' ? `row ${v.row}` : `group ${v.group}`;
    const parts = [`${formatCount(h.total)} values (${where})`, `min ${h.min?.toPrecision(5)}`, `max ${h.max?.toPrecision(5)}`, `${shown.bins.length} bins`];
    if (t) parts.push(`decoded from ${t.type}`);
    if (h.nonFinite > 0) parts.push(`${formatCount(h.nonFinite)} NaN/Inf values not shown`);
    if (v.formatError || !v.metrics) {
      parts.push(`${v.format} cannot be applied here: ${v.formatError ?? 'no metrics'}`);
      caption.textContent = parts.join(' · ');
      caption.dataset.total = String(h.total);
      return;
    }
    parts.push(`${v.format}: ${v.levels.length} levels in group ${v.group} of ${formatCount(v.nGroups)} (${formatCount(v.groupLen)} weights each)`);
    if (v.levels.length) parts.push(`clipping range ${v.levels[0]!.toPrecision(4)} … ${v.levels[v.levels.length - 1]!.toPrecision(4)}, ${formatCount(v.clipped)} of the group's weights clipped`);
    parts.push(`${v.bitsPerWeight.toFixed(3)} bits/weight, SQNR ${formatDb(v.metrics.sqnrDb)} dB on the tensor`);
    caption.textContent = parts.join(' · ');
    caption.dataset.total = String(h.total);
  }

  private rangeMode(): RangeMode {
    const value = document.querySelector<HTMLInputElement>('input[name=hist-range]:checked')?.value;
    return value === 'group' || value === 'full' ? value : 'robust';
  }

  /** Says which part of the x-axis is shown and what lies outside it. */
  private describeRange(v: TensorView, mode: RangeMode, shown: ShownRange): void {
    const note = $('#histogram-range');
    const h = v.histogram;
    const [lo, hi] = shown.domain.map((x) => x.toPrecision(3));
    const share = h.total ? ((100 * shown.outside) / h.total).toPrecision(2) : '0';
    const outside = shown.outside ? `; ${formatCount(shown.outside)} values (${share}%) lie outside it, out to ${h.min?.toPrecision(3)} and ${h.max?.toPrecision(3)} — pick "full range" to see them` : '';
    const levelsOut = v.levels.filter((x) => x < shown.domain[0] || x > shown.domain[1]).length;
    const clippedLevels = mode !== 'full' && levelsOut ? `; ${levelsOut} of the group's ${v.levels.length} levels are beyond this range` : '';
    const what =
      mode === 'full'
        ? `the full range of the values, ${lo} to ${hi}`
        : mode === 'group' && v.levels.length > 1
          ? `group ${v.group}'s levels under ${v.format} (and 5% each side), ${lo} to ${hi}`
          : `the bulk of the values, ${lo} to ${hi} (0.1st to 99.9th percentile)${mode === 'group' ? `, because ${v.format} has no levels here` : ''}`;
    note.textContent = `x-axis: ${what}${outside}${clippedLevels}.`;
    note.dataset.range = mode;
  }

  async drawChannels(): Promise<void> {
    const tensor = this.app.tensor;
    if (!tensor) return;
    const outlierK = num('#outlier-k') > 0 ? num('#outlier-k') : 6;
    const title = `channel statistics of ${tensor}`;
    const progress = this.outProgress;
    const s = await this.run(progress, $('#outliers-panel'), title, () => this.app.client.startCall('channelStats', { tensor, outlierK }, progress.listener(title)));
    if (!s) return;
    this.stats = s;
    this.redrawChannels();
  }

  redrawChannels(): void {
    const s = this.stats;
    if (!s) return;
    const metric = ($('#channel-metric') as HTMLSelectElement).value as 'absmax' | 'rms';
    const cols = $('#cols-chart');
    const rows = $('#rows-chart');
    renderChannels(cols, { absmax: s.colAbsmax, rms: s.colRms, outliers: s.outlierCols, k: s.outlierK, metric, what: 'input' }, cols.clientWidth);
    renderChannels(rows, { absmax: s.rowAbsmax, rms: s.rowRms, outliers: s.outlierRows, k: s.outlierK, metric, what: 'output' }, rows.clientWidth);
    $('#outliers-caption').textContent =
      `${s.tensor}: ${s.rows} output × ${s.cols} input channels · outlier input channels: ${listChannels(s.outlierCols)} · outlier output channels: ${listChannels(s.outlierRows)} · ` +
      `rule: absmax > ${s.outlierK} × median channel absmax · excess kurtosis ${s.excessKurtosis?.toFixed(2) ?? '—'}`;
  }

  async drawActivations(): Promise<void> {
    const tensor = this.app.tensor;
    if (!tensor) return;
    const maxTokens = Number(($('#act-tokens') as HTMLSelectElement).value) || 64;
    const outlierK = num('#outlier-k') > 0 ? num('#outlier-k') : 6;
    if (this.activations?.tensor !== tensor) this.clearActivations();
    const title = `activations of ${tensor}'s inputs`;
    const progress = this.actProgress;
    const button = $('#act-run') as HTMLButtonElement;
    button.disabled = true;
    const dataUrl = new URL('data/moby-dick/', location.href).href;
    try {
      const a = await this.run(progress, $('#outliers-panel'), title, () =>
        this.app.client.startCall('activationStats', { tensor, maxTokens, outlierK, dataUrl }, progress.listener(title)),
      );
      if (!a || a.tensor !== this.app.tensor) return;
      this.activations = a;
      this.measured = `${maxTokens}|${outlierK}`;
      this.redrawActivations();
    } finally {
      button.disabled = false;
    }
  }

  redrawActivations(): void {
    const a = this.activations;
    if (!a) return;
    const metric = ($('#channel-metric') as HTMLSelectElement).value as 'absmax' | 'rms';
    const host = $('#act-chart');
    renderChannels(host, { absmax: a.colAbsmax, rms: a.colRms, outliers: a.outliers, k: a.outlierK, metric, what: 'input (activation)' }, host.clientWidth);
    const weightOutliers = new Set(this.stats?.tensor === a.tensor ? this.stats.outlierCols : []);
    const both = a.outliers.filter((c) => weightOutliers.has(c));
    const caption = $('#act-caption');
    caption.textContent =
      `${a.tensor}: activations over the first ${a.tokens} tokens of ${a.text} · outlier activation channels: ${listChannels(a.outliers)} · ` +
      `also outliers in the weights: ${listChannels(both)} · rule: absmax > ${a.outlierK} × median channel absmax`;
    caption.dataset.tokens = String(a.tokens);
    caption.dataset.channels = String(a.colAbsmax.length);
  }

  /** The selected matrix's input before and after SmoothQuant, with LLM.int8()'s float columns. */
  async drawSmoothing(): Promise<void> {
    const tensor = this.app.tensor;
    if (!tensor) return;
    this.clearSmoothing();
    const args = { tensor, alpha: num('#smooth-alpha'), threshold: num('#smooth-threshold'), tokens: Number(($('#smooth-tokens') as HTMLSelectElement).value), dataUrl: new URL('data/moby-dick/', location.href).href };
    const title = `SmoothQuant on ${tensor}'s input`;
    const button = $('#smooth-run') as HTMLButtonElement;
    button.disabled = true;
    try {
      const s = await this.run(this.smoothProgress, $('#outliers-panel'), title, () => this.app.client.startCall('smoothingStats', args, this.smoothProgress.listener(title)));
      if (!s || s.tensor !== this.app.tensor) return;
      this.smoothing = s;
      this.redrawSmoothing();
    } finally {
      button.disabled = false;
    }
  }

  redrawSmoothing(): void {
    const s = this.smoothing;
    if (!s) return;
    const before = $('#smooth-before');
    const after = $('#smooth-after');
    // The dashed rule of renderChannels sits at k × median: k chosen so that it is the threshold.
    const sorted = [...s.absmax].sort((a, b) => a - b);
    const median = sorted[sorted.length >> 1] || 1;
    renderChannels(before, { absmax: s.absmax, rms: s.absmax, outliers: s.outliers, k: s.threshold / median, metric: 'absmax', what: 'input before smoothing' }, before.clientWidth);
    renderChannels(after, { absmax: s.smoothedAbsmax, rms: s.smoothedAbsmax, outliers: [], k: 1, metric: 'absmax', what: `input after SmoothQuant α=${s.alpha}` }, after.clientWidth);
    const peak = (v: number[]) => Math.max(...v);
    const caption = $('#smooth-caption');
    caption.textContent =
      `${s.tensors.join(', ')} read this input. Over ${s.tokens} tokens of ${s.text}: largest channel max ${peak(s.absmax).toPrecision(4)} before, ` +
      `${peak(s.smoothedAbsmax).toPrecision(4)} after SmoothQuant α=${s.alpha} · LLM.int8() at threshold ${s.threshold} keeps ${s.outliers.length} of ${s.absmax.length} columns in float: ${listChannels(s.outliers)}`;
    Object.assign(caption.dataset, { outliers: JSON.stringify(s.outliers), threshold: String(s.threshold), alpha: String(s.alpha), tokens: String(s.tokens) });
    before.dataset.values = JSON.stringify(s.absmax);
    after.dataset.values = JSON.stringify(s.smoothedAbsmax);
    after.dataset.factors = JSON.stringify(s.factors);
  }

  async drawNf4(): Promise<void> {
    const tensor = this.app.tensor;
    if (!tensor) return;
    const block = Math.max(0, Math.floor(num('#nf4-block')) || 0);
    setParam('block', block || null);
    const title = `NF4 placement on ${tensor}`;
    const progress = this.nf4Progress;
    const p = await this.run(progress, $('#nf4-panel'), title, () => this.app.client.startCall('nf4Placement', { tensor, block }, progress.listener(title)));
    if (!p) return;
    this.nf4 = p;
    ($('#nf4-block') as HTMLInputElement).max = String(p.nBlocks - 1);
    ($('#nf4-block') as HTMLInputElement).value = String(p.block);
    this.redrawNf4();
    const levels = $('#nf4-levels').querySelector('tbody')!;
    levels.replaceChildren(
      ...p.nf4Levels.map((v, i) => {
        const tr = el('tr');
        tr.append(el('td', String(i)), el('td', v.toFixed(7), { 'data-nf4': String(v) }), el('td', p.normalLevels[i]!.toFixed(4)), el('td', p.int4Levels[i]?.toFixed(4) ?? '—'));
        return tr;
      }),
    );
    const errors = $('#nf4-errors').querySelector('tbody')!;
    const sqnr = (mse: number) => (mse > 0 ? (10 * Math.log10(p.signalPower / mse)).toFixed(2) : '∞');
    const best = Object.entries(p.mse).sort((a, b) => a[1] - b[1])[0]![0];
    errors.replaceChildren(
      ...(Object.keys(codebookNames) as (keyof typeof codebookNames)[]).map((k) => {
        const tr = el('tr', undefined, { 'data-codebook': k, class: k === best ? 'best' : '' });
        tr.append(el('th', codebookNames[k] + (k === best ? ' (best)' : ''), { scope: 'row' }), el('td', p.mse[k].toExponential(4), { 'data-mse': String(p.mse[k]) }), el('td', sqnr(p.mse[k])));
        return tr;
      }),
    );
  }

  redrawNf4(): void {
    const host = $('#nf4-chart');
    if (this.nf4) renderNf4(host, this.nf4, host.clientWidth);
  }
}
