import { defineConfig } from 'vite';

// Cross-origin isolation lets quantlab run its threaded core (without it, one thread).
const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

export default defineConfig({
  // quantlab finds its worker and its .wasm next to its modules (new URL(…, import.meta.url));
  // pre-bundling would move the module away from them.
  optimizeDeps: { exclude: ['quantlab'] },
  // The lab worker imports its core dynamically: ES module workers.
  worker: { format: 'es' },
  build: { target: 'es2022' },
  server: { headers: isolation },
  preview: { headers: isolation },
});
