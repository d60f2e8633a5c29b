// Lesson 6 (the KV cache and long contexts): the cache's memory from the loaded model's own
// hyper-parameters (its GGUF header, through the client API) against a context-length slider, for
// each cache type the CPU evaluation stores, next to the weights; then the measured cost of a
// quantized cache (`lab.evaluate` of the base kept as f32 with `kvCache`). The context, the cache
// types measured and the protocol are kept in the URL (`?context=…&kv=…&protocol=…`).
import { ensureModel } from '../src/components/base';
import { defineElements, sharedLab } from '../src/components/index';
import type { EvalKvCache, LoadedModel, QuantManifest } from '../src/messages';
import { DATA_URL, MODEL, PROTOCOLS, cell, choiceBoxes, inOrder, keepInUrl, protocolChoice, showError } from './state';

// The repository's package.json marks only lib/components.js as having side effects (see number-line.ts).
defineElements();

/** Values per int4 scale within a head (crate/src/model/kv_cache.rs, INT4_GROUP). */
const INT4_GROUP = 32;
/** Bytes one (position, KV head) of `d` values takes in each cache type, scales included (KvType::head_bytes). */
const HEAD_BYTES: Record<EvalKvCache, (d: number) => number> = {
  f32: (d) => 4 * d,
  f16: (d) => 2 * d,
  int8: (d) => d + 4,
  fp8: (d) => d + 4,
  int4: (d) => Math.ceil(d / 2) + 4 * Math.ceil(d / INT4_GROUP),
};
const TYPES = Object.keys(HEAD_BYTES) as EvalKvCache[];
/** The quantized cache types measured against f32, and the ones measured by default. */
const MEASURABLE: EvalKvCache[] = ['f16', 'int8', 'fp8', 'int4'];
const DEFAULT_MEASURED: EvalKvCache[] = ['int8', 'fp8', 'int4'];
/** The context the slider starts at without a shared link. */
const DEFAULT_CONTEXT = 2048;
const COLORS: Record<EvalKvCache, string> = { f32: '#1d2330', f16: '#3a6fd8', int8: '#2b9a5a', fp8: '#c07a12', int4: '#c0392b' };

interface Shape {
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  contextLength: number;
  weightBytes: number;
  parameters: number;
  fileType: string;
}

const params = new URLSearchParams(location.search);
const slider = document.getElementById('context') as HTMLInputElement;
const shown = document.getElementById('context-value') as HTMLOutputElement;
const memoryBody = document.querySelector('#memory tbody') as HTMLTableSectionElement;
const memoryStatus = document.getElementById('memory-status') as HTMLElement;
const chartHost = document.getElementById('memory-chart') as HTMLElement;
const kvBody = document.querySelector('#kv-quality tbody') as HTMLTableSectionElement;
const kvStatus = document.getElementById('kv-status') as HTMLElement;
const protocol = document.getElementById('protocol') as HTMLSelectElement;
protocolChoice(protocol, params.get('protocol'));
const measured = new Set<string>(params.get('kv')?.split(',').filter(Boolean) ?? DEFAULT_MEASURED);
choiceBoxes(document.getElementById('kv-types') as HTMLElement, MEASURABLE, measured, () => void measureCaches());
protocol.addEventListener('change', () => void measureCaches());

/** The cache's hyper-parameters from the model's header: head_dim is `key_length` when given, else width ÷ heads. */
function shapeOf(model: LoadedModel): Shape {
  const h = model.header;
  if (h.container !== 'gguf') throw new Error(`${model.source} is not a GGUF file: its hyper-parameters are unknown`);
  const s = h.summary;
  const need = (v: number | null, what: string) => {
    if (!v) throw new Error(`${model.source} has no ${what} in its header`);
    return v;
  };
  const heads = need(s.headCount, 'attention.head_count');
  const keyLength = h.metadata[`${s.architecture}.attention.key_length`];
  return {
    layers: need(s.blockCount, 'block_count'),
    heads,
    kvHeads: s.headCountKv ?? heads,
    headDim: typeof keyLength === 'number' ? keyLength : need(s.embeddingLength, 'embedding_length') / heads,
    contextLength: need(s.contextLength, 'context_length'),
    weightBytes: s.tensorBytes,
    parameters: s.parameterCount,
    fileType: s.fileType ?? 'its file type',
  };
}

