import { defineConfig } from 'vite';
import { VitePWA } from 'vite-plugin-pwa';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { securityHeaders } from '../scripts/headers.mjs';
import { coreSwitch } from './vite-core-switch.ts';

// The lab app. `npm start` builds it and serves web/dist plus /models and /data with
// scripts/serve.mjs; `npm run dev` gives Vite's dev server (models served by the plugin below).
//
// Offline: vite-plugin-pwa generates a Workbox service worker that precaches the app shell and
// both wasm cores (with the threaded one's pool worker), and serves /models/ and /data/ CacheFirst from the cache the lab worker fills
// (MODEL_CACHE in src/source.ts). Every server sends scripts/headers.mjs: the Content-Security-Policy
// and COOP/COEP (cross-origin isolation, so cancel flags can be SharedArrayBuffers); the precache
// keeps each response's headers, so offline pages have them too.
const repo = fileURLToPath(new URL('..', import.meta.url));
const src = fileURLToPath(new URL('./src/', import.meta.url));
/** The eval text (chapters 1–3, served from the repo's data/), precached so comparisons work offline. */
const evalText = [1, 2, 3]
  .map((n) => `data/moby-dick/chapter_${n}.json`)
  .filter((path) => existsSync(`${repo}/${path}`))
  .map((url) => ({ url, revision: createHash('sha256').update(readFileSync(`${repo}/${url}`)).digest('hex').slice(0, 16) }));

/** The lesson pages (web/lessons/NAME.html), each an input of the build. */
const LESSONS = ['number-line', 'granularity', 'nf4-levels', 'bits-vs-quality', 'gptq', 'kv-cache'];
/** The query parameters the lessons keep their state in (web/lessons/*.ts). */
const LESSON_STATE = ['tensor', 'group', 'format', 'block', 'formats', 'protocol', 'context', 'kv', 'tokens'];

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // The lessons are pages of their own (web/lessons/), precached with the lab.
    rollupOptions: { input: { main: fileURLToPath(new URL('./index.html', import.meta.url)), ...Object.fromEntries(LESSONS.map((name) => [name, fileURLToPath(new URL(`./lessons/${name}.html`, import.meta.url))])) } },
  },
  server: { headers: { ...securityHeaders } },
  preview: { headers: { ...securityHeaders } },
  // The core switch (vite-core-switch.ts) in the worker bundles too: the app's plugins apply to
  // workers only in the dev server. The threaded core's pool workers (wasm-bindgen-rayon's
  // `new Worker(new URL('./workerHelpers.js', import.meta.url))`) are bundled as nested workers.
  worker: { format: 'es', plugins: () => [coreSwitch(src)] },
  plugins: [
    coreSwitch(src),
    {
      name: 'quantlab-models',
      async configureServer(server) {
        const { serveRepoFile } = await import(`${repo}/scripts/static.mjs`);
        server.middlewares.use((req, res, next) => {
          if (!serveRepoFile(req, res)) next();
        });
      },
    },
    VitePWA({
      injectRegister: false,
      registerType: 'autoUpdate',
      includeAssets: ['icon.svg', 'icon-192.png', 'icon-512.png'],
      manifest: {
        name: 'quantlab — LLM quantization lab',
        short_name: 'quantlab',
        description: 'Load a real LLM in the browser, look at its weights, quantize it and measure the damage.',
        start_url: './',
        scope: './',
        display: 'standalone',
        background_color: '#f7f8fa',
        theme_color: '#1d2330',
        icons: [
          { src: 'icon-192.png', sizes: '192x192', type: 'image/png' },
          { src: 'icon-512.png', sizes: '512x512', type: 'image/png' },
          { src: 'icon.svg', sizes: 'any', type: 'image/svg+xml' },
        ],
      },
      workbox: {
        globPatterns: ['**/*.{js,css,html,wasm,svg,png,webmanifest}'],
        additionalManifestEntries: evalText,
        // The wasm core is ~0.5 MB; leave room for it to grow.
        maximumFileSizeToCacheInBytes: 32 * 1024 * 1024,
        navigateFallback: 'index.html',
        // A lesson's state (`lessons/number-line.html?tensor=…&group=…`) finds the precached page
        // (the lab's own state URLs reach index.html through navigateFallback).
        ignoreURLParametersMatching: LESSON_STATE.map((name) => new RegExp(`^${name}$`)),
        navigateFallbackDenylist: [/^\/(models|data)\//],
        cleanupOutdatedCaches: true,
        clientsClaim: true,
        skipWaiting: true,
        runtimeCaching: [
          {
            urlPattern: ({ url }) => /\/(models|data)\//.test(url.pathname),
            handler: 'CacheFirst',
            options: { cacheName: 'quantlab-models', cacheableResponse: { statuses: [200] } },
          },
        ],
      },
    }),
  ],
});
