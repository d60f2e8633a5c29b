/// <reference lib="webworker" />
// The lab worker: owns the wasm core and the open model; the page talks to it only through the
// typed messages in messages.ts. Heavy work here keeps the page responsive.
import init, { coreVersion, gpuSelfTest, parseGgufHeader, tensorHistogram } from './pkg/quantlab.js';
import { LabError, ModelFormatError, toWire } from './errors';
import type { AdapterReport, GgufHeader, LoadedModel, Method, Methods, Phase, Request, WorkerMessage } from './messages';
import { type ByteSource, download, FileSource } from './source';

declare const self: DedicatedWorkerGlobalScope;

const ready = init();
let open: { source: ByteSource; header: GgufHeader } | null = null;

type Handler<M extends Method> = (args: Methods[M]['args'], progress: (phase: Phase, loaded: number, total: number) => void) => Promise<Methods[M]['result']>;

/** Reads a growing prefix until the header fits (the default model's header is ~1.8 MB). */
async function parseHeader(source: ByteSource, progress: (phase: Phase, loaded: number, total: number) => void): Promise<GgufHeader> {
  let length = Math.min(source.size, 4 << 20);
  for (;;) {
    progress('parse', length, source.size);
    const prefix = await source.read(0, length);
    let parsed: GgufHeader | { status: 'need-more-bytes'; needed: number };
    try {
      parsed = parseGgufHeader(prefix, source.size);
    } catch (error) {
      throw new ModelFormatError(`${source.name} is not a usable GGUF file: ${(error as Error).message}`);
    }
    if (parsed.status === 'ok') return parsed;
    // Grow at least geometrically so a pathological header cannot cause many small reads.
    const next = Math.min(source.size, Math.max(parsed.needed, length * 2));
    if (next <= length) throw new ModelFormatError(`${source.name}: header does not fit in the file`);
    length = next;
  }
}

async function openSource(source: ByteSource, progress: (phase: Phase, loaded: number, total: number) => void): Promise<LoadedModel> {
  const header = await parseHeader(source, progress);
  open = { source, header };
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
    const check = (await gpuSelfTest()) as { passed: boolean; maxAbsError: number };
    report.computeCheck = { passed: check.passed, maxAbsError: check.maxAbsError };
  } catch (error) {
    report.computeCheck = { passed: false, error: (error as Error).message };
  }
  return report;
}

const handlers: { [M in Method]: Handler<M> } = {
  init: async () => ({ coreVersion: coreVersion() }),
  probeGpu: async () => probeGpu(),
  openUrl: async ({ url }, progress) => openSource(await download(url, (l, t) => progress('download', l, t)), progress),
  openFile: async ({ file }, progress) => openSource(new FileSource(file), progress),
  histogram: async ({ tensor, bins }, progress) => {
    if (!open) throw new LabError('No model is open');
    const row = open.header.tensors.find((t) => t.name === tensor);
    if (!row) throw new LabError(`No tensor named ${JSON.stringify(tensor)} in ${open.source.name}`);
    progress('read', 0, row.nBytes);
    const bytes = await open.source.read(row.offset, row.nBytes);
    if (bytes.byteLength !== row.nBytes) {
      throw new ModelFormatError(`${open.source.name} is truncated: ${tensor} needs ${row.nBytes} bytes, got ${bytes.byteLength}`);
    }
    progress('decode', 0, row.nElements);
    const h = tensorHistogram(row.typeId, row.nElements, row.dims[0] ?? 1, bytes, bins);
    return { tensor, ...h };
  },
};

self.addEventListener('message', async (event: MessageEvent<Request>) => {
  const { id, method, args } = event.data;
  const post = (message: WorkerMessage) => self.postMessage(message);
  try {
    await ready;
    const handler = handlers[method] as Handler<typeof method>;
    const value = await handler(args as never, (phase, loaded, total) => post({ kind: 'progress', id, phase, loaded, total }));
    post({ kind: 'result', id, value });
  } catch (error) {
    post({ kind: 'error', id, error: toWire(error) });
  }
});
