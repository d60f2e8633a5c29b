// Panel 6b: pick a format or llama.cpp preset, a method (the core's list and its support rules,
// no names kept here) and calibration text; run → calibrate, quantize and evaluate against the
// base with Compare's protocol, saved and shown as a Compare row; then export the run as a file
// or as a Hugging Face checkpoint (GPTQ/AWQ layouts) with the method's codes.
import { abortable } from '../api/calls';
import type { Recipe } from '../api/lab';
import type { CalibSource, FormatInfo, HfLayout, MethodInfo, MethodName, PlannedType, PresetInfo, QuantManifest, TypeMix } from '../messages';
import { offerDownload, saveManifest } from '../results';
import { $, el } from '../ui/dom';
import { isCancel, ProgressView } from '../ui/progress';
import { type App, panelError } from './app';
import type { ComparePanel } from './compare';
import { fallbackText, formatStatus } from './formats';
import { LayerErrorView } from './layer-error';

/** Token counts offered for calibration: the CLI's default (4096) and smaller, quicker runs. */
const TOKEN_CHOICES = [4096, 2048, 1024, 512, 256, 128];
const DEFAULT_TOKENS = 4096;

const describeMethod: Record<MethodInfo['calibration'], string> = {
  none: 'no calibration',
  activations: 'one calibration run of the model, cached per model, text and tokens',
  layerSequential: 'calibrated layer by layer on the already-quantized earlier layers',
};

interface TargetChoice {
  target: string;
  mix: TypeMix;
  label: string;
}

export class MethodsPanel {
  private root = $('#methods-body');
  private targetSelect = el('select', undefined, { id: 'methods-target' });
  private methodBox = el('fieldset', undefined, { id: 'methods-method', class: 'formats' });
  private sourceSelect = el('select', undefined, { id: 'methods-calib-source' });
  private textArea = el('textarea', undefined, { id: 'methods-calib-text', rows: '4', placeholder: 'Paste calibration text here', hidden: '' });
  private fileInput = el('input', undefined, { type: 'file', id: 'methods-calib-file', accept: '.txt,text/plain', hidden: '' });
  private tokensSelect = el('select', undefined, { id: 'methods-tokens' });
  private planned = el('div', undefined, { id: 'methods-planned', class: 'caption' });
  private runButton = el('button', 'Quantize with this method and evaluate', { type: 'button', id: 'methods-run' });
  private steps = el('ol', undefined, { id: 'methods-steps', class: 'steps' });
  private result = el('p', '', { id: 'methods-result', class: 'caption', 'aria-live': 'polite' });
  private exportButton = el('button', 'Export this model', { type: 'button', id: 'methods-export', hidden: '' });
  /** The exported file: quantlab's GGUF/safetensors, or a Hugging Face checkpoint in a GPTQ/AWQ loader's layout (INT group formats). */
  private exportLayout = el('select', undefined, { id: 'methods-export-layout', hidden: '', 'aria-label': 'Exported file' });
  private exportResult = el('div', undefined, { id: 'methods-export-result', 'aria-live': 'polite' });
  /** The last calibrated run, which "Export this model" writes as a file. */
  private lastRun: { target: string; mix: TypeMix; method: MethodName; calib: CalibSource; tokens: number } | null = null;
  private progress: ProgressView;
  private targets: TargetChoice[] = [];
  private fileText: { name: string; text: string } | null = null;

