// Panel 6: quantize + evaluate several formats, a progress bar per step, results saved in
// IndexedDB, a table and a quality-vs-bits-per-weight scatter with the Pareto frontier.
import { formatBytes, formatCount } from '../format';
import { abortable } from '../api/calls';
import type { TaskSuiteOption } from '../api/lab';
import { type ActivationSetup, type AdapterReport, type EvalDevice, type Phase, type PresetInfo, presetLabel, type QuantManifest, type StepEvent } from '../messages';
import { clearManifests, loadManifests, manifestsToCsv, offerDownload, saveManifest } from '../results';
import { getParam, setParam } from '../state';
import { $, el } from '../ui/dom';
import { renderLayerErrors } from '../ui/layerErrors';
import { isCancel, ProgressView } from '../ui/progress';
import { taskCell } from '../ui/taskChecks';
import { renderTradeoff } from '../ui/tradeoff';
import { type App, panelError } from './app';
import { fallbackText, formatCatalog, formatStatus, mostlyFallsBack } from './formats';

type Metric = 'ppl' | 'klMean';

/** The "Activations" choices: each a setup of `lab.evaluate`'s `activations` (none: weights only). */
type ActChoice = 'none' | 'tensor' | 'token' | 'static' | 'smoothquant' | 'llmInt8';
const ACT_CHOICES: Record<ActChoice, { text: string; setup: (alpha: number, threshold: number, calibTokens: number) => ActivationSetup | undefined }> = {
  none: { text: 'weights only (f32)', setup: () => undefined },
  tensor: { text: 'W8A8 per-tensor (dynamic)', setup: () => ({ quant: 'int8-tensor' }) },
  token: { text: 'W8A8 per-token (dynamic)', setup: () => ({ quant: 'int8-token' }) },
  static: { text: 'W8A8 static (min-max ranges)', setup: (_a, _t, calibTokens) => ({ quant: 'int8-static', calibTokens }) },
  smoothquant: { text: 'W8A8 SmoothQuant α (per-token)', setup: (alpha, _t, calibTokens) => ({ quant: 'int8-token', smoothquant: alpha, calibTokens }) },
  llmInt8: { text: 'LLM.int8() threshold', setup: (_a, threshold) => ({ quant: 'llm-int8', threshold }) },
};
/** The context of the "size at context" column without a choice: where a KV cache starts to matter next to 100 MB of weights. */
const DEFAULT_SIZE_CTX = 2048;

/** The default protocol: windows of 512 with every position but the first scored, 5 × 511 = 2,555 tokens (≥ 2,048). */
const DEFAULT_CTX = 512;
const DEFAULT_WINDOWS = 5;

const signed = (x: number, digits: number) => `${x >= 0 ? '+' : ''}${x.toFixed(digits)}`;

/** Latest manifest per (source, format, protocol). */
function latest(ms: QuantManifest[]): QuantManifest[] {
  const byKey = new Map<string, QuantManifest>();
  for (const m of ms) byKey.set(`${m.source.sha256}|${m.result.format}|${m.protocol.protocol}|${m.protocol.ctx}|${m.protocol.windows}`, m);
  return [...byKey.values()];
}

