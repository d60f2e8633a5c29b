/// <reference lib="webworker" />
// Loads the wasm core the lab worker runs: the threaded build (web/src/pkg-threads: shared memory,
// a pool of web workers started by wasm-bindgen-rayon's `initThreadPool`) where the page is
// cross-origin isolated, else the single-thread build (web/src/pkg).
//
// The lab's modules import the core as `../pkg/quantlab.js`; the build (web/vite-core-switch.ts)
// points those imports at one module whose exports are bound here to whichever build loaded, so
// the handlers call the same functions whatever the build. Only this file imports the builds
// themselves.
import type * as SingleCore from '../pkg/quantlab.js';
import { bindCore } from 'virtual:quantlab-core';
import type { CoreStart, CoreThreads } from '../messages';

declare const self: DedicatedWorkerGlobalScope;

/** Both builds export these functions (the threaded one adds its pool's). */
export type Core = typeof SingleCore;

/**
 * Pool workers when the page does not ask for a number: each is a separate JS realm with its own
 * instance of the module (start-up time and memory), and the default model's narrowest products
 * (576 rows) leave fewer than 72 rows per worker beyond this.
 */
const MAX_THREADS = 8;

export interface LoadedCore extends CoreThreads {
  /** The module's linear memory (shared between the pool's workers in the threaded build). */
  memory: WebAssembly.Memory;
}

/** Why the single-thread build runs although `wanted` threads could be asked for; null when the threaded one may run. */
function singleThreadReason(start: CoreStart, wanted: number): string | null {
  if (!self.crossOriginIsolated || typeof SharedArrayBuffer !== 'function') return 'one thread: this page is not cross-origin isolated';
  if (start.threads !== null && start.threads <= 1) return 'one thread: the page asked for one (threads=1)';
  if (wanted <= 1) return 'one thread: the browser reports one core';
  return null;
}

/** Loads and starts the core for `start`; resolves once it can compute. */
export async function loadCore(start: CoreStart): Promise<LoadedCore> {
  const wanted = Math.max(1, start.threads ?? Math.min(self.navigator.hardwareConcurrency || 1, MAX_THREADS));
  let note = singleThreadReason(start, wanted);
  if (note === null) {
    try {
      const threaded = await import('../pkg-threads/quantlab.js');
      const { memory } = await threaded.default(start.threadsWasmUrl ? { module_or_path: start.threadsWasmUrl } : undefined);
      await threaded.initThreadPool(wanted);
      bindCore(threaded);
      return { memory, threads: threaded.threadStats().threads, note: null };
    } catch (error) {
      note = `one thread: the threaded core failed to start (${error instanceof Error ? error.message : String(error)})`;
    }
  }
  const single = await import('../pkg/quantlab.js');
  const { memory } = await single.default(start.wasmUrl ? { module_or_path: start.wasmUrl } : undefined);
  bindCore(single);
  return { memory, threads: 1, note };
}
