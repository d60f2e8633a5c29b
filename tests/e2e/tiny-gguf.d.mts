// Types of tiny-gguf.mjs for the TypeScript tests (tests/wasm) that build their fixtures with it.
export function tinyGguf(opts?: { name?: string; values?: number[] }): Buffer;
export function buildGguf(opts: { metadata?: Record<string, unknown>; tensors?: { name: string; dims: number[]; values: number[] }[] }): Buffer;
export function tinyLlama(opts?: { dim?: number; ff?: number; layers?: number; ctx?: number }): Buffer;