export class ComparePanel {
  private root = $('#compare-body');
  private progress: ProgressView;
  private steps = el('ol', undefined, { id: 'compare-steps', class: 'steps' });
  private table = el('table', undefined, { id: 'compare-table' });
  private chart = el('div', undefined, { id: 'compare-chart', class: 'chart' });
  private metric = el('select', undefined, { id: 'compare-metric' });
  private ctxSelect = el('select', undefined, { id: 'compare-ctx' });
  private windowsSelect = el('select', undefined, { id: 'compare-windows' });
  private deviceSelect = el('select', undefined, { id: 'compare-device' });
  private deviceNote = el('p', '', { id: 'compare-device-note', class: 'caption', 'aria-live': 'polite' });
  /** The user picked the device: the adapter report no longer changes it. */
  private devicePicked = false;
  private layerFormat = el('select', undefined, { id: 'compare-layer-format' });
  private layerChart = el('div', undefined, { id: 'compare-layer-errors', class: 'chart' });
  private layerCaption = el('p', '', { id: 'compare-layer-caption', class: 'caption' });
  private runButton = el('button', 'Quantize and evaluate', { type: 'button', id: 'compare-run' });
  private formats = el('fieldset', undefined, { class: 'formats' });
  private presets = el('fieldset', undefined, { class: 'formats', id: 'compare-presets' });
  private tasksBox = el('input', undefined, { type: 'checkbox', id: 'compare-tasks' });
  private tasksFile = el('input', undefined, { type: 'file', id: 'compare-tasks-file', accept: '.json,application/json' });
  private actChoice = el('select', undefined, { id: 'compare-activations' });
  private alpha = el('input', undefined, { id: 'compare-alpha', type: 'number', min: '0', max: '1', step: '0.05', value: '0.5' });
  private threshold = el('input', undefined, { id: 'compare-threshold', type: 'number', min: '0.1', step: '0.5', value: '6' });
  private calibTokens = el('input', undefined, { id: 'compare-calib-tokens', type: 'number', min: '16', step: '16', value: '512' });
  private sizeCtx = el('input', undefined, { id: 'compare-size-ctx', type: 'number', min: '1', step: '1', value: String(DEFAULT_SIZE_CTX) });
  private saved: QuantManifest[] = [];
  private sha: string | null = null;

