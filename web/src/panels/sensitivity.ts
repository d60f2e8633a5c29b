// Panel 6c: the sensitivity scan and the recipe builder. Quantize one unit (a weight matrix, or a
// layer's matrices) at a time to a format — or to each of several, comma-separated — and measure
// its KL to the base on calibration text (the core's `quantlab sensitivity` code path) → a
// per-layer chart and a ranked table of the first format; then a recipe for a size budget (one
// format per unit among the scanned ones and the high one, the least sum of KLs within the
// budget, as `--target-… --recipe-out`), downloadable as recipe.json and evaluated into Compare,
// where it is marked as a recipe.
import * as Plot from '@observablehq/plot';
import { abortable } from '../api/calls';
import { formatBytes } from '../format';
import type { RecipeAdvice, RecipeBudget, ScanReport, ScanUnit } from '../messages';
import { offerDownload, saveManifest } from '../results';
import { getParam, setParam } from '../state';
import { $, el } from '../ui/dom';
import { tensorKind } from '../ui/layerErrors';
import { isCancel, ProgressView } from '../ui/progress';
import { type App, panelError } from './app';
import type { ComparePanel } from './compare';

const TOKEN_CHOICES = [1024, 512, 256, 128, 64, 32];
/** The lab's default: a quarter of the CLI's 1024, so a layer scan of the default model takes minutes, not tens. */
const DEFAULT_TOKENS = 256;
const BUDGET_KINDS = ['bpw', 'mib', 'format'] as const;
type BudgetKind = (typeof BUDGET_KINDS)[number];

/** URL state: `sens=FORMAT:UNIT:TOKENS`, `recipe=HIGH:KIND:VALUE`. */
function readState(): { format: string; unit: ScanUnit; tokens: number; high: string; kind: BudgetKind; value: string } {
  const [format, unit, tokens] = (getParam('sens') ?? '').split(':');
  const [high, kind, value] = (getParam('recipe') ?? '').split(':');
  return {
    // Two formats by default: the recipe then chooses per unit among q4_0, q5_0 and q8_0, which is what beat uniform q5_0 (BENCHMARKS.md).
    format: format || 'q4_0,q5_0',
    unit: unit === 'tensor' ? 'tensor' : 'layer',
    tokens: TOKEN_CHOICES.includes(Number(tokens)) ? Number(tokens) : DEFAULT_TOKENS,
    high: high || 'q8_0',
    kind: BUDGET_KINDS.find((k) => k === kind) ?? 'format',
    value: value || 'q5_0',
  };
}

export class SensitivityPanel {
  private root = $('#sensitivity-body');
  private format = el('input', undefined, { id: 'sens-format', list: 'format-list', spellcheck: 'false', autocomplete: 'off' });
  private unit = el('select', undefined, { id: 'sens-unit' });
  private tokens = el('select', undefined, { id: 'sens-tokens' });
  private units = el('input', undefined, { id: 'sens-units', placeholder: 'all units', spellcheck: 'false' });
  private runButton = el('button', 'Run the scan', { type: 'button', id: 'sens-run' });
  private summary = el('p', '', { id: 'sens-summary', class: 'caption', 'aria-live': 'polite' });
  private chart = el('div', undefined, { id: 'sens-chart', class: 'chart' });
  private table = el('table', undefined, { id: 'sens-table' });
  private high = el('input', undefined, { id: 'sens-high', list: 'format-list', spellcheck: 'false', autocomplete: 'off' });
  private budgetKind = el('select', undefined, { id: 'sens-budget-kind' });
  private budget = el('input', undefined, { id: 'sens-budget', spellcheck: 'false' });
  private recommendButton = el('button', 'Recommend a recipe', { type: 'button', id: 'sens-recommend', disabled: '' });
  private recipe = el('div', undefined, { id: 'sens-recipe', 'aria-live': 'polite' });
  private evaluateButton = el('button', 'Evaluate (adds it to Compare)', { type: 'button', id: 'sens-evaluate', hidden: '' });
  private progress: ProgressView;
  private report: ScanReport | null = null;
  private advice: RecipeAdvice | null = null;

