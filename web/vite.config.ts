import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

// The lab app. `npm start` builds it and serves web/dist plus /models and /data with
// scripts/serve.mjs; `npm run dev` gives Vite's dev server (models served by the plugin below).
const repo = fileURLToPath(new URL('..', import.meta.url));

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
  },
  worker: { format: 'es' },
  plugins: [
    {
      name: 'quantlab-models',
      async configureServer(server) {
        const { serveRepoFile } = await import(`${repo}/scripts/static.mjs`);
        server.middlewares.use((req, res, next) => {
          if (!serveRepoFile(req, res)) next();
        });
      },
    },
  ],
});