  constructor(private app: App) {
    this.formats.append(el('legend', 'Formats to compare'));
    for (const c of [64, 128, 256, 512]) this.ctxSelect.append(el('option', String(c), c === DEFAULT_CTX ? { selected: '' } : {}));
    for (const [v, t] of [['1', '1 window'], ['2', '2 windows'], ['4', '4 windows'], ['5', '5 windows'], ['', 'all windows of the text (slow)']]) this.windowsSelect.append(el('option', t, v === String(DEFAULT_WINDOWS) ? { value: v, selected: '' } : { value: v! }));
    const protocol = el('fieldset', undefined, { class: 'protocol' });
    const ctxLabel = el('label', 'Context ');
    ctxLabel.append(this.ctxSelect);
    const winLabel = el('label', 'Windows ');
    winLabel.append(this.windowsSelect);
    for (const [v, t] of [['cpu', 'CPU'], ['webgpu', 'WebGPU']]) this.deviceSelect.append(el('option', t, { value: v! }));
    this.deviceSelect.value = 'cpu';
    this.deviceSelect.addEventListener('change', () => (this.devicePicked = true));
    const deviceLabel = el('label', 'Device ');
    deviceLabel.append(this.deviceSelect);
    document.addEventListener('lab:gpu', (e) => this.defaultDevice((e as CustomEvent<AdapterReport>).detail));
    protocol.append(
      el('legend', 'Evaluation protocol'),
      ctxLabel,
      winLabel,
      deviceLabel,
      this.deviceNote,
      el('p', `The default protocol scores ${DEFAULT_CTX - 1} tokens in each of ${DEFAULT_WINDOWS} windows of ${DEFAULT_CTX} (${DEFAULT_WINDOWS * (DEFAULT_CTX - 1)} tokens), enough to rank formats; each format takes minutes (the table shows the measured rate), and a result is saved per model, format and protocol, so running it again is instant. Shorter protocols are quicker and noisier.`, { class: 'hint', id: 'protocol-note' }),
      el('p', 'How to read ±: each is one standard error. Two formats\' perplexity intervals often overlap because both inherit how hard the text is; that says little about which is better. Δppl ± is paired — computed from the per-token differences with the base on the same tokens (as llama-perplexity --kl-divergence does) — so a Δppl several times its ± is a real loss even when the perplexity intervals overlap.', { class: 'explain', id: 'compare-stats-note' }),
    );
    const tasks = el('fieldset', undefined, { class: 'protocol', id: 'compare-tasks-set' });
    const tasksLabel = el('label', undefined, { for: 'compare-tasks' });
    tasksLabel.append(this.tasksBox, ' Task checks: after the perplexity run, answer the instruct task suite with the base and each format');
    const fileLabel = el('label', 'Suite file (optional, the schema of tasks/instruct-checks.json) ');
    fileLabel.append(this.tasksFile);
    tasks.append(
      el('legend', 'Task checks'),
      tasksLabel,
      fileLabel,
      el('p', 'Perplexity can stay close while a format breaks instruction following. Each task is one chat prompt answered greedily; "valid" is the share of answers that follow the task\'s rule (valid JSON with given keys, one word, a number, stopping, an exact copy), "agree" the share equal to the base\'s answer — as quantlab eval --tasks. About 16 short generations per model: a minute or more each.', { class: 'hint' }),
    );
    const acts = this.activationsSet();
    for (const [v, t] of [['ppl', 'perplexity'], ['klMean', 'KL divergence from the base']]) this.metric.append(el('option', t, { value: v! }));
    const metricLabel = el('label', 'Quality axis ');
    metricLabel.append(this.metric);
    this.metric.addEventListener('change', () => this.renderResults());
    this.runButton.addEventListener('click', () => void this.run());
    const exports = el('div', undefined, { class: 'controls' });
    const json = el('button', 'Export JSON', { type: 'button', id: 'export-json', class: 'secondary' });
    const csv = el('button', 'Export CSV', { type: 'button', id: 'export-csv', class: 'secondary' });
    const clear = el('button', 'Clear saved results', { type: 'button', id: 'clear-results', class: 'secondary' });
    const links = el('span', undefined, { id: 'export-links' });
    json.addEventListener('click', () => links.replaceChildren(offerDownload(new Blob([JSON.stringify(this.rows(), null, 2)], { type: 'application/json' }), 'quantlab-comparison.json')));
    csv.addEventListener('click', () => links.replaceChildren(offerDownload(new Blob([manifestsToCsv(this.rows())], { type: 'text/csv' }), 'quantlab-comparison.csv')));
    clear.addEventListener('click', () => void clearManifests().then(() => this.refresh()));
    exports.append(json, csv, clear, links);
    const host = el('div', undefined, { id: 'compare-progress-host' });
    const runRow = el('div', undefined, { class: 'controls' });
    runRow.append(this.runButton);
    const tableWrap = el('div', undefined, { class: 'table-wrap short compare-wrap', id: 'compare-table-wrap' });
    tableWrap.append(this.table);
    const layerLabel = el('label', 'Per-layer error for ');
    layerLabel.append(this.layerFormat);
    this.layerFormat.addEventListener('change', () => {
      setParam('layers', this.layerFormat.value || null);
      this.renderLayerErrors();
    });
    const layerExplain = el(
      'p',
      'Where does a format lose its quality? One bar per weight matrix the format quantized (file order, coloured by kind): its SQNR — signal power over quantization-noise power, in dB — measured while quantizing. Each 6 dB is about one bit of precision; the shortest bars are the layers to keep in a wider format. Matrices copied unchanged have no error and no bar.',
      { class: 'explain' },
    );
    this.root.append(this.formats, this.presets, protocol, acts, tasks, runRow, host, this.steps, metricLabel, this.chart, tableWrap, exports, el('h3', 'Per-layer error'), layerExplain, layerLabel, this.layerChart, this.layerCaption);
    this.progress = new ProgressView(host, 'compare-progress');
    document.addEventListener('lab:model', () => void this.showFallbacks());
    let timer = 0;
    window.addEventListener('resize', () => {
      clearTimeout(timer);
      timer = window.setTimeout(() => this.renderResults(), 150);
    });
    void this.refresh();
  }

  /**
   * One checkbox per format the core's registry offers in Compare, by canonical name, ticked as
   * the URL (canonical or short names) or the registry's default pick says.
   */
  setFormats(): void {
    const offered = formatCatalog.offered();
    const param = getParam('compare');
    const defaults = offered.filter((s) => s.compare === 'defaultPick').map((s) => s.canonical);
    const picked = new Set(param === null ? defaults : param.split(',').filter(Boolean).map((n) => formatCatalog.canonical(n)));
    const boxes = offered.map((s) => {
      const label = el('label', undefined, { title: `${s.canonical}: ${s.bitsPerWeight.toFixed(2)} bits/weight${s.alias === s.canonical ? '' : ` (also accepted as "${s.alias}")`}`, 'data-format': s.canonical });
      const box = el('input', undefined, { type: 'checkbox', value: s.canonical, name: 'compare-format' });
      box.checked = picked.has(s.canonical);
      box.addEventListener('change', () => setParam('compare', this.pickedFormats().join(',')));
      label.append(box, ` ${s.canonical}`, el('small', '', { class: 'fallback' }));
      return label;
    });
    this.formats.replaceChildren(el('legend', 'Formats to compare'), ...boxes, el('p', '', { class: 'hint', id: 'compare-fallback-note', hidden: '' }));
    void this.showFallbacks();
  }

