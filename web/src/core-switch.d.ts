// The module web/vite-core-switch.ts generates: the lab's imports of `pkg/quantlab.js` resolve to
// it, and worker/wasm.ts binds its exports to the build that loaded.
declare module 'virtual:quantlab-core' {
  /**
   * Points every export of the lab's `pkg/quantlab.js` imports at `core`'s export of that name:
   * either build's module (both are built from the same crate, so both export every name; their
   * classes are distinct types to TypeScript, hence `object`).
   */
  export function bindCore(core: object): void;
}
