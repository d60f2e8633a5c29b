// The lab page: wires the panels to the worker. All heavy work happens in worker.ts.
import './styles.css';
import { LabClient } from './client';
import { type LabError } from './errors';
import { formatBytes, formatCount, formatParams } from './format';
import type { AdapterReport, HistogramResult, LoadedModel, Phase } from './messages';
import { $, el } from './ui/dom';
import { renderHistogram } from './ui/histogram';
import { markSelected, renderTensorTable } from './ui/tensorTable';

const DEFAULT_MODEL = 'models/SmolLM2-135M-Instruct.Q4_1.gguf';

const client = new LabClient(new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' }));
const params = new URLSearchParams(location.search);
let model: LoadedModel | null = null;
let lastHistogram: HistogramResult | null = null;
let loadGeneration = 0;

function showError(error: unknown): void {
  const box = $('#error');
  const e = error as LabError;
  box.textContent = e?.message ?? String(error);
  box.dataset.kind = e?.name ?? 'Error';
  box.hidden = false;
}

function clearError(): void {
  $('#error').hidden = true;
}

const phaseLabel: Record<Phase, string> = { download: 'Downloading', read: 'Reading', parse: 'Parsing header', decode: 'Decoding' };

function progress(label: string) {
  const wrap = $('#progress');
  const bar = $('#progress-bar') as HTMLProgressElement;
  wrap.hidden = false;
  return {
    update(phase: Phase, loaded: number, total: number) {
      const amount = phase === 'decode' ? `${formatCount(total)} values` : `${formatBytes(loaded)}${total ? ` of ${formatBytes(total)}` : ''}`;
      $('#progress-label').textContent = `${label}: ${phaseLabel[phase]} ${amount}`;
      if (total > 0) bar.value = Math.min(1, loaded / total);
      else bar.removeAttribute('value');
    },
    done() {
      wrap.hidden = true;
    },
  };
}

/** The format the checkpoint's weights are stored in, e.g. "Q4_1": what any "base" really is. */
function sourceFormat(m: LoadedModel): string {
  const ft = m.header.summary.file_type;
  if (ft) return ft.replace(/^MOSTLY_/, '');
  const biggest = [...m.header.summary.types].sort((a, b) => b.elements - a.elements)[0];
  return biggest?.type ?? 'unknown';
}

function renderModelCard(m: LoadedModel): void {
  const s = m.header.summary;
  const card = $('#model-card');
  const dl = el('dl', undefined, { class: 'facts' });
  const fact = (k: string, v: string) => dl.append(el('dt', k), el('dd', v));
  fact('Name', s.name ?? '(unnamed)');
  fact('File', m.source);
  fact('Architecture', s.architecture ?? 'unknown');
  fact('Parameters', `${formatParams(s.parameter_count)} (${formatCount(s.parameter_count)})`);
  fact('Size', `${formatBytes(m.header.fileLen)} · ${s.bits_per_weight.toFixed(2)} bits/weight`);
  fact('Stored as', `${sourceFormat(m)} · ${s.types.map((t) => `${t.tensors} ${t.type}`).join(', ')}`);
  fact('Layers', `${s.block_count ?? '?'} × (d_model ${s.embedding_length ?? '?'}, ffn ${s.feed_forward_length ?? '?'}, heads ${s.head_count ?? '?'}/${s.head_count_kv ?? '?'} kv)`);
  fact('Vocabulary', `${formatCount(s.vocab_size ?? 0)} tokens (${s.tokenizer_model ?? '?'})`);
  fact('GGUF', `v${m.header.version}, ${s.tensor_count} tensors, ${Object.keys(m.header.metadata).length} metadata keys`);
  const children: HTMLElement[] = [dl];
  const fmt = sourceFormat(m);
  if (!/^(ALL_)?F(32|16)$|^BF16$/.test(fmt)) {
    children.push(
      el('p', `Note: this checkpoint is already quantized (${fmt}). Its weights sit on a ${fmt} grid, so the "base" the lab compares other formats against is this ${fmt} model dequantized, not the original 16-bit weights.`, { class: 'notice', id: 'base-note' }),
    );
  }
  card.replaceChildren(...children);
}

async function drawHistogram(name: string): Promise<void> {
  if (!model) return;
  const generation = loadGeneration;
  markSelected($('#tensor-table tbody'), name);
  params.set('tensor', name);
  history.replaceState(null, '', `?${params}`);
  $('#histogram-panel').hidden = false;
  $('#histogram-title').textContent = `Weight histogram — ${name}`;
  const bins = Number(($('#bins') as HTMLSelectElement).value);
  const p = progress(name);
  try {
    const h = await client.call('histogram', { tensor: name, bins }, p.update);
    if (generation !== loadGeneration) return;
    lastHistogram = h;
    redrawHistogram();
  } catch (error) {
    showError(error);
  } finally {
    p.done();
  }
}

function redrawHistogram(): void {
  const h = lastHistogram;
  if (!h) return;
  const container = $('#histogram');
  renderHistogram(container, h, { log: ($('#log-counts') as HTMLInputElement).checked, width: container.clientWidth });
  const t = model?.header.tensors.find((x) => x.name === h.tensor);
  const parts = [`${formatCount(h.total)} values`, `min ${h.min?.toPrecision(5)}`, `max ${h.max?.toPrecision(5)}`, `${h.counts.length} bins`];
  if (t) parts.push(`decoded from ${t.type}`);
  if (h.non_finite > 0) parts.push(`${formatCount(h.non_finite)} NaN/Inf values not shown`);
  const caption = $('#histogram-caption');
  caption.textContent = parts.join(' · ');
  caption.dataset.total = String(h.total);
}

async function load(what: { url: string } | { file: File }): Promise<void> {
  clearError();
  const generation = ++loadGeneration;
  const label = 'url' in what ? what.url.split('/').pop()! : what.file.name;
  const p = progress(label);
  try {
    const loaded = 'url' in what ? await client.call('openUrl', what, p.update) : await client.call('openFile', what, p.update);
    if (generation !== loadGeneration) return;
    model = loaded;
    lastHistogram = null;
    renderModelCard(loaded);
    renderTensorTable($('#tensor-table tbody'), loaded.header.tensors, (name) => void drawHistogram(name));
    $('#tensor-panel').hidden = false;
    $('#histogram-panel').hidden = true;
    document.body.dataset.model = 'loaded';
    const wanted = params.get('tensor');
    if (wanted && loaded.header.tensors.some((t) => t.name === wanted)) await drawHistogram(wanted);
  } catch (error) {
    // The previous model (if any) stays open and usable.
    showError(error);
  } finally {
    p.done();
  }
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
    const report = await client.call('probeGpu', {});
    status.textContent = describeGpu(report);
    status.dataset.state = report.available ? 'available' : 'unavailable';
  } catch (error) {
    status.textContent = `WebGPU unavailable: ${(error as Error).message}`;
    status.dataset.state = 'unavailable';
  }
}

function wireInputs(): void {
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
  $('#bins').addEventListener('change', () => lastHistogram && void drawHistogram(lastHistogram.tensor));
  $('#log-counts').addEventListener('change', redrawHistogram);
  let resizeTimer = 0;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(redrawHistogram, 150);
  });
}

async function main(): Promise<void> {
  wireInputs();
  try {
    const { coreVersion } = await client.call('init', {});
    $('#core-status').textContent = `quantlab core ${coreVersion} (wasm)`;
  } catch (error) {
    $('#core-status').textContent = 'failed to start';
    showError(error);
    return;
  }
  void probeGpu();
  const url = params.get('model') ?? DEFAULT_MODEL;
  // Resolved here: the worker would resolve a relative URL against its own script's folder.
  if (url !== 'none') await load({ url: new URL(url, location.href).href });
}

void main();
