// The lab page: wires the panels to the worker. All heavy work happens in worker.ts.
import './styles.css';
import { abortable } from './api/calls';
import { createLab, type Lab } from './api/lab';
import type { LabClient } from './client';
import { LabError } from './errors';
import type { AdapterReport, FormatInfo, PresetInfo } from './messages';
import { type App, clearError, showError } from './panels/app';
import { ComparePanel } from './panels/compare';
import { ExportPanel } from './panels/export';
import { formatCatalog, watchFormatNote } from './panels/formats';
import { MethodsPanel } from './panels/methods';
import { SensitivityPanel } from './panels/sensitivity';
import { GeneratePanel } from './panels/generate';
import { WeightPanels } from './panels/weights';
import { registerOffline, showModelOfflineState } from './pwa';
import { getInt, getParam, setParam } from './state';
import { $, el } from './ui/dom';
import { LayerBrowser } from './ui/layerBrowser';
import { renderLayerErrors } from './ui/layerErrors';
import { renderModelCard } from './ui/modelPanel';
import { initNav } from './ui/nav';
import { isCancel, ProgressView } from './ui/progress';

const DEFAULT_MODEL = 'models/SmolLM2-135M-Instruct.Q4_1.gguf';

/** `?threads=N` asks for N compute threads (1: the single-thread core); by default the browser's cores, capped. */
const threadsParam = getInt('threads', 0);
/** The lab, made through the package API (web/src/api) as any embedding page makes it; set once its core has started. */
let started: Lab | null = null;
function theLab(): Lab {
  if (!started) throw new LabError('The lab core has not started yet');
  return started;
}
const app: App = {
  get lab() {
    return theLab();
  },
  get client() {
    return theLab().client;
  },
  model: null,
  tensor: null,
  format: getParam('format') ?? 'nf4',
  generation: 0,
};
const weights = new WeightPanels(app);
const compare = new ComparePanel(app);
const methods = new MethodsPanel(app, compare);
new SensitivityPanel(app, compare);
new GeneratePanel(app);
new ExportPanel(app);
const layers = new LayerBrowser($('#tensor-table') as HTMLTableElement, (name) => void selectTensor(name));
const modelProgress = new ProgressView($('#model-progress-host'), 'model-progress');
const analyzeProgress = new ProgressView($('#analyze-progress-host'), 'analyze-progress');
/** Where the current model came from, to re-open it if the worker had to be restarted. */
let lastSource: { url: string } | { file: File } | null = null;

async function selectTensor(name: string): Promise<void> {
  if (!app.model?.header.tensors.some((t) => t.name === name)) return;
  app.tensor = name;
  layers.markSelected(name);
  setParam('tensor', name);
  $('#selected-tensor').textContent = name;
  await weights.showTensor();
}

async function load(what: { url: string } | { file: File }, options: { keepSelection?: boolean } = {}): Promise<void> {
  clearError();
  const generation = ++app.generation;
  const label = 'url' in what ? what.url.split('/').pop()! : what.file.name;
  try {
    const handle = abortable((signal) => app.lab.load('url' in what ? what.url : what.file, { signal, onProgress: modelProgress.listener(label) }));
    const loaded = await modelProgress.track(`Opening ${label}`, handle);
    if (generation !== app.generation) return;
    lastSource = what;
    app.model = loaded;
    renderModelCard($('#model-card'), loaded);
    showModelOfflineState(loaded.offline);
    layers.setTensors(loaded.header.tensors);
    void compare.refresh();
    $('#analyze-summary').textContent = '';
    $('#layer-errors').replaceChildren();
    for (const id of ['#layers-panel', '#compare-panel', '#methods-panel', '#generate-panel', '#export-panel']) $(id).hidden = false;
    void methods.onTarget('supportOnly');
    document.body.dataset.model = 'loaded';
    document.dispatchEvent(new CustomEvent('lab:model'));
    const wanted = options.keepSelection ? app.tensor : getParam('tensor');
    app.tensor = null;
    weights.hide();
    $('#selected-tensor').textContent = 'none — pick one in Layers';
    if (wanted && loaded.header.tensors.some((t) => t.name === wanted)) await selectTensor(wanted);
    scrollToPanel();
  } catch (error) {
    // The previous model (if any) stays open and usable.
    showError(isCancel(error) ? 'Opening the model was cancelled.' : error);
  }
}

async function analyzeAll(): Promise<void> {
  if (!app.model) return;
  const format = app.format;
  const generation = app.generation;
  layers.clearAnalysis();
  $('#layer-errors').replaceChildren();
  const title = `Analysing ${app.model.header.tensors.length} tensors under ${format}`;
  const button = $('#analyze') as HTMLButtonElement;
  button.disabled = true;
  const handle = app.client.startCall('analyzeTensors', { format, outlierK: 6 }, (phase, loaded, total, detail) => {
    analyzeProgress.listener(title)(phase, loaded, total);
    if (detail && generation === app.generation) layers.addAnalysis(detail);
  });
  try {
    const all = await analyzeProgress.track(title, handle);
    if (generation !== app.generation) return;
    const failed = all.filter((a) => a.error).length;
    const summary = $('#analyze-summary');
    summary.textContent = `${all.length} tensors analysed under ${format}${failed ? `; ${failed} could not use it (hover "n/a" for why)` : ''}.`;
    summary.dataset.analysed = String(all.length);
    summary.dataset.format = format;
    layers.render();
    renderLayerErrors($('#layer-errors'), all.map((r) => ({ name: r.name, sqnr: r.metrics?.sqnrDb })), format, $('#layer-errors').clientWidth);
  } catch (error) {
    $('#analyze-summary').textContent = isCancel(error) ? 'Analysis cancelled; the rows done so far are kept.' : `Analysis failed: ${(error as Error).message}`;
    layers.render();
  } finally {
    button.disabled = false;
  }
}

