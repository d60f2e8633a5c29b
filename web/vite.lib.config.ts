import { defineConfig, type Plugin } from 'vite';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { coreSwitch } from './vite-core-switch.ts';

// The npm package's build (`npm run build:lib`, into lib/): ESM entries `index.js` (the client
// API, web/src/api), `components.js` (the custom elements, web/src/components) and `worker.js` (the lab worker), and the two wasm cores copied as
// wasm-bindgen wrote them into lib/core/ and lib/core-threads/; then tsc writes the declarations
// into lib/types/ (web/tsconfig.lib.json).
//
// Library mode would inline the worker and the .wasm files as base64 (megabytes of JS, no
// override). Instead the output keeps the patterns every bundler and the browser itself
// understand: the API starts `new Worker(new URL('./worker.js', import.meta.url))`, the worker
// imports `./core/quantlab.js`, whose glue fetches `new URL('quantlab_bg.wasm', import.meta.url)`;
// a consumer's bundler (Vite, webpack 5) follows them, and a static server serves them as they are.
const src = fileURLToPath(new URL('./src/', import.meta.url));
const out = fileURLToPath(new URL('../lib/', import.meta.url));
const loader = `${src}worker/wasm.ts`;

/** web/src/<folder> → lib/<folder in the package>. */
const CORES = [
  { from: 'pkg', to: 'core' },
  { from: 'pkg-threads', to: 'core-threads' },
];

/** Stands for the worker's `new Worker(...)` until the chunk is written (Vite would bundle the worker into the API). */
const WORKER_MARK = '__quantlabWorker__()';
const WORKER_SOURCE = "new Worker(new URL('../worker.ts', import.meta.url), { type: 'module' })";

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
}

function packageLayout(): Plugin {
  return {
    name: 'quantlab-package-layout',
    enforce: 'pre',
    resolveId(source, importer) {
      if (importer !== loader) return null;
      const core = CORES.find((c) => source === `../${c.from}/quantlab.js`);
      return core ? { id: `./${core.to}/quantlab.js`, external: 'absolute' } : null;
    },
    transform(code, id) {
      if (!id.endsWith('/api/worker-url.ts')) return null;
      if (!code.includes(WORKER_SOURCE)) this.error(`${id} no longer starts the worker as ${WORKER_SOURCE}`);
      return code.replace(WORKER_SOURCE, WORKER_MARK);
    },
    renderChunk(code, chunk) {
      if (!code.includes(WORKER_MARK)) return null;
      // The API may sit in a chunk shared by the entries (lib/chunks/): the URL is relative to it.
      const up = chunk.fileName.split('/').length - 1;
      const path = up === 0 ? './worker.js' : `${'../'.repeat(up)}worker.js`;
      return code.replace(WORKER_MARK, `new Worker(new URL('${path}', import.meta.url), { type: 'module' })`);
    },
    generateBundle() {
      // The core's generated declarations, which the API's declarations (tsc, web/tsconfig.lib.json) import.
      this.emitFile({ type: 'asset', fileName: 'types/pkg/quantlab.d.ts', source: readFileSync(`${src}pkg/quantlab.d.ts`) });
      for (const { from, to } of CORES) {
        const dir = `${src}${from}`;
        for (const path of files(dir)) {
          const name = relative(dir, path);
          if (name.endsWith('.d.ts') || name === 'package.json') continue;
          let source: string | Uint8Array = readFileSync(path);
          // wasm-bindgen-rayon's pool worker imports its core as the package folder (`../../..`),
          // which only a bundler resolves; name the module so a plain static server works too.
          if (name.endsWith('workerHelpers.js')) source = source.toString('utf8').replace("import('../../..')", "import('../../../quantlab.js')");
          this.emitFile({ type: 'asset', fileName: `${to}/${name}`, source });
        }
      }
    },
  };
}

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  publicDir: false,
  build: {
    outDir: out,
    emptyOutDir: true,
    target: 'es2022',
    // Consumers minify; readable output keeps the patterns above visible to their bundlers.
    minify: false,
    lib: { entry: { index: `${src}api/index.ts`, components: `${src}components/index.ts`, worker: `${src}worker.ts` }, formats: ['es'] },
    rollupOptions: { output: { chunkFileNames: 'chunks/[name]-[hash].js' } },
  },
  plugins: [packageLayout(), coreSwitch(src)],
});
