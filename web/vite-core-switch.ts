// The lab worker runs one of two builds of the wasm core: web/src/pkg-threads (threads, shared
// memory) where the page is cross-origin isolated, web/src/pkg (one thread) elsewhere; which one
// is known only at run time. The lab's modules import the core statically as `pkg/quantlab.js`.
// This plugin resolves those imports to one generated module that re-exports every name of the
// core as a live binding, set by `bindCore` (web/src/worker/wasm.ts calls it once a build has
// loaded), so handlers need not know which build runs. worker/wasm.ts imports the two builds
// themselves; the builds' own files (and wasm-bindgen-rayon's worker helper inside pkg-threads)
// are left alone.
import { readFileSync } from 'node:fs';
import type { Plugin } from 'vite';

const ID = '\0quantlab-core';

/** The names `glue` (a wasm-bindgen `--target web` module) exports, `default` included. */
export function exportNames(glue: string): string[] {
  const names = [...glue.matchAll(/^export (?:async )?(?:function|class|const|let) (\w+)/gm)].map((m) => m[1]);
  for (const list of glue.matchAll(/^export \{([^}]*)\}/gm)) {
    for (const item of list[1].split(',')) {
      const name = item.trim().split(/\s+as\s+/).pop();
      if (name) names.push(name);
    }
  }
  return [...new Set(names)];
}

/** `src` is web/src (absolute, ending in /). */
export function coreSwitch(src: string): Plugin {
  const glue = `${src}pkg/quantlab.js`;
  const loader = `${src}worker/wasm.ts`;
  return {
    name: 'quantlab-core-switch',
    enforce: 'pre',
    async resolveId(source, importer, options) {
      if (source === 'virtual:quantlab-core') return ID;
      if (!importer || importer === loader || importer.startsWith(`${src}pkg`) || !source.endsWith('pkg/quantlab.js')) return null;
      const resolved = await this.resolve(source, importer, { ...options, skipSelf: true });
      return resolved?.id === glue ? ID : null;
    },
    load(id) {
      if (id !== ID) return null;
      this.addWatchFile(glue);
      const names = exportNames(readFileSync(glue, 'utf8'));
      const locals = names.map((name, i) => ({ name, local: `core${i}` }));
      return [
        `let ${locals.map((l) => l.local).join(', ')};`,
        `export { ${locals.map((l) => `${l.local} as ${l.name}`).join(', ')} };`,
        'export function bindCore(core) {',
        ...locals.map((l) => `  ${l.local} = core[${JSON.stringify(l.name)}];`),
        '}',
      ].join('\n');
    },
  };
}