  constructor(
    private app: App,
    private compare: ComparePanel,
  ) {
    for (const n of TOKEN_CHOICES) this.tokensSelect.append(el('option', `${n} tokens`, n === DEFAULT_TOKENS ? { value: String(n), selected: '' } : { value: String(n) }));
    for (const [v, t] of [['default', 'Moby-Dick chapters 4+ (default)'], ['text', 'pasted text'], ['file', 'a text file']]) this.sourceSelect.append(el('option', t, { value: v! }));
    this.sourceSelect.addEventListener('change', () => {
      this.textArea.hidden = this.sourceSelect.value !== 'text';
      this.fileInput.hidden = this.sourceSelect.value !== 'file';
    });
    this.fileInput.addEventListener('change', () => void this.readFile());
    this.targetSelect.addEventListener('change', () => void this.onTarget('withTypes'));
    this.runButton.addEventListener('click', () => void this.run());
    this.exportButton.addEventListener('click', () => void this.exportRun());
    for (const [value, text] of [
      ['file', 'GGUF or safetensors (quantlab)'],
      ['gptq', 'HF checkpoint, GPTQ layout'],
      ['awq', 'HF checkpoint, AWQ layout'],
    ] as const) this.exportLayout.append(el('option', text, { value }));
    const label = (text: string, control: HTMLElement) => {
      const l = el('label', text);
      l.append(control);
      return l;
    };
    const calib = el('fieldset', undefined, { class: 'protocol', id: 'methods-calib' });
    calib.append(el('legend', 'Calibration text'), label('Text ', this.sourceSelect), label('Tokens ', this.tokensSelect), this.textArea, this.fileInput, el('p', 'Whole chunks of 512 tokens are used (fewer tokens: one shorter chunk). More tokens give steadier statistics; GPTQ wants more tokens than a layer has inputs (1,536 for the default model\'s ffn_down), and its run time grows with them.', { class: 'hint' }));
    const runRow = el('div', undefined, { class: 'controls' });
    runRow.append(this.runButton);
    const host = el('div', undefined, { id: 'methods-progress-host' });
    this.root.append(label('Format or preset ', this.targetSelect), this.planned, this.methodBox, calib, el('p', 'Evaluated with the protocol chosen in Compare (context and windows).', { class: 'hint' }), runRow, host, this.steps, this.result, this.exportLayout, this.exportButton, this.exportResult);
    this.progress = new ProgressView(host, 'methods-progress');
    this.root.append(new LayerErrorView(app, () => this.choice()?.target, () => this.calibSource()).root);
  }

  /** The core's lists: presets first (llama.cpp's per-tensor types), then the formats Compare offers, then the methods. */
  setLists(presets: PresetInfo[], formats: FormatInfo[], methods: MethodInfo[]): void {
    const offered = formats.flatMap((f) => f.suggestions).filter((s) => s.compare !== 'notOffered');
    this.targets = [...presets.map((p) => ({ target: p.name, mix: 'llama.cpp' as const, label: `${p.name} (llama.cpp's per-tensor types)` })), ...offered.map((s) => ({ target: s.canonical, mix: 'pure' as const, label: `${s.canonical} (one type everywhere)` }))];
    const group = (title: string, mix: TypeMix) => {
      const g = el('optgroup', undefined, { label: title });
      this.targets.forEach((t, i) => t.mix === mix && g.append(el('option', t.label, { value: String(i), 'data-target': t.target })));
      return g;
    };
    this.targetSelect.replaceChildren(group('llama.cpp presets', 'llama.cpp'), group('Formats', 'pure'));
    const q40 = this.targets.findIndex((t) => t.target === 'q4_0' && t.mix === 'pure');
    if (q40 >= 0) this.targetSelect.value = String(q40);
    this.methodBox.replaceChildren(
      el('legend', 'Method'),
      ...methods.map((m, i) => {
        const l = el('label', undefined, { title: `${m.formats}; ${describeMethod[m.calibration]}` });
        const radio = el('input', undefined, { type: 'radio', name: 'methods-method', value: m.name });
        radio.checked = i === 0;
        l.append(radio, ` ${m.name}`);
        return l;
      }),
    );
  }

  /**
   * Which methods fit the chosen target; with `types`, also each matrix's planned type (that needs
   * the model loaded in the worker, so it waits until the user picks a target).
   */
  async onTarget(types: 'withTypes' | 'supportOnly' = 'withTypes'): Promise<void> {
    const choice = this.choice();
    if (!choice || !this.app.model) return;
    try {
      const support = await this.app.client.call('methodSupport', { target: choice.target });
      for (const radio of this.methodBox.querySelectorAll<HTMLInputElement>('input[name=methods-method]')) {
        radio.disabled = !support[radio.value as MethodName];
        if (radio.disabled && radio.checked) this.methodBox.querySelector<HTMLInputElement>('input[value=rtn]')!.checked = true;
      }
      if (types === 'withTypes') this.showPlanned(choice, await this.app.client.call('plannedTypes', choice));
      else {
        this.planned.replaceChildren();
        await this.markFallbacks();
      }
    } catch (error) {
      panelError($('#methods-panel'), error);
    }
  }

