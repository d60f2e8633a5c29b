// Lesson 5 (rounding with memory): one matrix of the default model's first layer, round to nearest
// vs GPTQ, judged by the relative output error on calibration inputs (the worker's layerErrors, the
// computation of `quantlab layer-error`). Tensor, format and tokens are kept in the URL.
import { runCall } from '../src/api/calls';
import { ensureModel } from '../src/components/base';
import { sharedLab } from '../src/components/index';
import { MODEL, keepInUrl, pickOption } from './state';

const tensor = document.getElementById('tensor') as HTMLSelectElement;
const format = document.getElementById('format') as HTMLSelectElement;
const tokens = document.getElementById('tokens') as HTMLSelectElement;
const body = document.querySelector('#compare tbody') as HTMLTableSectionElement;
const status = document.getElementById('compare-status') as HTMLElement;

const params = new URLSearchParams(location.search);
pickOption(tensor, params.get('tensor'));
pickOption(format, params.get('format'));
pickOption(tokens, params.get('tokens'));

let current: AbortController | null = null;

async function compare(): Promise<void> {
  current?.abort();
  const control = (current = new AbortController());
  keepInUrl({ tensor: tensor.value, format: format.value, tokens: tokens.value });
  body.replaceChildren();
  delete status.dataset.error;
  delete status.dataset.done;
  status.textContent = `Calibrating on ${tokens.value} tokens and quantizing ${tensor.value} both ways…`;
  try {
    const lab = await sharedLab();
    await ensureModel(lab, MODEL);
    const args = { target: format.value, calib: { kind: 'default' as const }, tokens: Number(tokens.value), tensors: [tensor.value], methods: ['gptq' as const], actOrder: false, dataUrl: new URL('../data/moby-dick/', location.href).href };
    const out = await runCall(lab.client, 'layerErrors', args, {
      signal: control.signal,
      onProgress: (_phase, done, total) => {
        status.textContent = `Calibrating and quantizing: ${total ? Math.round((100 * done) / total) : 0}%`;
      },
    });
    if (control.signal.aborted) return;
    for (const r of out.rows) {
      const row = body.insertRow();
      Object.assign(row.dataset, { tensor: r.tensor, rtn: String(r.rtn), gptq: String(r.gptq) });
      for (const c of [r.tensor, r.format, r.rtn.toExponential(3), r.gptq === null ? '—' : r.gptq.toExponential(3), r.gptq === null ? '—' : (r.gptq / r.rtn).toFixed(3)]) row.insertCell().textContent = c;
    }
    status.textContent = `${out.tokens} tokens of ${out.text}; ${out.seconds.toFixed(1)} s.`;
    status.dataset.done = `${tensor.value}|${format.value}|${tokens.value}`;
  } catch (error) {
    if (control.signal.aborted) return;
    status.dataset.error = 'true';
    status.textContent = `${(error as Error).name}: ${(error as Error).message}`;
  }
}

for (const s of [tensor, format, tokens]) s.addEventListener('change', () => void compare());
void compare();
