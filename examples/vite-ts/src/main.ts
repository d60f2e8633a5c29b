// A small app on quantlab's client API: open a model, draw a tensor's histogram with a format's
// levels, quantize and evaluate that format against the base, and stream a generation.
// `?model=URL` and `?data=URL` (the Moby-Dick chapters the evaluation scores) override the
// defaults, which are the quantlab repository's served models/ and data/ folders.
import './style.css';
import { CancelledError, createLab, type Lab, type TensorView } from 'quantlab';

const params = new URLSearchParams(location.search);
const modelUrl = params.get('model') ?? '/models/SmolLM2-135M-Instruct.Q4_1.gguf';
const dataUrl = params.get('data') ?? '/data/moby-dick/';
const threads = params.has('threads') ? Number(params.get('threads')) : undefined;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $('status');
const tensorSelect = $<HTMLSelectElement>('tensor');
const formatInput = $<HTMLInputElement>('format');
const svg = document.getElementById('histogram') as unknown as SVGSVGElement;

function drawHistogram(view: TensorView): void {
  const { counts, lo: min, hi: max, total } = view.histogram;
  const width = 640;
  const height = 200;
  const peak = Math.max(...counts, 1);
  const barWidth = width / counts.length;
  const x = (value: number) => ((value - min) / (max - min || 1)) * width;
  const shapes: SVGElement[] = counts.map((count, i) => {
    const rect = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
    const h = (count / peak) * (height - 10);
    rect.setAttribute('class', 'bar');
    rect.setAttribute('x', String(i * barWidth));
    rect.setAttribute('y', String(height - h));
    rect.setAttribute('width', String(Math.max(barWidth - 1, 1)));
    rect.setAttribute('height', String(h));
    return rect;
  });
  for (const level of view.levels.filter((l) => l >= min && l <= max)) {
    const line = document.createElementNS('http://www.w3.org/2000/svg', 'line');
    line.setAttribute('class', 'level');
    line.setAttribute('x1', String(x(level)));
    line.setAttribute('x2', String(x(level)));
    line.setAttribute('y1', '0');
    line.setAttribute('y2', String(height));
    shapes.push(line);
  }
  svg.replaceChildren(...shapes);
  Object.assign(svg.dataset, { values: String(total), lo: String(min), hi: String(max) });
  svg.dataset.bins = String(counts.length);
  const sqnr = view.metrics?.sqnrDb;
  const metrics = typeof sqnr === 'number' ? `, SQNR ${sqnr.toFixed(1)} dB` : '';
  $('histogram-caption').textContent = `${view.tensor}: ${total.toLocaleString()} values in ${counts.length} bins; ${view.levels.length} levels of ${view.format} in group ${view.group} (${view.bitsPerWeight.toFixed(2)} bits/weight${metrics})`;
}

async function draw(lab: Lab): Promise<void> {
  const view = await lab.histogram(tensorSelect.value, { format: formatInput.value, bins: 64 });
  drawHistogram(view);
}

async function evaluate(lab: Lab): Promise<void> {
  const format = formatInput.value;
  const results = $('results');
  const controller = new AbortController();
  const cancel = $<HTMLButtonElement>('cancel');
  cancel.disabled = false;
  cancel.onclick = () => controller.abort();
  const onProgress = (phase: string, loaded: number, total: number) => (results.textContent = `${phase} ${total ? `${Math.round((100 * loaded) / total)}%` : '…'}`);
  try {
    const report = await lab.quantize(format, { signal: controller.signal, onProgress });
    // One short window: a smoke test of the round trip, not a measurement to quote.
    const [manifest] = await lab.evaluate({ formats: [format], protocol: { ctx: 128, windows: 1, dataUrl } }, { signal: controller.signal, onProgress });
    const r = manifest!.result;
    results.dataset.ppl = String(r.ppl);
    results.dataset.basePpl = String(r.basePpl);
    results.dataset.kl = String(r.klMean);
    results.dataset.bits = String(report.bitsPerWeight);
    results.textContent = `${report.label}: ${report.bitsPerWeight.toFixed(2)} bits/weight (${report.fallbacks} matrices fell back); perplexity ${r.ppl.toFixed(3)} vs base ${r.basePpl.toFixed(3)}, KL ${r.klMean?.toFixed(4)} over ${manifest!.protocol.tokensScored} tokens`;
  } catch (error) {
    results.textContent = error instanceof CancelledError ? 'Cancelled.' : `Failed: ${(error as Error).message}`;
  } finally {
    cancel.disabled = true;
  }
}

async function generate(lab: Lab): Promise<void> {
  const out = { base: $('base-text'), quantized: $('quantized-text') };
  out.base.textContent = 'base: ';
  out.quantized.textContent = `${formatInput.value}: `;
  const counts = { base: 0, quantized: 0 };
  const button = $('generate');
  delete button.dataset.done;
  for await (const token of lab.generate($<HTMLInputElement>('prompt').value, { format: formatInput.value, maxTokens: 16 })) {
    out[token.side].textContent += token.piece;
    counts[token.side]++;
  }
  Object.assign(button.dataset, { base: String(counts.base), quantized: String(counts.quantized), done: 'true' });
}

async function main(): Promise<void> {
  const lab = await createLab({ threads });
  status.textContent = `quantlab core ${lab.core.coreVersion} on ${lab.core.threads} thread(s). Opening ${modelUrl}…`;
  const model = await lab.load(modelUrl, { onProgress: (phase, loaded, total) => (status.textContent = `${phase}: ${loaded} of ${total} bytes`) });
  const matrices = lab.tensors().filter((t) => t.dims.length === 2);
  tensorSelect.replaceChildren(...matrices.map((t) => new Option(t.name, t.name)));
  // The first attention matrix is small enough to draw at once (the embedding has 28M values).
  tensorSelect.value = matrices.find((t) => t.name.endsWith('attn_q.weight'))?.name ?? matrices[0]?.name ?? '';
  status.textContent = `${model.source}: ${matrices.length} weight matrices.`;
  Object.assign(status.dataset, { ready: 'true', threads: String(lab.core.threads) });
  $('draw').addEventListener('click', () => void draw(lab).catch(showError));
  $('evaluate').addEventListener('click', () => void evaluate(lab));
  $('generate').addEventListener('click', () => void generate(lab).catch(showError));
  await draw(lab);
}

function showError(error: unknown): void {
  status.textContent = `Failed: ${error instanceof Error ? error.message : String(error)}`;
  status.dataset.error = 'true';
}

main().catch(showError);
