// Offline use: the service worker (vite-plugin-pwa / Workbox, see web/vite.config.ts) precaches
// the app shell and the wasm core; the worker keeps the default model in Cache Storage. The
// status line says what is cached, and a notice appears while caching or when quota is short.
import { registerSW } from 'virtual:pwa-register';
import type { OfflineState } from './messages';
import { $ } from './ui/dom';

const status = { shell: 'pending' as 'pending' | 'caching' | 'ready' | 'unavailable' | 'dev', model: null as OfflineState | null };

function render(): void {
  const line = $('#offline-status');
  const model = status.model;
  const modelReady = model?.state === 'cached' || model?.state === 'stored';
  let text: string;
  let state: string;
  if (status.shell === 'dev') [text, state] = ['off in the dev server (npm start serves the offline-capable build)', 'unavailable'];
  else if (status.shell === 'unavailable') [text, state] = ['not available in this browser (no service worker); the lab works online only', 'unavailable'];
  else if (status.shell !== 'ready') [text, state] = ['caching the lab for offline use…', 'caching'];
  else if (model && !modelReady) [text, state] = [`the lab is cached, the model is not: ${model.message}`, model.state];
  else if (!model) [text, state] = ['the lab is cached; the model will be stored when it loads', 'caching'];
  else [text, state] = ['ready — the lab and the model work offline', 'ready'];
  line.textContent = text;
  line.dataset.state = state;
  const note = $('#offline-note');
  note.hidden = state === 'ready' || state === 'pending' || state === 'not-kept';
  note.textContent = state === 'caching' ? 'Caching the lab and the model for offline use — this happens once.' : text;
}

export async function registerOffline(): Promise<void> {
  if (import.meta.env.DEV) {
    // vite-plugin-pwa builds no service worker for `npm run dev`.
    status.shell = 'dev';
    render();
    return;
  }
  if (!('serviceWorker' in navigator)) {
    status.shell = 'unavailable';
    render();
    return;
  }
  status.shell = navigator.serviceWorker.controller ? 'ready' : 'caching';
  render();
  registerSW({
    immediate: true,
    onOfflineReady() {
      status.shell = 'ready';
      render();
    },
    onRegisteredSW(_url, registration) {
      // Already installed by an earlier visit: nothing left to cache.
      if (registration?.active) {
        status.shell = 'ready';
        render();
      }
    },
    onRegisterError(error: unknown) {
      status.shell = 'unavailable';
      render();
      console.warn('service worker registration failed', error);
    },
  });
}

/** Called when a model was opened from a URL (state undefined for files from disk). */
export function showModelOfflineState(state: OfflineState | undefined): void {
  if (!state || state.state === 'not-kept') {
    if (!status.model) return;
  } else status.model = state;
  render();
}