  constructor(
    private app: App,
    private compare: ComparePanel,
  ) {
    const s = readState();
    this.format.value = s.format;
    for (const [v, t] of [['layer', 'a layer at a time (its 7 matrices)'], ['tensor', 'one weight matrix at a time']] as const) this.unit.append(el('option', t, { value: v }));
    this.unit.value = s.unit;
    for (const n of TOKEN_CHOICES) this.tokens.append(el('option', `${n} tokens`, { value: String(n) }));
    this.tokens.value = String(s.tokens);
    this.high.value = s.high;
    for (const [v, t] of [['bpw', 'bits per weight'], ['mib', 'MiB of weight matrices'], ['format', 'the size of a format everywhere']] as const) this.budgetKind.append(el('option', t, { value: v }));
    this.budgetKind.value = s.kind;
    this.budget.value = s.value;
    const save = () => {
      setParam('sens', `${this.format.value.trim()}:${this.unit.value}:${this.tokens.value}`);
      setParam('recipe', `${this.high.value.trim()}:${this.budgetKind.value}:${this.budget.value.trim()}`);
    };
    for (const c of [this.format, this.unit, this.tokens, this.high, this.budgetKind, this.budget]) c.addEventListener('change', save);
    this.runButton.addEventListener('click', () => void this.run());
    this.recommendButton.addEventListener('click', () => void this.recommend());
    this.evaluateButton.addEventListener('click', () => void this.evaluate());
    const label = (text: string, control: HTMLElement) => {
      const l = el('label', text);
      l.append(control);
      return l;
    };
    const scan = el('fieldset', undefined, { class: 'protocol', id: 'sens-scan' });
    scan.append(
      el('legend', 'Scan'),
      label('Formats ', this.format),
      label('Unit ', this.unit),
      label('Calibration ', this.tokens),
      label('Only units ', this.units),
      el('p', 'Each unit is quantized alone, everything else kept at the base, and its KL divergence to the base is measured on Moby-Dick chapters 4+ (never the eval chapters). The whole model at the format is measured too, to compare with the sum of the units. Formats: one, or several comma-separated (q4_0,q5_0), each scanned in turn so the recipe can put each unit in any of them; the table shows the first. Only units: names from the table, comma-separated, for a quick look.', { class: 'hint' }),
    );
    const runRow = el('div', undefined, { class: 'controls' });
    runRow.append(this.runButton);
    const builder = el('fieldset', undefined, { class: 'protocol', id: 'sens-builder' });
    builder.append(
      el('legend', 'Recipe builder'),
      label('Also allow ', this.high),
      label('Budget ', this.budgetKind),
      label('Target ', this.budget),
      el('p', 'Each unit gets one of the scanned formats or the one allowed besides (taken as lossless unless scanned), the mix with the least sum of unit KLs within the budget (an exact multiple-choice knapsack): insensitive units can go below the budget\'s format to pay for sensitive ones above it. The KL is assumed additive over units: evaluate the recipe rather than trust the prediction. Evaluate gives the tensors a partial scan left out of the recipe its default format, the first scanned (as `quantlab eval --pure --recipe`).', { class: 'hint' }),
    );
    const recipeRow = el('div', undefined, { class: 'controls' });
    recipeRow.append(this.recommendButton, this.evaluateButton);
    const host = el('div', undefined, { id: 'sens-progress-host' });
    const tableWrap = el('div', undefined, { class: 'table-wrap short' });
    tableWrap.append(this.table);
    this.root.append(scan, runRow, host, this.summary, this.chart, tableWrap, builder, recipeRow, this.recipe);
    this.progress = new ProgressView(host, 'sens-progress');
    this.chart.append(el('p', 'Run a scan to see each unit\'s KL per layer.', { class: 'caption' }));
    document.addEventListener('lab:model', () => {
      $('#sensitivity-panel').hidden = false;
      this.report = null;
      this.advice = null;
      this.recommendButton.disabled = true;
      this.evaluateButton.hidden = true;
    });
  }