  /**
   * Beside each offered format, how many of the open model's weight matrices it cannot take
   * (their rows do not split into its blocks) and what they fall back to: a result for such a
   * format mostly measures its fallback.
   */
  private async showFallbacks(): Promise<void> {
    const generation = this.app.generation;
    let most = 0;
    for (const label of this.formats.querySelectorAll<HTMLLabelElement>('label[data-format]')) {
      const status = await formatStatus(this.app, label.dataset.format!);
      if (generation !== this.app.generation) return;
      const note = label.querySelector<HTMLElement>('.fallback')!;
      const f = status.kind === 'valid' ? status.fallbacks : null;
      note.textContent = f?.fallbacks ? ` — ${fallbackText(f)}` : '';
      note.classList.toggle('warn', f !== null && mostlyFallsBack(f));
      if (f) Object.assign(label.dataset, { fallbacks: String(f.fallbacks), matrices: String(f.matrices) });
      if (f && mostlyFallsBack(f)) most++;
    }
    const explain = this.formats.querySelector<HTMLElement>('#compare-fallback-note');
    if (!explain) return;
    explain.hidden = most === 0;
    explain.textContent = `${most} of these formats cannot split most of this model's weight rows into their blocks (the rows are not a multiple of the block length), so those matrices are stored in the fallback type named beside the format, and its result mostly measures that type.`;
  }

  /** One checkbox per llama.cpp file type (the core's list), none ticked unless the URL names them. */
  setPresets(presets: PresetInfo[]): void {
    const picked = new Set((getParam('presets') ?? '').split(',').filter(Boolean));
    const boxes = presets.map((p) => {
      const label = el('label', undefined, { title: `llama-quantize's ${p.name.toUpperCase()}: ${p.defaultType} except where its per-tensor rules pick a wider type` });
      const box = el('input', undefined, { type: 'checkbox', value: p.name, name: 'compare-preset' });
      box.checked = picked.has(p.name);
      box.addEventListener('change', () => setParam('presets', this.picked('compare-preset').join(',') || null));
      label.append(box, ` ${p.name}`);
      return label;
    });
    this.presets.replaceChildren(el('legend', "llama.cpp presets (llama-quantize's per-tensor types)"), ...boxes);
  }

  private pickedFormats(): string[] {
    return this.picked('compare-format');
  }

  private picked(name: string): string[] {
    return [...this.root.querySelectorAll<HTMLInputElement>(`input[name=${name}]:checked`)].map((b) => b.value);
  }

  /** The "Activations" choice and its parameters, and the context of the size column. */
  private activationsSet(): HTMLFieldSetElement {
    for (const [v, c] of Object.entries(ACT_CHOICES)) this.actChoice.append(el('option', c.text, { value: v }));
    const set = el('fieldset', undefined, { class: 'protocol', id: 'compare-act-set' });
    const label = (text: string, input: HTMLElement) => {
      const l = el('label', text);
      l.append(input);
      return l;
    };
    this.sizeCtx.addEventListener('input', () => this.renderResults());
    set.append(
      el('legend', 'Activations and memory'),
      label('Activations ', this.actChoice),
      label(' SmoothQuant α ', this.alpha),
      label(' LLM.int8() threshold ', this.threshold),
      label(' Calibration tokens ', this.calibTokens),
      label(' Size at context ', this.sizeCtx),
      el('p', 'Weights only quantizes the weights and computes in f32. W8A8 also rounds every linear layer\'s input to INT8 (simulated, as quantlab eval --activations does): per-tensor takes one scale from the largest value a product reads, per-token one per position, static one per layer from ranges calibrated on Moby-Dick chapters 4+ (never the eval chapters). SmoothQuant first moves activation outliers into the weights by per-channel factors (strength α) folded into the norms, then quantizes the formats again from the smoothed model. LLM.int8() keeps the columns holding a value at or above the threshold in float and multiplies the rest in INT8 with int8 vector-wise weights. Each format gets a second row, labelled with its activations, beside its weights-only row. "Size at context" adds the KV cache of that many positions (the row\'s cache type) to the weights.', { class: 'hint' }),
    );
    return set;
  }

