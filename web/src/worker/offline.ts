// Keeps the default model in Cache Storage so the lab works offline after the first visit. The
// service worker (vite-plugin-pwa, web/vite.config.ts) serves /models/ and /data/ CacheFirst from
// the same cache, and download() looks there first, so either path finds it.
import type { OfflineState } from '../messages';
import { MODEL_CACHE } from '../source';
import type { BufferSource } from '../source';
import type { Ctx } from './context';

/** Only the lab's own files are kept: a model opened from another site could be gigabytes. */
function isLabFile(url: string): boolean {
  const u = new URL(url);
  return u.origin === self.location.origin && /\/(models|data)\//.test(u.pathname);
}

export async function storeForOffline(url: string, source: BufferSource, ctx: Ctx): Promise<OfflineState> {
  if (!isLabFile(url)) return { state: 'not-kept', message: 'Models opened from other sites are not kept for offline use.' };
  if (typeof caches === 'undefined') return { state: 'unavailable', message: 'This browser gives the lab no Cache Storage, so it cannot work offline.' };
  if (source.fromCache) return { state: 'cached', message: 'The model is stored for offline use.' };
  const need = source.size;
  const estimate = await navigator.storage?.estimate?.().catch(() => undefined);
  if (estimate?.quota !== undefined && estimate.usage !== undefined && estimate.quota - estimate.usage < need * 1.1) {
    const free = Math.max(0, estimate.quota - estimate.usage);
    return {
      state: 'no-quota',
      message: `Not enough browser storage to keep the model offline: it needs ${(need / 2 ** 20).toFixed(0)} MiB, the browser allows ${(free / 2 ** 20).toFixed(0)} MiB more. The lab still works online.`,
    };
  }
  ctx.progress('cache', 0, need);
  try {
    const cache = await caches.open(MODEL_CACHE);
    const body = await source.read(0, need);
    await cache.put(url, new Response(body.slice().buffer as ArrayBuffer, { headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(need) } }));
    ctx.progress('cache', need, need);
    return { state: 'stored', message: 'The model is now stored for offline use.' };
  } catch (error) {
    const quota = (error as Error).name === 'QuotaExceededError';
    return {
      state: quota ? 'no-quota' : 'unavailable',
      message: quota ? 'The browser refused to store the model (storage quota exceeded). The lab still works online.' : `Could not store the model for offline use: ${(error as Error).message}`,
    };
  }
}
