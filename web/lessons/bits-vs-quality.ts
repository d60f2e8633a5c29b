// Lesson 4 (bits vs quality): a handful of formats evaluated against the base on a short protocol
// (`lab.evaluate`), drawn by <ql-tradeoff> and tabled with perplexity, KL and top-1 agreement; a
// sentence built from the measured numbers and a four-token worked example show why perplexity
// alone misses changed predictions. The chosen formats are kept in the URL (`?formats=a,b,…`).
import { ensureModel } from '../src/components/base';
import { defineElements, sharedLab, type QlTradeoff } from '../src/components/index';
import type { QuantManifest } from '../src/messages';
import { DATA_URL, MODEL, PROTOCOLS, cell, choiceBoxes, inOrder, keepInUrl, protocolChoice, showError } from './state';

// The repository's package.json marks only lib/components.js as having side effects (see number-line.ts).
defineElements();

/** Offered formats, and the ones charted by default (one per family, 8 down to 3 bits). */
const OFFERED = ['q8_0', 'q5_0', 'q4_0', 'q4_1', 'int4-sym-g64', 'nf4-b64', 'fp4-b64', 'int3-asym-g64', 'int2-asym-g32'];
const DEFAULT = ['q8_0', 'q5_0', 'q4_0', 'int4-sym-g64', 'nf4-b64', 'int3-asym-g64'];

const chart = document.getElementById('chart') as QlTradeoff;
const body = document.querySelector('#quality tbody') as HTMLTableSectionElement;
const status = document.getElementById('quality-status') as HTMLElement;
const gap = document.getElementById('measured-gap') as HTMLElement;
const boxes = document.getElementById('formats') as HTMLElement;
const protocol = document.getElementById('protocol') as HTMLSelectElement;
const protocolText = document.getElementById('protocol-text') as HTMLElement;

const params = new URLSearchParams(location.search);
protocolChoice(protocol, params.get('protocol'));
protocol.addEventListener('change', () => void measure());
const asked = params.get('formats');
const chosen = new Set(asked ? asked.split(',').filter(Boolean) : DEFAULT);
choiceBoxes(boxes, OFFERED, chosen, () => void measure());

/** Manifests measured while the page is open: `evaluate` reuses them instead of measuring again. */
const saved: QuantManifest[] = [];
let current: AbortController | null = null;

async function measure(): Promise<void> {
  const formats = inOrder(OFFERED, chosen);
  keepInUrl({ formats: formats.join(','), protocol: protocol.value });
  current?.abort();
  const control = (current = new AbortController());
  delete status.dataset.done;
  delete status.dataset.error;
  if (formats.length === 0) {
    status.textContent = 'Choose at least one format below.';
    return;
  }
  status.textContent = `Evaluating ${formats.join(', ')}…`;
  try {
    const lab = await sharedLab();
    await ensureModel(lab, MODEL);
    const onProgress = (_phase: unknown, done: number, total: number, step?: { label: string }) => {
      if (step) status.textContent = `${step.label}: ${done} of ${total}…`;
    };
    const rows = await lab.evaluate({ formats, protocol: { ...PROTOCOLS[protocol.value]!, dataUrl: DATA_URL, saved } }, { signal: control.signal, onProgress });
    if (control.signal.aborted) return;
    for (const m of rows) if (!saved.includes(m)) saved.push(m);
    chart.results = rows;
    fillTable(rows);
    gap.textContent = gapSentence(rows);
    const p = rows[0]!.protocol;
    protocolText.textContent = `${p.windows === 1 ? 'one window' : `${p.windows} windows`} of ${p.ctx} tokens of Moby-Dick (chapters 1–3), so each format is scored on ${p.tokensScored} next-token predictions`;
    protocolText.dataset.tokens = String(p.tokensScored);
    status.textContent = `${rows.length} format${rows.length === 1 ? '' : 's'} measured on ${rows[0]!.protocol.tokensScored} tokens`;
    status.dataset.done = formats.join(',');
  } catch (error) {
    if (control.signal.aborted) return;
    showError(status, error);
  }
}

function fillTable(rows: QuantManifest[]): void {
  body.replaceChildren();
  for (const m of rows) {
    const r = m.result;
    const delta = r.paired?.deltaPpl ?? r.ppl - r.basePpl;
    const top1 = r.top1Agreement ?? NaN;
    const changed = Math.round((1 - top1) * m.protocol.tokensScored);
    const row = body.insertRow();
    Object.assign(row.dataset, {
      format: r.format,
      bpw: String(r.bitsPerWeight),
      meanNll: String(r.meanNll),
      ppl: String(r.ppl),
      basePpl: String(r.basePpl),
      deltaPpl: String(delta),
      kl: String(r.klMean),
      top1: String(top1),
      tokens: String(m.protocol.tokensScored),
      fallbacks: String(r.fallbacks),
      bytes: String(r.bytes),
    });
    const sign = delta >= 0 ? '+' : '−';
    row.append(cell(r.format, 'th'), cell(r.bitsPerWeight.toFixed(3)), cell(r.meanNll.toFixed(4)), cell(r.ppl.toFixed(3)), cell(`${sign}${Math.abs(delta).toFixed(3)}`), cell((r.klMean ?? NaN).toExponential(2)), cell(`${(100 * top1).toFixed(1)} %`), cell(`${changed} of ${m.protocol.tokensScored}`));
  }
  const base = rows[0]!;
  const row = body.insertRow();
  row.dataset.format = 'base';
  row.append(cell(`base (${base.source.format} dequantized)`, 'th'), cell(base.source.bitsPerWeight.toFixed(3)), cell(Math.log(base.result.basePpl).toFixed(4)), cell(base.result.basePpl.toFixed(3)), cell('0'), cell('0'), cell('100 %'), cell('0'));
}

