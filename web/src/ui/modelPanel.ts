// Panel 1: what the open model is. Every string from the file is set as text, never as HTML.
import { formatBytes, formatCount, formatParams } from '../format';
import type { LoadedModel } from '../messages';
import { el } from './dom';

/** The format the checkpoint's weights are stored in, e.g. "Q4_1": what any "base" really is. */
export function sourceFormat(m: LoadedModel): string {
  const ft = m.header.summary.fileType;
  if (ft) return ft.replace(/^MOSTLY_/, '');
  const biggest = [...m.header.summary.types].sort((a, b) => b.elements - a.elements)[0];
  return biggest?.type ?? 'unknown';
}

export function isQuantizedSource(m: LoadedModel): boolean {
  return !/^(ALL_)?F(32|16)$|^BF16$/.test(sourceFormat(m));
}

/** "the Q4_1 checkpoint dequantized" — the honest name of the base for a quantized source. */
export function baseName(m: LoadedModel | null): string {
  if (!m) return 'the base';
  return isQuantizedSource(m) ? `base (= the ${sourceFormat(m)} checkpoint dequantized)` : `base (${sourceFormat(m)})`;
}

function metadataText(value: unknown): string {
  if (typeof value === 'string') return value;
  return JSON.stringify(value) ?? String(value);
}

export function renderModelCard(card: HTMLElement, m: LoadedModel): void {
  const s = m.header.summary;
  const dl = el('dl', undefined, { class: 'facts' });
  const fact = (k: string, v: string, id?: string) => dl.append(el('dt', k), el('dd', v, id ? { id } : {}));
  const fmt = sourceFormat(m);
  fact('Name', s.name ?? '(unnamed)', 'model-name');
  fact('File', m.source);
  fact('Architecture', s.architecture ?? 'unknown', 'model-arch');
  fact('Parameters', `${formatParams(s.parameterCount)} (${formatCount(s.parameterCount)})`, 'model-params');
  fact('Size', `${formatBytes(m.header.fileLen)} · ${s.bitsPerWeight.toFixed(2)} bits/weight`, 'model-size');
  fact('Stored as', `${fmt} · ${s.types.map((t) => `${t.tensors} ${t.type}`).join(', ')}`, 'model-format');
  fact('Layers', `${s.blockCount ?? '?'} × (d_model ${s.embeddingLength ?? '?'}, ffn ${s.feedForwardLength ?? '?'}, heads ${s.headCount ?? '?'}/${s.headCountKv ?? '?'} kv)`);
  fact('Vocabulary', `${formatCount(s.vocabSize ?? 0)} tokens (${s.tokenizerModel ?? '?'})`);
  const keys = Object.keys(m.header.metadata).length;
  const children: HTMLElement[] = [dl];
  if (m.header.container === 'safetensors') {
    fact('Container', `safetensors, ${s.tensorCount} tensors, ${keys} metadata keys`, 'model-container');
    children.push(
      el('p', 'This is a safetensors file: the layer browser, histogram, outlier and NF4 panels work on its F32/F16/BF16 tensors. A safetensors file carries no tokenizer or hyper-parameters, so running the model — activations, format comparison, generation and export — needs a GGUF: open one for those panels.', { class: 'notice', id: 'safetensors-note' }),
    );
  } else {
    fact('GGUF', `v${m.header.version}, ${s.tensorCount} tensors, ${keys} metadata keys`);
  }
  if (isQuantizedSource(m)) {
    children.push(
      el('p', `Note: this checkpoint is already quantized (${fmt}). Its weights sit on a ${fmt} grid, so the "base" the lab compares other formats against is this ${fmt} model dequantized, not the original 16-bit weights.`, { class: 'notice', id: 'base-note' }),
    );
  }
  const details = el('details', undefined, { id: 'metadata' });
  details.append(el('summary', 'All metadata'));
  const meta = el('dl', undefined, { class: 'facts metadata' });
  for (const [key, value] of Object.entries(m.header.metadata)) meta.append(el('dt', key), el('dd', metadataText(value)));
  details.append(meta);
  children.push(details);
  card.replaceChildren(...children);
}