  /** The activation setup chosen here (undefined: weights only). */
  private activationSetup(): ActivationSetup | undefined {
    const choice = ACT_CHOICES[this.actChoice.value as ActChoice] ?? ACT_CHOICES.none;
    return choice.setup(Number(this.alpha.value), Number(this.threshold.value), Number(this.calibTokens.value));
  }

  /** The evaluation protocol chosen here (the Methods panel evaluates with it too). */
  protocol(): { ctx: number; maxWindows: number | null } {
    const windows = this.windowsSelect.value;
    return { ctx: Number(this.ctxSelect.value), maxWindows: windows ? Number(windows) : null };
  }

  /**
   * The device select's default from the page's adapter report: WebGPU on a hardware adapter, the
   * CPU on a software fallback (SwiftShader, lavapipe: slower than the CPU, as Generate's auto
   * probe finds) or without WebGPU. A choice the user made stays.
   */
  private defaultDevice(report: AdapterReport): void {
    const hardware = report.available && report.isFallbackAdapter === false && report.computeCheck?.passed !== false;
    if (!this.devicePicked) this.deviceSelect.value = hardware ? 'webgpu' : 'cpu';
    this.deviceSelect.dataset.default = hardware ? 'webgpu' : 'cpu';
    this.deviceSelect.title = !report.available ? `WebGPU is unavailable (${report.reason}): WebGPU runs fall back to the CPU` : hardware ? 'A hardware WebGPU adapter: evaluation defaults to WebGPU' : 'The WebGPU adapter is a software fallback, slower than the CPU: evaluation defaults to the CPU';
  }

  /** The saved results, for the worker's cache check. */
  savedManifests(): QuantManifest[] {
    return this.saved;
  }

  /** The rows shown: the latest result per format for the open model (all models before a run). */
  private rows(): QuantManifest[] {
    const all = latest(this.saved);
    return this.sha ? all.filter((m) => m.source.sha256 === this.sha) : all;
  }

  async refresh(): Promise<void> {
    try {
      this.saved = await loadManifests();
    } catch (error) {
      panelError($('#compare-panel'), `Saved results are unavailable: ${(error as Error).message}`);
    }
    this.renderResults();
  }

