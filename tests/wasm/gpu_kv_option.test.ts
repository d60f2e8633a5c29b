// GpuLabModel.upload's kvCache and activations options (crate/src/bindings/gpu_model.rs) in
// Node: an unknown value is refused synchronously, naming the valid ones, before any WebGPU work
// (Node has no WebGPU, so the accepted values are exercised natively in
// tests/rust/gpu_kv_cache.rs and gpu_activations_f16.rs, and in the browser by the lab).
import { existsSync, readFileSync } from 'node:fs';
import { beforeAll, expect, test } from 'vitest';
import init, { GpuLabModel, LabModel } from '../../web/src/pkg/quantlab.js';

const MODEL = new URL('../../models/SmolLM2-135M-Instruct.Q4_1.gguf', import.meta.url);
const WASM = new URL('../../web/src/pkg/quantlab_bg.wasm', import.meta.url);
let base: LabModel;

beforeAll(async () => {
  if (!existsSync(WASM)) throw new Error('web/src/pkg is missing: run `npm test` (it builds the wasm core)');
  if (!existsSync(MODEL)) throw new Error('models/ is missing the default model: run `npm test` (setup downloads it)');
  await init({ module_or_path: readFileSync(WASM) });
  base = LabModel.fromGguf(new Uint8Array(readFileSync(MODEL)));
}, 600_000);

test('an unknown kvCache throws at once with the valid formats', () => {
  for (const bad of ['q4', 'fp16', '']) {
    expect(() => GpuLabModel.upload(base, undefined, bad)).toThrow(`kvCache: unknown KV cache type '${bad}' (expected f32, f16, int8, int4 or fp8)`);
  }
});

test('a CPU-only kvCache (int4, fp8) throws at once saying so', () => {
  for (const cpuOnly of ['int4', 'fp8']) {
    expect(() => GpuLabModel.upload(base, undefined, cpuOnly)).toThrow(
      `kvCache: KV cache ${cpuOnly}: the GPU forward stores f32, f16 or int8 only; ${cpuOnly} runs on the CPU forward`);
  }
});

test('an unknown activations value throws at once with the valid ones', () => {
  for (const bad of ['bf16', 'F16', '']) {
    expect(() => GpuLabModel.upload(base, undefined, 'f32', bad)).toThrow(`activations: unknown activation precision '${bad}' (expected f32 or f16)`);
  }
});
