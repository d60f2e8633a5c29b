/// <reference lib="webworker" />
// The lab worker: owns the wasm core and the open model; the page talks to it only through the
// typed messages in messages.ts. Heavy work here keeps the page responsive. Handlers live in
// worker/*.ts; this file starts the wasm core (worker/wasm.ts) and dispatches requests and cancel
// messages.
import { coreVersion, gpuSelfTest, listFormats, listMethods, listPresets, type NeedMoreBytes, parseGgufHeader, parseSafetensorsHeader, tensorHistogram, threadStats, validFormats } from './pkg/quantlab.js';
import { kindOf, ModelFormatError, toWire } from './errors';
import type { AdapterReport, CancelMessage, CoreStart, LoadedModel, Method, Methods, ModelHeader, Request, StartMessage, WorkerMessage } from './messages';
import { type ByteSource, download, FileSource } from './source';
import { type Ctx, findTensor, requireModel, state, tensorBytes } from './worker/context';
import { analyzeTensors, channelStats, nf4Placement, tensorView } from './worker/tensors';
import { storeForOffline } from './worker/offline';
import { smoothingStats } from './worker/act-eval';
import { activationStats, compareFormats, exportModel, generate, quantize } from './worker/runtime';
import { layerErrors } from './worker/layer-error';
import { exportHfLayout, exportMethod, methodSupport, plannedTypes, runMethod } from './worker/methods';
import { evaluateRecipe, recommendRecipe, sensitivity } from './worker/sensitivity';
import { loadCore } from './worker/wasm';

declare const self: DedicatedWorkerGlobalScope;

/** Resolves with the started core after the page's start message, which comes before any request. */
let startCore: (start: CoreStart) => void = () => {};
const ready = new Promise<CoreStart>((resolve) => (startCore = resolve)).then(loadCore);

type Handler<M extends Method> = (args: Methods[M]['args'], ctx: Ctx<M>) => Promise<Methods[M]['result']>;

/** Reads a growing prefix until the header fits (the default model's header is ~1.8 MB). GGUF by its magic, else safetensors. */
async function parseHeader(source: ByteSource, ctx: Ctx): Promise<ModelHeader> {
  let length = Math.min(source.size, 4 << 20);
  // safetensors: an 8-byte header length, then the JSON header ("{").
  const start = await source.read(0, Math.min(9, source.size));
  const magic = new TextDecoder().decode(start.subarray(0, 4));
  const safetensors = magic !== 'GGUF' && (/\.safetensors$/i.test(source.name) || start[8] === 0x7b);
  for (;;) {
    ctx.progress('parse', length, source.size);
    const prefix = await source.read(0, length);
    let parsed: ModelHeader | NeedMoreBytes;
    try {
      parsed = safetensors ? parseSafetensorsHeader(prefix, source.size) : parseGgufHeader(prefix, source.size);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new ModelFormatError(`${source.name} is not a usable ${safetensors ? 'safetensors' : 'GGUF'} file: ${message}`, kindOf(error));
    }
    if (parsed.status === 'ok') return parsed;
    // Grow at least geometrically so a pathological header cannot cause many small reads.
    const next = Math.min(source.size, Math.max(parsed.needed, length * 2));
    if (next <= length) throw new ModelFormatError(`${source.name}: header does not fit in the file`);
    length = next;
  }
}

async function openSource(source: ByteSource, ctx: Ctx): Promise<LoadedModel> {
  const header = await parseHeader(source, ctx);
  state.open = { source, header };
  return { source: source.name, header };
}

async function probeGpu(): Promise<AdapterReport> {
  const gpu = (self.navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) {
    return { available: false, reason: 'this browser exposes no WebGPU (navigator.gpu is missing); the lab uses the CPU (wasm) path' };
  }
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    return { available: false, reason: 'WebGPU is present but no adapter was offered (blocklisted or disabled GPU); the lab uses the CPU (wasm) path' };
  }
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const report: AdapterReport = {
    available: true,
    vendor: info.vendor,
    architecture: info.architecture,
    description: info.description,
    isFallbackAdapter: info.isFallbackAdapter ?? false,
    shaderF16: adapter.features.has('shader-f16'),
    subgroups: adapter.features.has('subgroups'),
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
  };
  try {
    const check = await gpuSelfTest();
    report.computeCheck = { passed: check.passed, maxAbsError: check.maxAbsError };
  } catch (error) {
    report.computeCheck = { passed: false, error: error instanceof Error ? error.message : String(error) };
  }
  return report;
}

const handlers: { [M in Method]: Handler<M> } = {
  init: async () => {
    const { threads, note } = await ready;
    return { coreVersion: coreVersion(), formats: validFormats(), formatList: listFormats(), presetList: listPresets(), methodList: listMethods(), threads, note };
  },
  probeGpu: async () => probeGpu(),
  openUrl: async ({ url }, ctx) => {
    const source = await download(url, (l, t) => ctx.progress('download', l, t));
    const loaded = await openSource(source, ctx);
    return { ...loaded, offline: await storeForOffline(url, source, ctx) };
  },
  openFile: async ({ file }, ctx) => openSource(new FileSource(file), ctx),
  histogram: async ({ tensor, bins }, ctx) => {
    const model = requireModel();
    const row = findTensor(model, tensor);
    ctx.progress('read', 0, row.nBytes);
    const bytes = await tensorBytes(model, row);
    ctx.progress('decode', 0, row.nElements);
    return { tensor, ...tensorHistogram(row.typeId, row.nElements, row.dims[0] ?? 1, bytes, bins) };
  },
  analyzeTensors,
  tensorView,
  channelStats,
  nf4Placement,
  activationStats,
  smoothingStats,
  compareFormats,
  plannedTypes,
  methodSupport,
  runMethod,
  exportMethod,
  layerErrors,
  sensitivity,
  recommendRecipe,
  evaluateRecipe,
  generate,
  quantize,
  exportModel,
  exportHfLayout,
  memory: async () => {
    const { memory } = await ready;
    // Only a test browser exposes gc (--js-flags=--expose-gc); wasm memory itself is never collected.
    const gc = (self as typeof self & { gc?: () => void }).gc;
    gc?.();
    return { wasmBytes: memory.buffer.byteLength, collected: gc !== undefined };
  },
  threadStats: async () => threadStats(),
};

const cancelledIds = new Set<number>();

self.addEventListener('message', async (event: MessageEvent<Request | CancelMessage | StartMessage>) => {
  if ('start' in event.data) {
    startCore(event.data.start);
    return;
  }
  if ('cancel' in event.data) {
    cancelledIds.add(event.data.cancel);
    return;
  }
  const { id, method, args, cancelFlag } = event.data;
  const flag = cancelFlag ? new Int32Array(cancelFlag) : null;
  const post = (message: WorkerMessage) => self.postMessage(message);
  const ctx: Ctx = {
    progress: (phase, loaded, total, detail) => post({ kind: 'progress', id, phase, loaded, total, detail }),
    cancelled: () => cancelledIds.has(id) || (flag !== null && Atomics.load(flag, 0) === 1),
  };
  try {
    await ready;
    const handler = handlers[method] as Handler<typeof method>;
    const value = await handler(args as never, ctx);
    post({ kind: 'result', id, value });
  } catch (error) {
    post({ kind: 'error', id, error: toWire(error) });
  } finally {
    cancelledIds.delete(id);
  }
});