const perPosition = (m: Shape, kv: EvalKvCache) => 2 * m.layers * m.kvHeads * HEAD_BYTES[kv](m.headDim);
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(bytes < 2 ** 24 ? 2 : 1)} MiB`;

function showShape(m: Shape): void {
  const body = document.querySelector('#hparams tbody') as HTMLTableSectionElement;
  const rows: [string, string, number][] = [
    ['layers', 'n_layers (block_count)', m.layers],
    ['heads', 'query heads (attention.head_count)', m.heads],
    ['kvHeads', 'KV heads (attention.head_count_kv)', m.kvHeads],
    ['headDim', 'head_dim', m.headDim],
    ['contextLength', 'context length it was trained for', m.contextLength],
    ['weightBytes', `weights as stored (${m.fileType})`, m.weightBytes],
  ];
  for (const [key, label, value] of rows) {
    const row = body.insertRow();
    Object.assign(row.dataset, { key, value: String(value) });
    row.append(cell(label, 'th'), cell(key === 'weightBytes' ? `${mib(value)} (${value.toLocaleString('en')} bytes; ${mib(4 * m.parameters)} as f32)` : String(value)));
  }
  (document.getElementById('gqa-note') as HTMLElement).textContent =
    m.kvHeads < m.heads
      ? `Grouped-query attention: ${m.heads} query heads share ${m.kvHeads} KV heads (${m.heads / m.kvHeads} queries per KV head), so the cache is ${m.heads / m.kvHeads}× smaller than if every head kept its own keys and values.`
      : `Every one of the ${m.heads} heads keeps its own keys and values (no grouped-query attention).`;
}

function showMemory(m: Shape): void {
  const context = Number(slider.value);
  shown.value = `${context.toLocaleString('en')} tokens`;
  memoryBody.replaceChildren();
  for (const kv of TYPES) {
    const bytes = perPosition(m, kv) * context;
    const row = memoryBody.insertRow();
    Object.assign(row.dataset, { kv, perPosition: String(perPosition(m, kv)), bytes: String(bytes), context: String(context) });
    const bits = (8 * HEAD_BYTES[kv](m.headDim)) / m.headDim;
    row.append(cell(kv, 'th'), cell(perPosition(m, kv).toLocaleString('en')), cell(String(bits)), cell(mib(bytes)), cell(`${(bytes / m.weightBytes).toFixed(2)}×`));
  }
  const f32 = perPosition(m, 'f32');
  const crossing = Math.ceil(m.weightBytes / f32);
  memoryStatus.textContent =
    crossing <= m.contextLength
      ? `An f32 cache outgrows the ${mib(m.weightBytes)} of stored weights at ${crossing.toLocaleString('en')} tokens; an int4 cache at ${Math.ceil(m.weightBytes / perPosition(m, 'int4')).toLocaleString('en')}.`
      : `Even at ${m.contextLength.toLocaleString('en')} tokens an f32 cache stays below the ${mib(m.weightBytes)} of stored weights.`;
  drawChart(m, context);
}

/** Cache bytes against context (one line per type) with the weights' size and the slider's position. */
function drawChart(m: Shape, context: number): void {
  const [w, h, left, bottom] = [640, 220, 64, 28];
  const maxX = m.contextLength;
  const maxY = Math.max(perPosition(m, 'f32') * maxX, m.weightBytes) * 1.05;
  const x = (c: number) => left + ((w - left - 10) * c) / maxX;
  const y = (b: number) => h - bottom - ((h - bottom - 8) * b) / maxY;
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('width', '100%');
  const add = (tag: string, attrs: Record<string, string | number>, text?: string) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text) e.textContent = text;
    svg.append(e);
  };
  add('line', { x1: left, y1: y(0), x2: w - 10, y2: y(0), stroke: '#888' });
  add('line', { x1: left, y1: y(0), x2: left, y2: 8, stroke: '#888' });
  add('text', { x: left - 4, y: 16, 'text-anchor': 'end', 'font-size': 11 }, mib(maxY / 1.05));
  add('text', { x: w - 10, y: h - 6, 'text-anchor': 'end', 'font-size': 11 }, `${maxX.toLocaleString('en')} tokens`);
  add('line', { x1: left, y1: y(m.weightBytes), x2: w - 10, y2: y(m.weightBytes), stroke: '#999', 'stroke-dasharray': '4 3' });
  add('text', { x: left + 4, y: y(m.weightBytes) - 4, 'font-size': 11, fill: '#555' }, `weights (${m.fileType})`);
  for (const kv of TYPES) {
    const end = perPosition(m, kv) * maxX;
    add('line', { x1: x(0), y1: y(0), x2: x(maxX), y2: y(end), stroke: COLORS[kv], 'stroke-width': 2 });
    // Types of the same size (int8 and fp8) share one line and one label.
    const same = TYPES.filter((t) => perPosition(m, t) === perPosition(m, kv));
    if (same[0] === kv) add('text', { x: x(maxX) - 4, y: y(end) - 4, 'text-anchor': 'end', 'font-size': 11, fill: COLORS[kv] }, same.join(' = '));
  }
  add('line', { x1: x(context), y1: y(0), x2: x(context), y2: 8, stroke: '#1d2330', 'stroke-dasharray': '2 2' });
  chartHost.replaceChildren(svg);
}

const saved: QuantManifest[] = [];
let current: AbortController | null = null;

/** Evaluates the base (as f32) with each chosen cache type against the f32-cache base. */
async function measureCaches(): Promise<void> {
  const types = inOrder(MEASURABLE, measured) as EvalKvCache[];
  keepInUrl({ context: slider.value, kv: types.join(','), protocol: protocol.value });
  current?.abort();
  const control = (current = new AbortController());
  delete kvStatus.dataset.done;
  delete kvStatus.dataset.error;
  kvBody.replaceChildren();
  try {
    const lab = await sharedLab();
    await ensureModel(lab, MODEL);
    const p = PROTOCOLS[protocol.value]!;
    for (const kvCache of types) {
      kvStatus.textContent = `Evaluating the base with an ${kvCache} cache…`;
      const [m] = await lab.evaluate({ formats: ['f32'], protocol: { ctx: p.ctx, windows: p.windows, dataUrl: DATA_URL, saved }, kvCache }, { signal: control.signal });
      if (control.signal.aborted) return;
      if (!saved.includes(m!)) saved.push(m!);
      addRow(kvCache, m!);
    }
    const first = saved.find((m) => m.protocol.ctx === p.ctx);
    if (first) (document.getElementById('kv-protocol-text') as HTMLElement).textContent = `${first.protocol.windows === 1 ? 'one window' : `${first.protocol.windows} windows`} of ${first.protocol.ctx} tokens of Moby-Dick (chapters 1–3), ${first.protocol.tokensScored} scored predictions`;
    kvStatus.textContent = types.length ? `${types.length} cache type${types.length === 1 ? '' : 's'} measured` : 'Choose a cache type below to measure it.';
    kvNote(types.map((kv) => saved.find((m) => m.protocol.kvCache === kv && m.protocol.ctx === p.ctx && m.protocol.windows === p.windows)!));
    kvStatus.dataset.done = types.join(',');
  } catch (error) {
    if (!control.signal.aborted) showError(kvStatus, error);
  }
}

/** Lesson 4's point in this table: a cache whose perplexity went down while its predictions moved. */
function kvNote(rows: QuantManifest[]): void {
  const note = document.getElementById('kv-note') as HTMLElement;
  const lower = rows.find((m) => m.result.ppl < m.result.basePpl && (m.result.klMean ?? 0) > 0);
  note.dataset.lower = lower?.protocol.kvCache ?? '';
  note.textContent = lower
    ? `The ${lower.protocol.kvCache} cache lowered perplexity here (${lower.result.ppl.toFixed(2)} against ${lower.result.basePpl.toFixed(2)}), yet it changed the top prediction at ${Math.round((1 - (lower.result.top1Agreement ?? 1)) * lower.protocol.tokensScored)} of ${lower.protocol.tokensScored} positions: not a better model, a different one, and on so few tokens a lucky one. KL and top-1 agreement show the change that perplexity hides.`
    : "No cache lowered perplexity here; where two caches' perplexities are close, the KL column still tells them apart.";
}

function addRow(kv: EvalKvCache, m: QuantManifest): void {
  const r = m.result;
  const delta = r.paired?.deltaPpl ?? r.ppl - r.basePpl;
  const row = kvBody.insertRow();
  Object.assign(row.dataset, { kv, protocolKv: m.protocol.kvCache ?? 'f32', ppl: String(r.ppl), meanNll: String(r.meanNll), basePpl: String(r.basePpl), deltaPpl: String(delta), kl: String(r.klMean), top1: String(r.top1Agreement), tokens: String(m.protocol.tokensScored) });
  const bits = shape ? ((8 * HEAD_BYTES[kv](shape.headDim)) / shape.headDim).toString() : '';
  row.append(cell(kv, 'th'), cell(bits), cell(r.ppl.toFixed(3)), cell(`${delta >= 0 ? '+' : '−'}${Math.abs(delta).toFixed(3)}`), cell((r.klMean ?? NaN).toExponential(2)), cell(`${(100 * (r.top1Agreement ?? NaN)).toFixed(1)} %`));
}

let shape: Shape | null = null;

async function start(): Promise<void> {
  memoryStatus.textContent = 'Opening the model…';
  try {
    const lab = await sharedLab();
    await ensureModel(lab, MODEL);
    shape = shapeOf(lab.model!);
    // The slider's range is the model's own context; a shared link's context is kept within it.
    slider.max = String(shape.contextLength);
    const asked = Math.round(Number(params.get('context') ?? DEFAULT_CONTEXT) / 128) * 128;
    slider.value = String(Math.min(Math.max(asked, 128), shape.contextLength));
    showShape(shape);
    showMemory(shape);
    slider.addEventListener('input', () => {
      showMemory(shape!);
      keepInUrl({ context: slider.value });
    });
    memoryStatus.dataset.done = 'true';
  } catch (error) {
    showError(memoryStatus, error);
  }
  await measureCaches();
}

void start();