  /** Each format's option says how many of the model's matrices fall back (visible in the list, not only once picked). */
  private async markFallbacks(): Promise<void> {
    const generation = this.app.generation;
    for (const option of this.targetSelect.querySelectorAll<HTMLOptionElement>('optgroup:last-child option')) {
      const t = this.targets[Number(option.value)]!;
      const status = await formatStatus(this.app, t.target);
      if (generation !== this.app.generation) return;
      const f = status.kind === 'valid' ? status.fallbacks : null;
      option.textContent = f?.fallbacks ? `${t.label} — ${fallbackText(f)}` : t.label;
    }
  }

  private showPlanned(choice: TargetChoice, types: PlannedType[]): void {
    const counts = new Map<string, number>();
    for (const t of types) counts.set(t.type, (counts.get(t.type) ?? 0) + 1);
    const wider = types.filter((t) => t.note);
    const summary = el('p', `${choice.label}: ${types.length} weight matrices → ${[...counts].map(([t, n]) => `${n} × ${t}`).join(', ')}`);
    summary.dataset.types = JSON.stringify(Object.fromEntries(counts));
    const details = el('details');
    details.append(el('summary', `${wider.length} tensors not in the default type, and why`));
    const list = el('ul');
    for (const t of wider) list.append(el('li', t.note ?? ''));
    details.append(list);
    this.planned.replaceChildren(summary, ...(wider.length ? [details] : []));
  }

  private choice(): TargetChoice | undefined {
    return this.targets[Number(this.targetSelect.value)];
  }

  private method(): MethodName {
    return (this.methodBox.querySelector<HTMLInputElement>('input[name=methods-method]:checked')?.value ?? 'rtn') as MethodName;
  }

  private async readFile(): Promise<void> {
    const file = this.fileInput.files?.[0];
    this.fileText = file ? { name: file.name, text: await file.text() } : null;
  }

  /** The calibration text chosen in the panel (the method runs and the per-layer output error view use it). */
  private calibSource(): CalibSource {
    const source = this.sourceSelect.value;
    if (source === 'text') return { kind: 'text', text: this.textArea.value, label: 'pasted text' };
    if (source === 'file') return { kind: 'text', text: this.fileText?.text ?? '', label: this.fileText?.name ?? 'no file' };
    return { kind: 'default' };
  }

  async run(): Promise<void> {
    const choice = this.choice();
    if (!choice) return;
    panelError($('#methods-panel'), null);
    const method = this.method();
    const calib = this.calibSource();
    const { ctx, maxWindows } = this.compare.protocol();
    const args = { ...choice, method, calib, tokens: Number(this.tokensSelect.value), ctx, maxWindows, dataUrl: new URL('data/moby-dick/', location.href).href, saved: this.compare.savedManifests() };
    const title = `${choice.target} with ${method}`;
    const listener = this.progress.listener(title);
    this.runButton.disabled = true;
    this.result.textContent = '';
    this.exportButton.hidden = true;
    this.exportLayout.hidden = true;
    this.exportResult.replaceChildren();
    this.lastRun = null;
    const stepItems = new Map<number, HTMLLIElement>();
    let cached = false;
    this.steps.replaceChildren();
    const handle = this.app.client.startCall('runMethod', args, (phase, loaded, total, step) => {
      listener(phase, loaded, total);
      if (!step) return;
      let li = stepItems.get(step.step);
      if (!li) {
        li = el('li', step.label, { 'data-step': String(step.step) });
        stepItems.set(step.step, li);
        this.steps.append(li);
      }
      for (const other of stepItems.values()) other.removeAttribute('aria-current');
      li.setAttribute('aria-current', 'step');
      li.textContent = step.label;
      if (step.calibration) li.dataset.calibration = step.calibration;
      if (step.cached) {
        li.dataset.cached = '';
        cached = true;
      }
    });
    try {
      const manifest = await this.progress.track(title, handle);
      // A saved result reused (same model, target, method, text, tokens, protocol) is already stored.
      if (!cached) await saveManifest(manifest);
      await this.compare.refresh();
      this.result.textContent = describe(manifest);
      if (method !== 'rtn') {
        // The same calibration (and for imatrix the same cached matrix) writes the file.
        this.lastRun = { target: choice.target, mix: choice.mix, method, calib, tokens: args.tokens };
        this.exportButton.hidden = false;
        this.exportLayout.hidden = false;
      }
      this.root.dataset.done = String(Date.now());
    } catch (error) {
      panelError($('#methods-panel'), isCancel(error) ? 'Method run cancelled.' : error);
    } finally {
      this.runButton.disabled = false;
    }
  }

