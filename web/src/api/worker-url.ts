// The lab worker next to this module. Bundlers (Vite, webpack 5) recognise this exact pattern
// and bundle the worker; the library build (web/vite.lib.config.ts) points it at the package's
// built worker entry instead of the source.
export const defaultWorker = (): Worker => new Worker(new URL('../worker.ts', import.meta.url), { type: 'module' });