function setFormat(format: string): void {
  const f = formatCatalog.canonical(format.trim().toLowerCase());
  ($('#format') as HTMLInputElement).value = f;
  if (!f || f === app.format) return;
  app.format = f;
  setParam('format', f);
  document.dispatchEvent(new CustomEvent('lab:format', { detail: f }));
  $('#analyze-summary').textContent = 'Format changed: press "Analyse all tensors" to measure it.';
  if (app.tensor) void weights.drawHistogram();
}

function scrollToPanel(): void {
  const panel = getParam('panel');
  if (panel) document.querySelector(`#${CSS.escape(panel)}-panel`)?.scrollIntoView();
}

function describeGpu(r: AdapterReport): string {
  if (!r.available) return `WebGPU unavailable: ${r.reason}`;
  const name = [r.vendor, r.architecture].filter(Boolean).join(' / ') || 'unknown vendor';
  const bits = [
    `${name}${r.description ? ` (${r.description})` : ''}`,
    r.isFallbackAdapter ? 'software fallback adapter' : 'hardware adapter',
    `shader-f16: ${r.shaderF16 ? 'yes' : 'no'}`,
    `subgroups: ${r.subgroups ? 'yes' : 'no'}`,
  ];
  const c = r.computeCheck;
  if (c) bits.push(c.passed ? 'compute check passed' : `compute check FAILED: ${'error' in c ? c.error : `max error ${c.maxAbsError}`}`);
  return bits.join(' · ');
}

async function probeGpu(): Promise<void> {
  const status = $('#gpu-status');
  try {
    const report = await app.client.call('probeGpu', {});
    status.textContent = describeGpu(report);
    status.dataset.state = report.available ? 'available' : 'unavailable';
    document.dispatchEvent(new CustomEvent('lab:gpu', { detail: report }));
  } catch (error) {
    status.textContent = `WebGPU unavailable: ${(error as Error).message}`;
    status.dataset.state = 'unavailable';
    document.dispatchEvent(new CustomEvent('lab:gpu', { detail: { available: false, reason: (error as Error).message } }));
  }
}

function wireInputs(): void {
  initNav();
  watchFormatNote(app, $('#format-note'));
  const input = $('#file-input') as HTMLInputElement;
  input.addEventListener('change', () => {
    const file = input.files?.[0];
    if (file) void load({ file });
    input.value = '';
  });
  const zone = $('#drop-zone');
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('dragging');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('dragging');
    const file = e.dataTransfer?.files[0];
    if (file) void load({ file });
  });
  $('#url-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const url = ($('#url-input') as HTMLInputElement).value.trim();
    if (url) void load({ url: new URL(url, location.href).href });
  });
  $('#analyze').addEventListener('click', () => void analyzeAll());
  const format = $('#format') as HTMLInputElement;
  format.value = app.format;
  format.addEventListener('change', () => setFormat(format.value));
  format.addEventListener('keydown', (e) => e.key === 'Enter' && setFormat(format.value));
  for (const a of document.querySelectorAll<HTMLAnchorElement>('nav a[data-panel]')) {
    a.addEventListener('click', () => setParam('panel', a.dataset.panel!));
  }
}

/** The format box offers the registry's suggested formats by canonical name (any other valid name can be typed). */
function showFormats(formats: FormatInfo[], presets: PresetInfo[]): void {
  formatCatalog.set(formats, presets);
  const suggestions = formats.flatMap((f) => f.suggestions);
  $('#format-list').replaceChildren(...suggestions.map((s) => el('option', undefined, { value: s.canonical, label: `${s.bitsPerWeight.toFixed(2)} bits/weight${s.name === s.canonical ? '' : ` (also "${s.name}")`}` })));
  compare.setFormats();
  setFormat(app.format);
}

async function main(): Promise<void> {
  wireInputs();
  void registerOffline();
  try {
    const lab = await createLab({ threads: threadsParam > 0 ? threadsParam : undefined });
    started = lab;
    /** Test and diagnostic hook (tests/e2e/soak.test.mjs): the page's worker client, to drive the worker API without the panels. */
    (globalThis as typeof globalThis & { quantlabClient?: LabClient }).quantlabClient = lab.client;
    lab.onRestart = () => {
      if (lastSource) void load(lastSource, { keepSelection: true });
    };
    const { coreVersion, formatList, presetList, methodList, threads, note } = lab.core;
    const status = $('#core-status');
    status.textContent = `quantlab core ${coreVersion} (wasm${note ? `) — ${note}` : `, ${threads} threads)`}`;
    status.dataset.threads = String(threads);
    showFormats(formatList, presetList);
    compare.setPresets(presetList);
    methods.setLists(presetList, formatList, methodList);
  } catch (error) {
    $('#core-status').textContent = 'failed to start';
    showError(error);
    return;
  }
  void probeGpu();
  const url = getParam('model') ?? DEFAULT_MODEL;
  // Resolved here: the worker would resolve a relative URL against its own script's folder.
  if (url !== 'none') await load({ url: new URL(url, location.href).href });
}

void main();