  async run(): Promise<void> {
    panelError($('#sensitivity-panel'), null);
    const format = this.format.value.trim();
    const units = this.units.value.split(',').map((u) => u.trim()).filter(Boolean);
    const title = `Sensitivity to ${format}`;
    this.runButton.disabled = true;
    delete this.root.dataset.done;
    try {
      const options = { unit: this.unit.value as ScanUnit, tokens: Number(this.tokens.value), units: units.length ? units : null, dataUrl: new URL('data/moby-dick/', location.href).href };
      this.report = await this.progress.track(title, abortable((signal) => this.app.lab.sensitivity(format, { ...options, signal, onProgress: this.progress.listener(title) })));
      this.show(this.report);
      this.recommendButton.disabled = false;
      this.root.dataset.done = String(Date.now());
    } catch (error) {
      panelError($('#sensitivity-panel'), isCancel(error) ? 'Sensitivity scan cancelled.' : error);
      this.root.dataset.cancelled = String(isCancel(error));
    } finally {
      this.runButton.disabled = false;
    }
  }

  private show(r: ScanReport): void {
    const sum = r.units.reduce((a, u) => a + u.kl, 0);
    this.summary.textContent = `${r.units.length} ${r.unit} units of the model at ${r.format}, ${r.windows} window(s) of ${r.ctx} tokens (${r.tokens_scored} scored). All matrices at ${r.format}: KL ${r.uniform.kl.toExponential(3)} ± ${r.uniform.kl_stderr.toExponential(1)}; sum of the scanned units' KLs ${sum.toExponential(3)}.`;
    const head = el('tr');
    for (const h of ['Rank', 'Unit', 'KL ± s.e.', 'Δln ppl ± s.e.', 'Top-1', 'Size']) head.append(el('th', h, { scope: 'col' }));
    const thead = el('thead');
    thead.append(head);
    const tbody = el('tbody');
    r.units.forEach((u, i) => {
      const tr = el('tr', undefined, { 'data-unit': u.unit, 'data-kl': String(u.kl), 'data-bytes': String(u.bytes) });
      tr.append(el('td', String(i + 1)), el('td', u.unit, { title: u.tensors.join('\n') }), el('td', `${u.kl.toExponential(3)} ± ${u.kl_stderr.toExponential(1)}`), el('td', `${u.delta_ln_ppl >= 0 ? '+' : ''}${u.delta_ln_ppl.toFixed(4)} ± ${u.delta_ln_ppl_stderr.toFixed(4)}`), el('td', `${(100 * u.top1).toFixed(1)}%`), el('td', formatBytes(u.bytes)));
      tbody.append(tr);
    });
    this.table.replaceChildren(el('caption', `Units ranked by KL to the base under ${r.format}`, { class: 'sr-only' }), thead, tbody);
    this.renderChart(r);
  }

  /** KL per layer, one series per tensor kind (a layer scan: one series); units outside the blocks are in the table only. */
  private renderChart(r: ScanReport): void {
    const data = r.units.flatMap((u) => {
      const { block, kind } = tensorKind(u.unit);
      const layer = /^blk\.(\d+)$/.exec(u.unit);
      if (layer) return [{ layer: Number(layer[1]), kl: u.kl, kind: 'whole layer', unit: u.unit }];
      return block === null ? [] : [{ layer: block, kl: u.kl, kind, unit: u.unit }];
    });
    data.sort((a, b) => a.layer - b.layer);
    if (data.length === 0) {
      this.chart.replaceChildren(el('p', 'No block units scanned: see the table.', { class: 'caption' }));
      return;
    }
    const chart = Plot.plot({
      width: Math.max(300, this.chart.clientWidth),
      height: 280,
      marginLeft: 64,
      x: { label: 'layer', grid: true },
      y: { label: `KL to the base, that unit at ${r.format}`, grid: true, type: 'log' },
      color: { legend: true, type: 'categorical' },
      marks: [Plot.line(data, { x: 'layer', y: 'kl', stroke: 'kind' }), Plot.dot(data, { x: 'layer', y: 'kl', fill: 'kind', r: 3, title: (d) => `${d.unit}: KL ${d.kl.toExponential(3)}` })],
    });
    chart.setAttribute('role', 'img');
    chart.setAttribute('aria-label', `KL per layer under ${r.format} for ${data.length} units; highest: ${r.units.slice(0, 3).map((u) => u.unit).join(', ')}`);
    this.chart.replaceChildren(chart);
    this.chart.dataset.points = String(data.length);
  }