  async run(): Promise<void> {
    const formats = this.pickedFormats();
    const presets = this.picked('compare-preset');
    const labels = [...formats, ...presets.map(presetLabel)];
    if (labels.length === 0) return panelError($('#compare-panel'), 'Pick at least one format or preset.');
    panelError($('#compare-panel'), null);
    let tasks: TaskSuiteOption = this.tasksBox.checked;
    const file = this.tasksFile.files?.[0];
    if (tasks && file) tasks = { json: await file.text(), label: file.name };
    const activations = this.activationSetup();
    const stepNames = (f: string) => [`Quantize ${f}`, `Evaluate ${f} against the base`, ...(activations ? [`Evaluate ${f} with quantized activations`] : []), ...(tasks ? [`Task checks: base and ${f}`] : [])];
    const per = stepNames('').length;
    const bars = new Map<number, HTMLProgressElement>();
    this.steps.replaceChildren(
      ...labels.flatMap((f, i) =>
        stepNames(f).map((label, j) => {
          const li = el('li', undefined, { 'data-step': String(per * i + j) });
          const bar = el('progress', undefined, { max: '1', value: '0', 'aria-label': label });
          bars.set(per * i + j, bar);
          li.append(el('span', label), bar);
          return li;
        }),
      ),
    );
    const { ctx, maxWindows } = this.protocol();
    const recipes = [...formats, ...presets.map((target) => ({ target, mix: 'llama.cpp' as const }))];
    const title = `Comparing ${labels.length} formats`;
    const listener = this.progress.listener(title);
    this.runButton.disabled = true;
    const onProgress = (phase: Phase, loaded: number, total: number, detail?: StepEvent) => {
      listener(phase, loaded, total);
      const step = detail;
      if (!step) return;
      if (step.deviceNote) {
        this.deviceNote.textContent = step.deviceNote;
        this.deviceNote.classList.add('notice');
      }
      for (const [i, bar] of bars) if (i < step.step) bar.value = 1;
      const bar = bars.get(step.step);
      if (bar && total > 0) bar.value = loaded / total;
      bar?.parentElement?.setAttribute('aria-current', 'step');
      if (step.manifest) {
        this.sha = step.manifest.source.sha256;
        if (step.cached) {
          bar?.parentElement?.setAttribute('data-cached', '');
          this.renderResults();
        } else void saveManifest(step.manifest).then(() => this.refresh());
      }
    };
    const protocol = { ctx, windows: maxWindows, saved: this.saved };
    const device = this.deviceSelect.value as EvalDevice;
    // Test/diagnostic hook: `data-lose-device-after="N"` on #compare-body loses the WebGPU device after N positions of a row (0: before it).
    const lose = this.root.dataset.loseDeviceAfter;
    const loseDeviceAfter = device === 'webgpu' && lose !== undefined ? Number(lose) : undefined;
    this.deviceNote.textContent = device === 'webgpu' ? 'Evaluating on WebGPU.' : '';
    this.deviceNote.classList.remove('notice');
    try {
      await this.progress.track(title, abortable((signal) => this.app.lab.evaluate({ formats: recipes, protocol, tasks, device, loseDeviceAfter, ...(activations ? { activations } : {}) }, { signal, onProgress })));
      for (const bar of bars.values()) bar.value = 1;
      this.root.dataset.done = String(Date.now());
    } catch (error) {
      panelError($('#compare-panel'), isCancel(error) ? 'Comparison cancelled; finished formats are kept.' : error);
    } finally {
      this.runButton.disabled = false;
      await this.refresh();
    }
  }

