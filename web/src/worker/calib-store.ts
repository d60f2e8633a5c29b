// Importance matrices kept across page loads, in Cache Storage beside the model file (the lab's
// offline store), keyed by (model hash, calibration text hash, tokens, core version): a reload
// that asks for the same calibration reuses it instead of running the model over the text again.
// A saved matrix goes back through the core (`LabImatrix.fromGguf`), which checks it is an
// imatrix GGUF whose every entry fits the open model; one that fails is deleted and never used.
import { coreVersion, LabImatrix, type LabModel } from '../pkg/quantlab.js';

const CACHE = 'quantlab-calibration';
/** Response header holding what `info().textTokens` reports (the GGUF does not record it). */
const TEXT_TOKENS = 'x-quantlab-text-tokens';

export interface CalibKey {
  modelSha256: string;
  textSha256: string;
  tokens: number;
}

/** A same-origin address that names the entry; nothing is ever fetched from it. */
function address(key: CalibKey): string {
  const path = `/__quantlab-calibration/imatrix/${key.modelSha256}/${key.textSha256}/${key.tokens}/${encodeURIComponent(coreVersion())}`;
  return new URL(path, self.location.origin).href;
}

async function open(): Promise<Cache | undefined> {
  if (typeof caches === 'undefined') return undefined;
  return caches.open(CACHE).catch(() => undefined);
}

/** What the store had: a matrix, nothing, or an entry it dropped (and why). */
export type Loaded = { state: 'saved'; imatrix: LabImatrix } | { state: 'none' } | { state: 'dropped'; reason: string };

/** The saved matrix for `key`, checked against `model`. */
export async function loadImatrix(key: CalibKey, model: LabModel): Promise<Loaded> {
  const cache = await open();
  const url = address(key);
  const response = await cache?.match(url);
  if (!cache || !response) return { state: 'none' };
  try {
    const bytes = new Uint8Array(await response.arrayBuffer());
    const textTokens = Number(response.headers.get(TEXT_TOKENS));
    return { state: 'saved', imatrix: LabImatrix.fromGguf(bytes, textTokens, model) };
  } catch (error) {
    await cache.delete(url);
    return { state: 'dropped', reason: error instanceof Error ? error.message : String(error) };
  }
}

/** Keeps `imatrix` for `key`; a browser that refuses (no Cache Storage, quota) only loses the reuse. */
export async function saveImatrix(key: CalibKey, imatrix: LabImatrix): Promise<void> {
  const cache = await open();
  if (!cache) return;
  const bytes = imatrix.toGguf('quantlab web lab calibration');
  const headers = { 'Content-Type': 'application/octet-stream', [TEXT_TOKENS]: String(imatrix.info().textTokens) };
  await cache.put(address(key), new Response(bytes.slice().buffer as ArrayBuffer, { headers })).catch(() => undefined);
}