  private budgetOf(): RecipeBudget {
    const kind = this.budgetKind.value as BudgetKind;
    const value = this.budget.value.trim();
    if (kind === 'format') return { targetFormat: value };
    const x = Number(value);
    if (!(Number.isFinite(x) && x > 0)) throw new Error(`The target must be a positive number, got "${value}".`);
    return kind === 'bpw' ? { bitsPerWeight: x } : { budgetBytes: Math.floor(x * 2 ** 20) };
  }

  async recommend(): Promise<void> {
    panelError($('#sensitivity-panel'), null);
    this.evaluateButton.hidden = true;
    try {
      const advice = await this.app.lab.recommendRecipe(this.budgetOf(), { highFormat: this.high.value.trim() });
      this.advice = advice;
      const r = this.report!;
      const list = el('ul', undefined, { id: 'sens-promoted' });
      const base = advice.recipe.default.format;
      for (const c of advice.choices.filter((c) => c.format !== base)) list.append(el('li', `${c.unit}: ${c.format}`, { 'data-format': c.format }));
      const link = offerDownload(new Blob([advice.recipe_json], { type: 'application/json' }), 'recipe.json');
      link.id = 'sens-download';
      link.textContent = 'Download recipe.json';
      const mix = advice.formats.filter((f) => f.units > 0).map((f) => `${f.units} at ${f.format}`).join(', ');
      const uniform = [r, ...r.other_scans].map((s) => `${s.format} ${s.uniform.kl.toExponential(3)}`).join(', ');
      const text = `${mix} (of ${r.units.length} units; listed below: those not at ${base}): ${formatBytes(advice.bytes)} of weight matrices (${advice.bits_per_weight.toFixed(3)} bits/weight) within ${formatBytes(advice.budget_bytes)}; predicted KL ${advice.predicted_kl.toExponential(3)} (the sum of the units' KLs at their formats; the whole model measured at ${uniform}).`;
      const p = el('p', text, { id: 'sens-recipe-summary', 'data-bytes': String(advice.bytes), 'data-budget': String(advice.budget_bytes) });
      this.recipe.replaceChildren(p, list, link);
      this.evaluateButton.hidden = false;
    } catch (error) {
      panelError($('#sensitivity-panel'), error);
    }
  }

  async evaluate(): Promise<void> {
    const advice = this.advice;
    if (!advice) return;
    panelError($('#sensitivity-panel'), null);
    this.evaluateButton.disabled = true;
    const { ctx, maxWindows } = this.compare.protocol();
    const title = `Evaluating ${advice.recipe.name ?? 'the recipe'}`;
    try {
      const manifest = await this.progress.track(title, abortable((signal) => this.app.lab.evaluateRecipe(advice.recipe_json, { ctx, windows: maxWindows, saved: this.compare.savedManifests() }, { signal, onProgress: this.progress.listener(title) })));
      await saveManifest(manifest);
      await this.compare.refresh();
      this.recipe.dataset.evaluated = manifest.result.format;
    } catch (error) {
      panelError($('#sensitivity-panel'), isCancel(error) ? 'Evaluation cancelled.' : error);
    } finally {
      this.evaluateButton.disabled = false;
    }
  }
}