  renderResults(): void {
    const rows = this.rows().sort((a, b) => a.result.bitsPerWeight - b.result.bitsPerWeight);
    // The optional column: shown once a row has task checks; the base's come with any of them.
    const withTasks = rows.find((m) => m.result.tasks);
    const head = el('tr');
    const sizeCtx = Math.max(1, Math.round(Number(this.sizeCtx.value) || DEFAULT_SIZE_CTX));
    // Weights plus the KV cache of `sizeCtx` positions (the base's reference runs with an f32 cache).
    const atCtx = (bytes: number, perToken: number | undefined) => (perToken === undefined ? el('td', '—') : el('td', formatBytes(bytes + sizeCtx * perToken), { 'data-bytes': String(bytes + sizeCtx * perToken) }));
    const f32PerToken = rows.find((m) => (m.protocol.kvCache ?? 'f32') === 'f32' && m.result.kvBytesPerToken !== undefined)?.result.kvBytesPerToken;
    for (const h of ['Format', 'Bits/ weight', 'Size', `Size at ctx ${sizeCtx} (weights + KV)`, 'Perplexity ± s.e.', 'Δppl vs base ± s.e. (paired)', 'KL (mean) ± s.e.', 'Top-1 agreement ± s.e.', 'Tokens/s', 'Protocol', ...(withTasks ? ['Task checks'] : [])]) head.append(el('th', h, { scope: 'col' }));
    const thead = el('thead');
    thead.append(head);
    const tbody = el('tbody');
    const base = rows[0];
    if (base) {
      const tr = el('tr', undefined, { 'data-format': 'base', 'data-ppl': String(base.result.basePpl) });
      tr.append(el('td', `base (${base.source.format} checkpoint dequantized)`), el('td', base.source.bitsPerWeight.toFixed(3)), el('td', formatBytes(base.source.bytes)), atCtx(base.source.bytes, f32PerToken), el('td', base.result.basePpl.toFixed(3)), el('td', '—'), el('td', '0'), el('td', '100%'), el('td', '—'), el('td', `ctx ${base.protocol.ctx} × ${base.protocol.windows}`, { class: 'protocol' }));
      if (withTasks) tr.append(taskCell(withTasks.result.tasks, 'base'));
      tbody.append(tr);
    }
    for (const m of rows) {
      const r = m.result;
      const p = r.paired;
      const tr = el('tr', undefined, { 'data-format': r.format, 'data-device': m.protocol.device ?? 'cpu', 'data-weight-bytes': String(r.bytes), 'data-ppl': String(r.ppl), 'data-base-ppl': String(r.basePpl), 'data-kl': String(r.klMean ?? ''), 'data-bpw': String(r.bitsPerWeight) });
      if (p) Object.assign(tr.dataset, { deltaPpl: String(p.deltaPpl), deltaPplStderr: String(p.deltaPplStderr), klStderr: String(p.klStderr), top1Stderr: String(p.top1Stderr) });
      tr.append(
        formatCell(m),
        el('td', r.bitsPerWeight.toFixed(3)),
        el('td', formatBytes(r.bytes)),
        atCtx(r.bytes, r.kvBytesPerToken),
        measure(r.ppl.toFixed(3), r.pplStderr.toFixed(2)),
        measure(p ? signed(p.deltaPpl, 3) : signed(r.ppl - r.basePpl, 3), p?.deltaPplStderr.toFixed(3), p ? { title: `PPL(Q)/PPL(base) = ${p.pplRatio.toFixed(4)} ± ${p.pplRatioStderr.toFixed(4)}; ln ratio ${signed(p.lnPplRatio, 5)} ± ${p.lnPplRatioStderr.toFixed(5)}` } : {}),
        measure(p ? p.klMean.toExponential(3) : r.klMean?.toExponential(3) ?? '—', p?.klStderr.toExponential(1)),
        measure(p ? `${(100 * p.top1).toFixed(1)}%` : r.top1Agreement === undefined ? '—' : `${(100 * r.top1Agreement).toFixed(1)}%`, p ? `${(100 * p.top1Stderr).toFixed(1)}%` : undefined),
        el('td', r.tokensPerSec?.toFixed(1) ?? '—'),
        el('td', `ctx ${m.protocol.ctx} × ${m.protocol.windows}, ${formatCount(m.protocol.tokensScored)} tokens, ${m.protocol.device === 'webgpu' ? 'WebGPU' : 'CPU'}`, { class: 'protocol', title: `${m.protocol.windows} window(s) of ${m.protocol.ctx} tokens, ${m.protocol.tokensScored} tokens scored, on ${m.protocol.device === 'webgpu' ? `WebGPU${m.protocol.adapter ? ` (${m.protocol.adapter})` : ''}` : 'the CPU'}` }),
      );
      if (withTasks) tr.append(taskCell(r.tasks, 'quantized'));
      tbody.append(tr);
    }
    this.table.replaceChildren(el('caption', 'Measured formats (latest run per format and protocol)', { class: 'sr-only' }), thead, tbody);
    this.renderChart(rows);
    const withErrors = rows.filter((m) => m.result.tensorErrors?.length).map((m) => m.result.format);
    const wanted = this.layerFormat.value || getParam('layers') || this.app.format;
    this.layerFormat.replaceChildren(...withErrors.map((f) => el('option', f, { value: f })));
    if (withErrors.length) this.layerFormat.value = withErrors.includes(wanted) ? wanted : withErrors[0]!;
    this.renderLayerErrors();
  }

