// Saved comparison results: IndexedDB storage and JSON/CSV export of quant manifests.
// `manifestsToCsv` is pure (unit-tested in tests/web/results.test.ts).
import type { QuantManifest } from './messages';

const DB = 'quantlab';
const STORE = 'comparisons';

function openDb(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: 'id', autoIncrement: true });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error('IndexedDB is unavailable'));
  });
}

async function withStore<T>(mode: IDBTransactionMode, f: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await openDb();
  try {
    return await new Promise<T>((resolve, reject) => {
      const request = f(db.transaction(STORE, mode).objectStore(STORE));
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  } finally {
    db.close();
  }
}

export async function saveManifest(m: QuantManifest): Promise<void> {
  await withStore('readwrite', (s) => s.add(m));
}

export async function loadManifests(): Promise<QuantManifest[]> {
  return (await withStore('readonly', (s) => s.getAll())) as QuantManifest[];
}

export async function clearManifests(): Promise<void> {
  await withStore('readwrite', (s) => s.clear());
}

export const CSV_COLUMNS = [
  'source', 'source_sha256', 'source_format', 'format', 'bits_per_weight', 'bytes', 'ppl', 'ppl_stderr', 'base_ppl',
  'kl_mean', 'kl_max', 'top1_agreement', 'tokens_per_sec', 'fallbacks', 'protocol', 'ctx', 'windows', 'tokens_scored', 'tasks_valid', 'tasks_agreement', 'tasks_suite',
  'eval_text', 'core_version', 'created_at', 'scheme',
] as const;

function csvCell(v: unknown): string {
  const s = v === undefined || v === null ? '' : typeof v === 'string' ? v : typeof v === 'number' ? String(v) : JSON.stringify(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One CSV row per manifest, every field of the manifest included. */
export function manifestsToCsv(ms: QuantManifest[]): string {
  const rows = ms.map((m) => {
    const r = m.result;
    const values: Record<(typeof CSV_COLUMNS)[number], unknown> = {
      source: m.source.name, source_sha256: m.source.sha256, source_format: m.source.format, format: r.format,
      bits_per_weight: r.bitsPerWeight, bytes: r.bytes, ppl: r.ppl, ppl_stderr: r.pplStderr, base_ppl: r.basePpl,
      kl_mean: r.klMean, kl_max: r.klMax, top1_agreement: r.top1Agreement, tokens_per_sec: r.tokensPerSec,
      fallbacks: r.fallbacks, protocol: m.protocol.protocol, ctx: m.protocol.ctx, windows: m.protocol.windows,
      tokens_scored: m.protocol.tokensScored, tasks_valid: r.tasks?.result.valid, tasks_agreement: r.tasks?.result.agreement, tasks_suite: r.tasks?.suite.label, eval_text: m.protocol.text, core_version: m.coreVersion,
      created_at: m.createdAt, scheme: r.scheme,
    };
    return CSV_COLUMNS.map((c) => csvCell(values[c])).join(',');
  });
  return [CSV_COLUMNS.join(','), ...rows].join('\n') + '\n';
}

/** Lets the user save `data` as `fileName`. */
export function offerDownload(data: Blob, fileName: string): HTMLAnchorElement {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(data);
  a.download = fileName;
  a.textContent = `Download ${fileName}`;
  return a;
}
