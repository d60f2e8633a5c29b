// quantlab from a plain <script type="module">: the package's files are loaded as they are, by a
// relative path into node_modules (an import map mapping "quantlab" to the same file works too).
// The module starts its worker and fetches its .wasm by URLs relative to itself.
import { createLab } from './node_modules/quantlab/lib/index.js';

const params = new URLSearchParams(location.search);
const modelUrl = params.get('model') ?? '/models/SmolLM2-135M-Instruct.Q4_1.gguf';
const status = document.getElementById('status');
const rows = document.getElementById('formats');

try {
  const lab = await createLab({ threads: params.has('threads') ? Number(params.get('threads')) : undefined });
  status.textContent = `Opening ${modelUrl} (quantlab core ${lab.core.coreVersion})…`;
  await lab.load(modelUrl);
  const matrices = lab.tensors().filter((t) => t.dims.length === 2);
  // The first attention matrix (small); any other model: its first matrix.
  const tensor = (matrices.find((t) => t.name.endsWith('attn_q.weight')) ?? matrices[0]).name;
  const plain = await lab.histogram(tensor, { bins: 64 });
  status.textContent = `${tensor}: ${plain.total.toLocaleString()} values between ${plain.lo.toFixed(4)} and ${plain.hi.toFixed(4)}`;
  Object.assign(status.dataset, { values: String(plain.total), lo: String(plain.lo), hi: String(plain.hi) });
  for (const format of ['int8-sym-channel', 'nf4', 'int4-sym-g64']) {
    const view = await lab.histogram(tensor, { format, bins: 64 });
    // A format that cannot split this tensor still gets a row, saying why.
    const cells = view.formatError ? [format, view.formatError, '', ''] : [view.format, view.bitsPerWeight.toFixed(2), String(view.metrics?.sqnrDb ?? 'n/a'), String(view.levels.length)];
    const row = document.createElement('tr');
    row.dataset.format = format;
    for (const text of cells) row.append(Object.assign(document.createElement('td'), { textContent: text }));
    rows.append(row);
  }
  Object.assign(status.dataset, { ready: 'true', threads: String(lab.core.threads) });
} catch (error) {
  status.textContent = `Failed: ${error.message}`;
  status.dataset.error = error.name;
}