  private renderLayerErrors(): void {
    const m = this.rows().find((r) => r.result.format === this.layerFormat.value);
    const errors = m?.result.tensorErrors;
    if (!m || !errors) {
      this.layerChart.replaceChildren();
      delete this.layerChart.dataset.matrices;
      this.layerCaption.textContent = 'Run a comparison to see each weight matrix\'s error under a format.';
      return;
    }
    const format = m.result.format;
    renderLayerErrors(this.layerChart, errors.map((e) => ({ name: e.name, sqnr: e.sqnrDb })), format, this.layerChart.clientWidth, 260);
    const bars = errors.filter((e) => typeof e.sqnrDb === 'number' && Number.isFinite(e.sqnrDb));
    const worst = [...bars].sort((a, b) => (a.sqnrDb as number) - (b.sqnrDb as number))[0];
    const stored = new Map<string, number>();
    for (const e of errors) stored.set(e.to, (stored.get(e.to) ?? 0) + 1);
    this.layerCaption.textContent =
      `${format}: ${bars.length} of ${errors.length} weight matrices quantized (stored as ${[...stored].map(([t, n]) => `${n} × ${t}`).join(', ')})` +
      (worst ? ` · lowest SQNR ${(worst.sqnrDb as number).toFixed(2)} dB in ${worst.name}` : '');
    this.layerCaption.dataset.quantized = String(bars.length);
    this.layerCaption.dataset.tensors = String(errors.length);
  }

  private renderChart(rows: QuantManifest[]): void {
    if (rows.length === 0) {
      this.chart.replaceChildren(el('p', 'No results yet: pick formats and press "Quantize and evaluate".', { class: 'caption' }));
      delete this.chart.dataset.frontier;
      return;
    }
    const metric = this.metric.value as Metric;
    const points = rows.map((m) => ({ label: m.result.format, bitsPerWeight: m.result.bitsPerWeight, loss: metric === 'ppl' ? m.result.ppl : m.result.klMean ?? NaN, ...(m.result.recipe ? { kind: 'recipe' as const } : {}) }));
    if (metric === 'ppl') points.push({ label: `base (${rows[0]!.source.format} dequantized)`, bitsPerWeight: rows[0]!.source.bitsPerWeight, loss: rows[0]!.result.basePpl });
    const yLabel = metric === 'ppl' ? 'perplexity (lower is better)' : 'KL from base (lower is better)';
    const frontier = renderTradeoff(this.chart, points, { yLabel, log: metric !== 'ppl', width: this.chart.clientWidth });
    this.chart.dataset.frontier = JSON.stringify(frontier);
  }
}

/** A measured value over its standard error (the ± line is left out where there is none). */
function measure(value: string, stderr: string | undefined, attrs: Record<string, string> = {}): HTMLTableCellElement {
  const td = el('td', value, attrs);
  if (stderr !== undefined) td.append(el('span', `± ${stderr}`, { class: 'se' }));
  return td;
}

/** The row's name, its fallbacks and, where the types are mixed (a preset), how many matrices of each type. */
function formatCell(m: QuantManifest): HTMLTableCellElement {
  const r = m.result;
  const td = el('td', r.format, { title: r.quantizeSummary });
  const types = r.byType ?? [];
  const matrices = types.reduce((n, t) => n + t.tensors, 0);
  if (r.fallbacks && r.mix !== 'llama.cpp') {
    // Beside the name, not only in the tooltip: such a row mostly measures the fallback type.
    const note = el('span', `${formatCount(r.fallbacks)}${matrices ? ` of ${formatCount(matrices)}` : ''} matrices fell back`, { class: 'fallback' });
    if (2 * r.fallbacks > matrices) note.classList.add('warn');
    td.append(note);
    td.dataset.fallbacks = String(r.fallbacks);
  }
  if (types.length > 1) {
    td.append(el('small', types.map((t) => `${t.tensors} × ${t.type}`).join(', '), { class: 'types' }));
    td.dataset.types = JSON.stringify(Object.fromEntries(types.map((t) => [t.type, t.tensors])));
  }
  if (r.recipe) {
    td.append(el('small', `recipe: ${r.recipe.formats.join(' + ')}, ${r.recipe.tensors} tensors listed`, { class: 'types' }));
    td.dataset.recipe = r.recipe.sha256;
  }
  if (r.activations) {
    td.dataset.activations = r.activations.quant;
    if (r.activations.calibration) td.title += `\nactivations: ${r.activations.label}; calibration text ${r.activations.calibration}`;
  }
  if (r.method?.calibration) td.title += `\n${r.method.name} calibrated on ${r.method.calibration.text} (${r.method.calibration.tokens} tokens) in ${r.method.seconds.toFixed(1)} s`;
  return td;
}