  /** Writes the last run as the file `quantlab quantize --imatrix` / `--method M [--layout L]` writes. */
  private async exportRun(): Promise<void> {
    const r = this.lastRun;
    if (!r) return;
    panelError($('#methods-panel'), null);
    this.exportButton.disabled = true;
    this.exportResult.replaceChildren();
    const title = `Exporting ${r.target} with ${r.method}`;
    const recipe = { target: r.target, mix: r.mix, method: r.method, calibration: r.calib, calibrationTokens: r.tokens };
    const dataUrl = new URL('data/moby-dick/', location.href).href;
    const layout = this.exportLayout.value;
    try {
      if (layout === 'gptq' || layout === 'awq') {
        await this.exportHf(recipe, layout, title, dataUrl);
        return;
      }
      const out = await this.progress.track(title, abortable((signal) => this.app.lab.export(recipe, { signal, onProgress: this.progress.listener(title), dataUrl })));
      const link = offerDownload(out.blob, out.fileName);
      link.id = 'methods-export-link';
      link.textContent = `Download ${out.fileName} again`;
      this.exportResult.replaceChildren(el('p', `${out.fileName} was handed to your browser's downloads.`, { class: 'caption' }), el('pre', out.manifest.summary, { id: 'methods-export-summary' }), link);
      link.click();
    } catch (error) {
      panelError($('#methods-panel'), isCancel(error) ? 'Export cancelled.' : error);
    } finally {
      this.exportButton.disabled = false;
    }
  }

  /** The run as a Hugging Face checkpoint: model.safetensors and config.json, both handed to the browser. */
  private async exportHf(recipe: Recipe, layout: HfLayout, title: string, dataUrl: string): Promise<void> {
    const out = await this.progress.track(title, abortable((signal) => this.app.lab.exportHfLayout(recipe, layout, { signal, onProgress: this.progress.listener(title), dataUrl })));
    const model = offerDownload(out.safetensors, 'model.safetensors');
    model.id = 'methods-export-link';
    model.textContent = 'Download model.safetensors again';
    const config = offerDownload(new Blob([out.config], { type: 'application/json' }), 'config.json');
    config.id = 'methods-export-config-link';
    config.textContent = 'Download config.json again';
    this.exportResult.replaceChildren(el('p', "model.safetensors and config.json were handed to your browser's downloads.", { class: 'caption' }), el('pre', out.manifest.summary, { id: 'methods-export-summary' }), model, el('span', ' · '), config);
    model.click();
    config.click();
  }
}

function describe(m: QuantManifest): string {
  const r = m.result;
  const p = r.paired;
  const took = r.method ? `; method took ${r.method.seconds.toFixed(1)} s` : '';
  const c = r.method?.calibration;
  const calib = c ? ` (calibrated on ${c.text}, ${c.tokens} tokens${c.reused ? ', cached importance matrix' : ''})` : '';
  const delta = p ? `Δppl ${p.deltaPpl >= 0 ? '+' : ''}${p.deltaPpl.toFixed(3)} ± ${p.deltaPplStderr.toFixed(3)}, KL ${p.klMean.toExponential(3)}` : '';
  return `${r.format}${calib}: ${r.bitsPerWeight.toFixed(3)} bits/weight, perplexity ${r.ppl.toFixed(3)} (base ${r.basePpl.toFixed(3)}), ${delta}${took}. Added to the Compare table.`;
}