/**
 * The measured case against perplexity: two formats that perplexity ranks one way and both KL and
 * top-1 agreement the other way (the pair with the largest perplexity gap), or else the format whose
 * perplexity moved least with the predictions it still changed. The pair is kept on the element.
 */
function gapSentence(rows: QuantManifest[]): string {
  const d = (m: QuantManifest) => Math.abs(m.result.ppl - m.result.basePpl);
  const kl = (m: QuantManifest) => m.result.klMean ?? 0;
  const top1 = (m: QuantManifest) => m.result.top1Agreement ?? 1;
  const changed = (m: QuantManifest) => Math.round((1 - top1(m)) * m.protocol.tokensScored);
  const pct = (m: QuantManifest) => `${((100 * d(m)) / m.result.basePpl).toFixed(2)} %`;
  let pair: [QuantManifest, QuantManifest] | null = null;
  for (const a of rows) {
    for (const b of rows) {
      if (d(a) < d(b) && kl(a) > kl(b) && top1(a) < top1(b) && (!pair || d(b) - d(a) > d(pair[1]) - d(pair[0]))) pair = [a, b];
    }
  }
  if (pair) {
    const [a, b] = pair;
    Object.assign(gap.dataset, { closer: a.result.format, further: b.result.format });
    return `Measured here: ${a.result.format} moved perplexity by ${pct(a)}, less than ${b.result.format} (${pct(b)}), yet its KL to the base is larger (${kl(a).toFixed(3)} against ${kl(b).toFixed(3)} nats) and it changed the top prediction at ${changed(a)} positions against ${changed(b)}. Ranked by perplexity alone, ${a.result.format} looks like the better format; by how much of the base's behaviour it kept, ${b.result.format} is.`;
  }
  delete gap.dataset.closer;
  delete gap.dataset.further;
  const quiet = rows.reduce((best, m) => (d(m) < d(best) ? m : best));
  return `Measured here: ${quiet.result.format} moved perplexity by only ${pct(quiet)}, yet it changed the top prediction at ${changed(quiet)} of ${quiet.protocol.tokensScored} positions (mean KL ${kl(quiet).toExponential(2)} nats).`;
}

/** The worked example: the base and two models that give the observed token A the same probability. */
const EXAMPLE = [
  { model: 'base', p: [0.25, 0.5, 0.15, 0.1] },
  { model: 'quantized X', p: [0.25, 0.45, 0.18, 0.12] },
  { model: 'quantized Y', p: [0.25, 0.1, 0.55, 0.1] },
];
const TOKENS = ['A', 'B', 'C', 'D'];

function klDivergence(p: number[], q: number[]): number {
  return p.reduce((sum, pi, i) => (pi > 0 ? sum + pi * Math.log(pi / q[i]!) : sum), 0);
}

function workedExample(): void {
  const tbody = document.querySelector('#example tbody') as HTMLTableSectionElement;
  const base = EXAMPLE[0]!.p;
  for (const { model, p } of EXAMPLE) {
    const nll = -Math.log(p[0]!);
    const kl = klDivergence(base, p);
    const top = TOKENS[p.indexOf(Math.max(...p))]!;
    const row = tbody.insertRow();
    Object.assign(row.dataset, { model, p: JSON.stringify(p), nll: String(nll), kl: String(kl), top });
    row.append(cell(model, 'th'), ...p.map((x) => cell(x.toFixed(2))), cell(nll.toFixed(4)), cell(kl.toFixed(4)), cell(top));
  }
  const [x, y] = [klDivergence(base, EXAMPLE[1]!.p), klDivergence(base, EXAMPLE[2]!.p)];
  (document.getElementById('example-note') as HTMLElement).textContent =
    `Both quantized models give A probability 0.25, so their NLL (${(-Math.log(0.25)).toFixed(4)}) and perplexity are the base's exactly. ` +
    `But X only nudged the other tokens (KL ${x.toFixed(4)} nats, same top-1 B), while Y made C its first choice (KL ${y.toFixed(4)} nats, ${(y / x).toFixed(0)}× X's): greedy decoding from Y writes C where the base writes B.`;
}

workedExample();
void measure();
