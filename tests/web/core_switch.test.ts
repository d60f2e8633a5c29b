// web/vite-core-switch.ts re-exports every name of a wasm-bindgen `--target web` module: a name it
// missed would stay undefined in the lab whichever build loaded.
import { expect, test } from 'vitest';
import { exportNames } from '../../web/vite-core-switch';

test('every export form wasm-bindgen writes is found, the default export included', () => {
  const glue = [
    'export class LabModel {',
    '    static __wrap(ptr) {}',
    '}',
    'export function coreVersion() {',
    '    export_not_at_line_start();',
    '}',
    'export const Kind = Object.freeze({ A: 0 });',
    'function __wbg_init(module_or_path) {}',
    'export { initSync, __wbg_init as default };',
  ].join('\n');
  expect(exportNames(glue)).toEqual(['LabModel', 'coreVersion', 'Kind', 'initSync', 'default']);
});
