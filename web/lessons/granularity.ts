// Lesson 2 (why granularity matters): one tensor with outlier channels under six symmetric integer
// formats from per-tensor to groups of 32, with each one's error over the whole tensor and its bits
// per weight, and a chosen format's levels. The tensor and format are kept in the URL
// (`?tensor=…&format=…`) so a teacher can link a class to one view.
import { ensureModel } from '../src/components/base';
import { defineElements, sharedLab, type QlLevels, type QlOutliers } from '../src/components/index';
import { MODEL, cell, keepInUrl, showError, pickOption } from './state';

// The repository's package.json marks only lib/components.js as having side effects (see number-line.ts).
defineElements();

/** The formats compared, coarsest first; `per` says what one scale covers. */
const FORMATS = [
  { format: 'int8-sym-tensor', per: 'tensor' },
  { format: 'int4-sym-tensor', per: 'tensor' },
  { format: 'int4-sym-channel', per: 'output channel (row)' },
  { format: 'int4-sym-g128', per: '128 weights of a row' },
  { format: 'int4-sym-g64', per: '64 weights of a row' },
  { format: 'int4-sym-g32', per: '32 weights of a row' },
] as const;

const tensor = document.getElementById('tensor') as HTMLSelectElement;
const format = document.getElementById('format') as HTMLSelectElement;
const outliers = document.getElementById('outliers') as QlOutliers;
const view = document.getElementById('view') as QlLevels;
const body = document.querySelector('#errors tbody') as HTMLTableSectionElement;
const status = document.getElementById('errors-status') as HTMLElement;

for (const f of FORMATS) format.append(new Option(f.format, f.format));
// The prose starts from per-tensor INT4, the format an outlier hurts most.
format.value = 'int4-sym-tensor';
const params = new URLSearchParams(location.search);
pickOption(tensor, params.get('tensor'));
pickOption(format, params.get('format'));

let current: AbortController | null = null;

/** Quantizes the tensor with each format (one worker call each) and fills the table. */
async function fillTable(name: string): Promise<void> {
  current?.abort();
  const control = (current = new AbortController());
  body.replaceChildren();
  delete status.dataset.error;
  status.textContent = `Quantizing ${name} six ways…`;
  try {
    // The elements' lab and model: ensureModel shares their one download of MODEL.
    const lab = await sharedLab();
    await ensureModel(lab, MODEL);
    for (const f of FORMATS) {
      const v = await lab.histogram(name, { format: f.format, bins: 1, scope: 'tensor', group: 0, signal: control.signal });
      if (control.signal.aborted) return;
      const row = body.insertRow();
      row.dataset.format = f.format;
      if (v.formatError || !v.metrics) {
        row.dataset.error = v.formatError ?? 'no metrics';
        row.append(cell(f.format, 'th'), cell(f.per), cell(`cannot apply: ${v.formatError ?? 'no metrics'}`));
        continue;
      }
      const m = v.metrics;
      Object.assign(row.dataset, { bpw: String(v.bitsPerWeight), rmse: String(m.rmse), sqnr: String(m.sqnrDb) });
      const sqnr = typeof m.sqnrDb === 'number' ? m.sqnrDb.toFixed(2) : m.sqnrDb;
      row.append(cell(f.format, 'th'), cell(f.per), cell(v.bitsPerWeight.toFixed(3)), cell(m.rmse.toExponential(3)), cell(sqnr));
    }
    status.textContent = `${name}: ${FORMATS.length} formats measured`;
    status.dataset.done = name;
  } catch (error) {
    if (control.signal.aborted) return;
    showError(status, error);
  }
}

let tableFor = '';

function apply(): void {
  keepInUrl({ tensor: tensor.value, format: format.value });
  for (const el of [outliers, view]) {
    el.src = MODEL;
    el.tensor = tensor.value;
  }
  view.format = format.value;
  if (tableFor !== tensor.value) {
    tableFor = tensor.value;
    void fillTable(tensor.value);
  }
}

tensor.addEventListener('change', apply);
format.addEventListener('change', apply);
apply();
