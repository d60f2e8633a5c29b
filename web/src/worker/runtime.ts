// Worker handlers that need the whole model (contract A: LabModel, LabEval, evalText,
// exportQuantized): format comparison, side-by-side generation and export. The base is the
// open checkpoint as loaded — for the default model, the Q4_1 checkpoint dequantized.
import { CancelledError, kindOf, LabError, RuntimeError } from '../errors';
import { type ActivationChannels, type ActivationSetup, type Activations, type DeviceChoice, type EvalDevice, type EvalKvCache, type EvalProtocol, type ExportFile, type GenerationSide, type KvCache, type Method, type MethodRun, type Methods, presetLabel, type Progress, type QuantizeResult, type QuantManifest, type TensorError, type TypeMix } from '../messages';
import { type ActivationStats, coreVersion, type EvalResult, evalText, exportQuantized, type GenerateResult, GpuLabModel, LabEval, LabModel, parseTarget, type ProbeResult, type QuantScheme } from '../pkg/quantlab.js';
import { download } from '../source';
import { type Ctx, requireModel } from './context';
import { evalDevice, measureOnGpu } from './gpu-eval';
import { storeForOffline } from './offline';
import { actRequest, type ActRequest, cachedActRow } from './act-eval';
import { hasTasks, runTaskChecks, suiteText } from './tasks';

type Args<M extends keyof Methods> = Methods[M]['args'];

/** The eval text: Moby-Dick chapters 1–3, as `quantlab eval` uses them. */
const EVAL_CHAPTERS = [1, 2, 3];
const EVAL_TEXT_LABEL = 'Moby-Dick chapters 1–3 (data/moby-dick, joined as quantlab eval does)';

export interface Runtime {
  /** state.open this runtime belongs to (a new model invalidates it). */
  owner: object;
  bytes: Uint8Array;
  sha256: string;
  base: LabModel;
  /** The last quantized model, reused by generate after compare/generate with the same format. */
  last?: { format: string; model: LabModel };
  /** The last activation statistics (all matrices), keyed by their settings. */
  activations?: { key: string } & ActivationStats;
  /** Copies on the WebGPU device (uploaded on first GPU use) with their KV cache format, and the auto probe's verdict. */
  gpu?: { kvCache: KvCache; activations: Activations; capacity: number; base?: GpuLabModel; last?: { format: string; model: GpuLabModel }; probe?: ProbeResult };
}

/** KV positions of a GPU copy: the core's default (`GpuLabModel.upload`), enough for the lab's prompts and Compare's windows. */
const GPU_CAPACITY = 512;

let runtime: Runtime | null = null;
let evalTextCache: string | null = null;

export function wasmCall<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (error) {
    const kind = kindOf(error);
    if (kind?.kind === 'cancelled') throw new CancelledError(errorText(error), kind);
    throw new RuntimeError(`${what}: ${errorText(error)}`, kind);
  }
}

/** A progress callback for a synchronous wasm call: reports, and returns false once cancelled. */
export function reporter<M extends Method>(ctx: Ctx<M>, phase: 'calibrate' | 'quantize' | 'evaluate' | 'export', detail?: Progress<M>) {
  return (done: number, total: number) => {
    ctx.progress(phase, done, total, detail);
    return !ctx.cancelled();
  };
}

export async function getRuntime(ctx: Ctx): Promise<Runtime> {
  const open = requireModel();
  if (runtime?.owner === open) return runtime;
  if (open.header.container === 'safetensors') {
    throw new LabError(
      `${open.source.name} is a safetensors file: the weight panels work on it, but running the model (activations, comparison, generation, export) needs a GGUF with its tokenizer and hyper-parameters — open a GGUF for these.`,
    );
  }
  freeGpu(runtime);
  runtime?.last?.model.free();
  runtime?.base.free();
  runtime = null;
  ctx.progress('read', 0, open.source.size);
  const bytes = await open.source.read(0, open.source.size);
  const sha256 = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes.slice().buffer as ArrayBuffer)), (b) => b.toString(16).padStart(2, '0')).join('');
  ctx.progress('parse', open.source.size, open.source.size);
  const base = wasmCall(`loading ${open.source.name} for the runtime`, () => LabModel.fromGguf(bytes));
  runtime = { owner: open, bytes, sha256, base };
  return runtime;
}

/** `dataUrl`: the page's data/moby-dick/ folder, resolved by the page (the worker's own URL is under assets/). */
export async function loadEvalText(dataUrl: string, ctx: Ctx): Promise<string> {
  if (evalTextCache) return evalTextCache;
  const chapters: string[] = [];
  for (const n of EVAL_CHAPTERS) {
    const url = new URL(`chapter_${n}.json`, dataUrl).href;
    const source = await download(url, (l, t) => ctx.progress('download', l, t));
    await storeForOffline(url, source, ctx);
    const json = JSON.parse(new TextDecoder().decode(await source.read(0, source.size))) as { text?: string };
    if (typeof json.text !== 'string') throw new LabError(`${url} has no "text" field`);
    chapters.push(json.text);
  }
  const text = evalText(chapters);
  evalTextCache = text;
  return text;
}

function quantizeFor<M extends Method>(rt: Runtime, format: string, ctx: Ctx<M>, detail?: Progress<M>): LabModel {
  if (rt.last?.format === format) return rt.last.model;
  rt.gpu?.last?.model.free();
  if (rt.gpu) rt.gpu.last = undefined;
  rt.last?.model.free();
  rt.last = undefined;
  const model = wasmCall(`quantizing to ${format}`, () => rt.base.quantize(format, reporter(ctx, 'quantize', detail)));
  rt.last = { format, model };
  return model;
}

/**
 * A saved result that answers this request: same model bytes, format, protocol (the default
 * scoring, `ctx`, the windows `maxWindows` selects), eval text and core version, with the
 * paired statistics (results saved before those existed are measured again).
 */
export function cachedResult(saved: QuantManifest[], sha256: string, format: string, ctx: number, maxWindows: number | null, same: (m: QuantManifest) => boolean = () => true, kvCache: EvalKvCache = 'f32', device: EvalDevice = 'cpu'): QuantManifest | undefined {
  return saved.find((m) => {
    if (!same(m)) return false;
    const p = m.protocol;
    if ((p.kvCache ?? 'f32') !== kvCache || (p.device ?? 'cpu') !== device) return false;
    const windows = maxWindows ? Math.min(maxWindows, p.windowsAvailable) : p.windowsAvailable;
    return m.source.sha256 === sha256 && m.result.format === format && p.protocol === 'default' && p.ctx === ctx && p.windows === windows && p.text === EVAL_TEXT_LABEL && m.coreVersion === coreVersion() && m.result.paired !== undefined;
  });
}

/** How a Compare row was quantized: a format (one type everywhere) or a llama.cpp preset. */
interface CompareItem {
  target: string;
  mix: TypeMix;
}

/**
 * Quantize + evaluate each format and preset against the base, one at a time (bounded memory); a
 * row with a saved result for the same model and protocol (`cachedResult`) is not run again.
 * With `tasks`, each row then runs the task suite (worker/tasks.ts) unless its saved result holds
 * that suite's checks; the row is reported after its perplexity and again with its task checks.
 * `device` `webgpu` evaluates on the GPU (worker/gpu-eval.ts) until WebGPU fails; the rows after
 * that run on the CPU and a step's `deviceNote` says why.
 */
export async function compareFormats({ formats, presets = [], ctx: windowCtx, maxWindows, dataUrl, saved, kvCache = 'f32', tasks = null, device: requested = 'cpu', loseDeviceAfter, activations = null }: Args<'compareFormats'>, ctx: Ctx<'compareFormats'>): Promise<QuantManifest[]> {
  // A bad suite file fails before the model is read.
  const suite = tasks ? await suiteText(tasks) : null;
  const rt = await getRuntime(ctx);
  const text = await loadEvalText(dataUrl, ctx);
  const act = activations ? await actRequest(activations, dataUrl, ctx) : null;
  const items: CompareItem[] = [...formats.map((target) => ({ target, mix: 'pure' as const })), ...presets.map((target) => ({ target, mix: 'llama.cpp' as const }))];
  // Steps per item: quantize, evaluate, [activations], [task checks].
  const per = 2 + (act ? 1 : 0) + (suite ? 1 : 0);
  const steps = items.length * per;
  const manifests: QuantManifest[] = [];
  const device = evalDevice(requested, kvCache, loseDeviceAfter);
  if (device.note) ctx.progress('evaluate', 0, 0, { step: 0, steps, label: 'Device', deviceNote: device.note });
  for (const [i, { target, mix }] of items.entries()) {
    const scheme = wasmCall(`format ${target}`, () => parseTarget(target));
    const label = mix === 'pure' ? scheme.name : presetLabel(scheme.name);
    // A saved row with this suite's task checks, else one with the perplexity alone.
    const hit = (suite && cachedResult(saved, rt.sha256, label, windowCtx, maxWindows, (m) => hasTasks(m, suite), kvCache, device.used)) || cachedResult(saved, rt.sha256, label, windowCtx, maxWindows, undefined, kvCache, device.used);
    const actHit = activations ? cachedActRow(saved, rt.sha256, label, activations, windowCtx, maxWindows, kvCache) : undefined;
    const actStep = { step: per * i + 2, steps, label: `Evaluate ${label} with quantized activations` };
    if (hit && (!suite || hasTasks(hit, suite)) && (!act || actHit)) {
      manifests.push(hit, ...(actHit ? [actHit] : []));
      if (actHit) ctx.progress('evaluate', 1, 1, { ...actStep, label: `${actHit.result.format}: saved result`, manifest: actHit, cached: true });
      ctx.progress('evaluate', 1, 1, { step: per * i + per - 1, steps, label: `${label}: saved result`, manifest: hit, cached: true });
      continue;
    }
    const quantizeStep = { step: per * i, steps, label: `Quantize ${label}` };
    ctx.progress('quantize', 0, 0, quantizeStep);
    const model = mix === 'pure' ? quantizeFor(rt, target, ctx, quantizeStep) : wasmCall(`quantizing to ${label}`, () => rt.base.quantizeTarget(target, mix, reporter(ctx, 'quantize', quantizeStep)));
    try {
      const evalStep = { step: per * i + 1, steps, label: `Evaluate ${label} against the base` };
      const row = { label, scheme: scheme.scheme, mix };
      const protocolOpts = { ctx: windowCtx, maxWindows, kvCache };
      let manifest = hit ? withoutStoreKey(hit) : device.used === 'webgpu' ? await measureOnGpu(device, rt, model, row, text, protocolOpts, ctx, evalStep) : measure(rt, model, row, text, protocolOpts, ctx, evalStep);
      ctx.progress('evaluate', 1, 1, { ...evalStep, manifest, cached: hit !== undefined });
      let actManifest: QuantManifest | undefined;
      if (act && activations) {
        const row = { label, scheme: scheme.scheme, mix, activations: { setup: activations, ...act } };
        actManifest = actHit ?? measure(rt, model, row, text, protocolOpts, ctx, actStep);
        ctx.progress('evaluate', 1, 1, { ...actStep, manifest: actManifest, cached: actHit !== undefined });
      }
      if (suite) {
        const taskStep = { step: per * i + per - 1, steps, label: `Task checks: ${label}` };
        manifest = { ...manifest, result: { ...manifest.result, tasks: runTaskChecks(rt, model, label, suite, ctx, taskStep) } };
        ctx.progress('evaluate', 1, 1, { ...taskStep, manifest });
      }
      // Each format's weights-only row, then its row with quantized activations.
      manifests.push(manifest, ...(actManifest ? [actManifest] : []));
    } finally {
      if (mix !== 'pure') model.free();
    }
  }
  return manifests;
}

/** A saved manifest without the key IndexedDB gave it, so the page saves its extension as a new record. */
function withoutStoreKey(m: QuantManifest): QuantManifest {
  const { id: _, ...rest } = m as QuantManifest & { id?: unknown };
  return rest;
}

/** What a measured row is called and how it was made. */
export interface RowIdentity {
  label: string;
  scheme: QuantScheme;
  mix: TypeMix;
  method?: MethodRun;
  /** Measure the row with its activations quantized (the last of `LabEval.run`'s rows). */
  activations?: { setup: ActivationSetup } & ActRequest;
}

/** The protocol options of one evaluation (the Compare panel's). */
export interface ProtocolOpts {
  ctx: number;
  maxWindows: number | null;
  kvCache?: EvalKvCache;
}

/** `LabEval.run`'s / `GpuLabEval.run`'s options for `protocolOpts`. */
export function runOpts({ ctx, maxWindows, kvCache = 'f32' }: ProtocolOpts) {
  return { ctx, ...(maxWindows ? { maxWindows } : {}), ...(kvCache !== 'f32' ? { kvCache } : {}) };
}

/** Evaluates `model` against the base on the eval text on the CPU: the manifest of one Compare row. */
export function measure<M extends Method>(rt: Runtime, model: LabModel, row: RowIdentity, text: string, protocolOpts: ProtocolOpts, ctx: Ctx<M>, evalStep: Progress<M>): QuantManifest {
  ctx.progress('evaluate', 0, 0, evalStep);
  const evaluation = new LabEval(rt.base);
  let run: EvalResult;
  try {
    evaluation.add(model);
    const opts = { ...runOpts(protocolOpts), ...(row.activations ? { activations: row.activations.opts } : {}) };
    run = wasmCall(`evaluating ${row.label}`, () => evaluation.run(text, opts, reporter(ctx, 'evaluate', evalStep)));
  } finally {
    evaluation.free();
  }
  return manifestFrom(rt, model, row, run);
}

/** The manifest of one Compare row from its evaluation (`adapter`: the WebGPU adapter that ran it). */
export function manifestFrom(rt: Runtime, model: LabModel, row: RowIdentity, run: EvalResult, adapter?: string): QuantManifest {
  const open = requireModel();
  const info = rt.base.info();
  const report = model.quantReport();
  if (!report) throw new LabError(`the ${row.label} model has no quantization report`);
  // A quantized KV cache puts the base with that cache between the f32-cache base (the reference
  // of KL, top-1 and the paired statistics) and the model (LabEval.run's docs).
  // Quantized activations add the model with them after it (LabEval.run's docs, act_eval.rs).
  const expected = (run.kvCache === 'f32' ? 2 : 3) + (row.activations ? 1 : 0);
  const base = run.results[0];
  const quantized = run.results[expected - 1];
  if (!base || !quantized || run.results.length !== expected) throw new LabError(`evaluating ${row.label} gave ${run.results.length} results, not ${expected}`);
  // The row's activation format is recorded with its whole setup (result.activations) below.
  const { activations: _, ...measured } = quantized;
  const protocol: EvalProtocol = {
    protocol: run.protocol,
    ctx: run.ctx,
    windows: run.windows,
    windowsAvailable: run.windowsAvailable,
    tokensScored: run.tokensScored,
    textTokens: run.textTokens,
    text: EVAL_TEXT_LABEL,
    ...(run.kvCache !== 'f32' ? { kvCache: run.kvCache } : {}),
    ...(run.device === 'webgpu' ? { device: run.device, ...(adapter ? { adapter } : {}) } : {}),
  };
  return {
    tool: 'quantlab web lab',
    coreVersion: coreVersion(),
    createdAt: new Date().toISOString(),
    source: {
      name: open.source.name.split('/').pop() ?? open.source.name,
      sha256: rt.sha256,
      format: info.sourceFormat,
      bytes: rt.bytes.byteLength,
      bitsPerWeight: report.bitsPerWeightBefore,
      note: `base = the ${info.sourceFormat} checkpoint dequantized (${report.bitsPerWeightBefore.toFixed(3)} bits/weight)`,
    },
    protocol,
    result: {
      ...measured,
      format: run.actLabel ? `${row.label}, ${run.actLabel}${row.activations?.setup.threshold !== undefined ? ` (threshold ${row.activations.setup.threshold})` : ''}` : row.label,
      scheme: row.scheme,
      bitsPerWeight: report.bitsPerWeight,
      bytes: report.bytesAfter,
      basePpl: base.ppl,
      fallbacks: report.fallbacks,
      quantizeSummary: report.summary,
      tensorErrors: report.tensors.map((t): TensorError => ({ name: t.name, to: t.to, mse: t.error.mse, sqnrDb: t.error.sqnrDb })),
      byType: report.byType,
      mix: row.mix,
      ...(row.method ? { method: row.method } : {}),
      ...(row.activations && run.actLabel ? { activations: { ...row.activations.setup, label: run.actLabel, weights: row.label, calibration: row.activations.calibration } } : {}),
      kvBytesPerToken: rt.base.kvCacheBytes(run.kvCache, 1),
    },
  };
}

function side(label: string, r: GenerateResult & { gpuKernels?: string }, pieces: string[]): GenerationSide {
  return { label, pieces, ...r };
}

export function freeGpu(rt: Runtime | null): void {
  rt?.gpu?.base?.free();
  rt?.gpu?.last?.model.free();
  if (rt) rt.gpu = undefined;
}

export const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * `model` on the GPU, uploaded once per model (the base, or the last quantized format), KV cache
 * format and activation precision: another choice drops every copy and the probe's verdict (it
 * timed the old ones). Copies hold `capacity` KV positions (the core's default, 512, or an
 * evaluation's longer window: copies with fewer are uploaded again).
 */
export async function gpuCopy(rt: Runtime, model: LabModel, format: string | null, kvCache: KvCache, activations: Activations, capacity = GPU_CAPACITY): Promise<GpuLabModel> {
  if (rt.gpu && (rt.gpu.kvCache !== kvCache || rt.gpu.activations !== activations || rt.gpu.capacity < capacity)) freeGpu(rt);
  const gpu = (rt.gpu ??= { kvCache, activations, capacity: Math.max(capacity, GPU_CAPACITY) });
  const upload = () => GpuLabModel.upload(model, gpu.capacity, kvCache, activations);
  if (format === null) return (gpu.base ??= await upload());
  if (gpu.last?.format !== format) {
    gpu.last?.model.free();
    gpu.last = undefined;
    gpu.last = { format, model: await upload() };
  }
  return gpu.last.model;
}

/**
 * Which backend to decode on: `cpu` as asked; `webgpu` uploads the base; `auto` also runs the
 * probe once per model (CPU vs GPU decode tokens/s, with the adapter and why). Any WebGPU failure
 * (no WebGPU, device lost, a buffer over the limits) falls back to the CPU and says so.
 */
async function chooseDevice(rt: Runtime, requested: DeviceChoice['requested'], kvCache: KvCache, wanted: Activations, ctx: Ctx<'generate'>): Promise<DeviceChoice> {
  if (requested === 'cpu') return { requested, used: 'cpu', reason: 'CPU (WebAssembly), as selected', kvCache: 'f32', activations: 'f32' };
  let adapter: string | undefined;
  try {
    const browserName = await browserAdapterName();
    ctx.progress('generate', 0, 0, { status: 'uploading the model to WebGPU' });
    const { gpu, activations, activationsNote } = await uploadBase(rt, kvCache, wanted);
    const info = gpu.info();
    adapter = browserName ?? info.adapter;
    const kind = `${info.isFallback ? 'a software fallback' : 'a hardware adapter'}, ${info.shaderF16 ? 'shader-f16' : 'no shader-f16: f32 activations'}`;
    if (requested === 'webgpu') return { requested, used: 'webgpu', adapter, reason: `WebGPU adapter '${adapter}' (${kind}), as selected`, kvCache: info.kvCache, activations, activationsNote };
    ctx.progress('generate', 0, 0, { status: 'probing CPU vs WebGPU decode speed' });
    const probe = (rt.gpu!.probe ??= await gpu.probe());
    const what = info.isFallback ? `is a software fallback (${info.shaderF16 ? 'shader-f16' : 'no shader-f16'})` : `(${kind})`;
    const reason = `WebGPU adapter '${adapter}' ${what}: CPU decodes ${probe.cpuTokensPerSec.toFixed(1)} tok/s vs GPU ${probe.gpuTokensPerSec.toFixed(2)} tok/s → using ${probe.useGpu ? 'WebGPU' : 'the CPU'}`;
    return { requested, used: probe.useGpu ? 'webgpu' : 'cpu', adapter, reason, kvCache: probe.useGpu ? info.kvCache : 'f32', activations: probe.useGpu ? activations : 'f32', activationsNote };
  } catch (error) {
    const message = errorText(error);
    freeGpu(rt);
    return { requested, used: 'cpu', adapter, reason: 'CPU (WebAssembly): WebGPU is unavailable', fallback: `WebGPU failed (${message}); generating on the CPU instead. `, kvCache: 'f32', activations: 'f32' };
  }
}

/**
 * The base model on WebGPU with the `wanted` activations; f16 on an adapter without shader-f16
 * (SwiftShader, many browsers) is uploaded with f32 activations instead, and the note says so.
 */
async function uploadBase(rt: Runtime, kvCache: KvCache, wanted: Activations): Promise<{ gpu: GpuLabModel; activations: Activations; activationsNote?: string }> {
  try {
    return { gpu: await gpuCopy(rt, rt.base, null, kvCache, wanted), activations: wanted };
  } catch (error) {
    const kind = kindOf(error);
    if (wanted !== 'f16' || kind?.kind !== 'missingFeature' || kind.feature !== 'shader-f16') throw error;
    freeGpu(rt);
    const activationsNote = `f16 activations need the adapter's shader-f16 feature (${errorText(error)}): WebGPU ran f32 activations.`;
    return { gpu: await gpuCopy(rt, rt.base, null, kvCache, 'f32'), activations: 'f32', activationsNote };
  }
}

/**
 * The adapter as the browser names it (wgpu's name is often empty in browsers): "vendor / architecture".
 * Throws a readable error when the browser offers no WebGPU or no adapter.
 */
export async function browserAdapterName(): Promise<string | undefined> {
  const gpu = (self.navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) throw new LabError('this browser exposes no WebGPU (navigator.gpu is missing)');
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new LabError('WebGPU is present but the browser offered no adapter (WebGPU disabled or the GPU blocklisted)');
  const info = adapter.info;
  return [info.vendor, info.architecture].filter(Boolean).join(' / ') || info.description || undefined;
}

/** The Generate panel's notice for a device lost after `tokens` tokens of `side` (the rest ran on the CPU). */
function deviceLostNote(side: 'base' | 'quantized', tokens: number, cause: string): string {
  const after = side === 'base' ? ', and so did the quantized model' : '';
  return `The WebGPU device was lost at generated token ${tokens + 1} of the ${side} model (${cause}): its first ${tokens} tokens came from WebGPU, the rest ran on the CPU from there, giving the tokens the CPU gives${after}.`;
}

/**
 * The same prompt and seed through the base and the quantized model, streamed token by token.
 * A WebGPU failure before a side's first token runs that side on the CPU; a lost device
 * (kind `deviceLost`) after it continues the side on the CPU from the last streamed token.
 */
export async function generate(args: Args<'generate'>, ctx: Ctx<'generate'>): Promise<{ base: GenerationSide; quantized: GenerationSide; device: DeviceChoice }> {
  const rt = await getRuntime(ctx);
  const opts = { maxTokens: args.maxTokens, seed: args.seed, temperature: args.temperature, chat: args.chat };
  const device = await chooseDevice(rt, args.device ?? 'cpu', args.kvCache ?? 'f32', args.activations ?? 'f32', ctx);
  const run = async (model: LabModel, which: 'base' | 'quantized') => {
    const pieces: string[] = [];
    const ids: number[] = [];
    let onGpu = false;
    const onToken = (piece: string, tokenId: number) => {
      pieces.push(piece);
      ids.push(tokenId);
      ctx.progress('generate', pieces.length, args.maxTokens, { side: which, piece, tokenId });
      if (onGpu && which === 'base' && pieces.length === args.loseDeviceAfter) GpuLabModel.destroyDevice();
      return !ctx.cancelled();
    };
    let result: GenerateResult | undefined;
    let gpuKernels: string | undefined;
    if (device.used === 'webgpu') {
      try {
        const gpu = await gpuCopy(rt, model, which === 'base' ? null : args.format, device.kvCache, device.activations);
        gpuKernels = gpu.info().kernels;
        onGpu = true;
        result = await gpu.generate(args.prompt, opts, onToken);
      } catch (error) {
        onGpu = false;
        gpuKernels = undefined;
        // A failed device or upload is dropped, so the next run acquires and uploads afresh.
        freeGpu(rt);
        if (ctx.cancelled()) throw new CancelledError('cancelled generation');
        if (pieces.length > 0) {
          // Tokens already streamed stay: only a lost device continues, on the CPU, from there.
          if (kindOf(error)?.kind !== 'deviceLost') throw new RuntimeError(`generating with the ${which} model on WebGPU: ${errorText(error)}`, kindOf(error));
          device.deviceLost = { side: which, afterTokens: ids.length };
          device.fallback = `${device.fallback ?? ''}${deviceLostNote(which, ids.length, errorText(error))} `;
          // The CPU continues the same generation: prompt + the streamed tokens, the sampler's stream where the GPU left it.
          result = wasmCall(`continuing the ${which} model on the CPU`, () => model.continueGeneration(args.prompt, opts, Uint32Array.from(ids), onToken));
        } else {
          device.fallback = `${device.fallback ?? ''}WebGPU failed for the ${which} model (${errorText(error)}); it was generated on the CPU instead. `;
        }
        if (which === 'base' || device.deviceLost) {
          device.used = 'cpu';
          device.kvCache = 'f32';
          device.activations = 'f32';
        }
      }
    }
    result ??= wasmCall(`generating with the ${which} model`, () => model.generate(args.prompt, opts, onToken));
    if (ctx.cancelled()) throw new CancelledError('cancelled generation');
    return { result: { ...result, gpuKernels }, pieces };
  };
  const base = await run(rt.base, 'base');
  const model = quantizeFor(rt, args.format, ctx);
  const quantized = await run(model, 'quantized');
  const info = rt.base.info();
  return {
    base: side(`base (${info.sourceFormat} checkpoint dequantized)`, base.result, base.pieces),
    quantized: side(args.format, quantized.result, quantized.pieces),
    device,
  };
}

/**
 * The open model quantized to `target` (round-to-nearest) and the core's report of it. A format's
 * model stays as the runtime's last one (generate with the same format reuses it); a preset's
 * (llama.cpp's per-tensor types) is freed once reported.
 */
export async function quantize({ target, mix }: Args<'quantize'>, ctx: Ctx<'quantize'>): Promise<QuantizeResult> {
  const rt = await getRuntime(ctx);
  const scheme = wasmCall(`format ${target}`, () => parseTarget(target));
  const label = mix === 'pure' ? scheme.name : presetLabel(scheme.name);
  const model = mix === 'pure' ? quantizeFor(rt, target, ctx) : wasmCall(`quantizing to ${label}`, () => rt.base.quantizeTarget(target, mix, reporter(ctx, 'quantize')));
  try {
    const report = model.quantReport();
    if (!report) throw new LabError(`the ${label} model has no quantization report`);
    return { ...report, label, mix };
  } finally {
    if (mix !== 'pure') model.free();
  }
}

/** The model quantized to `format` as a file: GGUF for ggml types, safetensors otherwise. */
export async function exportModel({ format }: Args<'exportModel'>, ctx: Ctx): Promise<Methods['exportModel']['result']> {
  const rt = await getRuntime(ctx);
  const out = wasmCall(`exporting ${format}`, () => exportQuantized(rt.bytes, format, reporter(ctx, 'export')));
  return exportFile(rt, format, out);
}

/** The file of an export (`out`, the core's bytes) with its name and manifest. */
export function exportFile(rt: Runtime, format: string, out: { bytes: Uint8Array; extension: string; summary: string }, method?: MethodRun): ExportFile {
  const name = requireModel().source.name.split('/').pop() ?? 'model';
  const suffix = method ? `.${method.name}` : '';
  const fileName = `${name.replace(/\.gguf$/i, '')}.${format}${suffix}.${out.extension}`;
  const manifest = { tool: 'quantlab web lab', coreVersion: coreVersion(), createdAt: new Date().toISOString(), source: { name, sha256: rt.sha256, bytes: rt.bytes.byteLength }, format, fileName, extension: out.extension, summary: out.summary, ...(method ? { method } : {}) };
  return { blob: new Blob([out.bytes.slice().buffer as ArrayBuffer]), extension: out.extension, summary: out.summary, fileName, manifest };
}

/** Calibration text: Moby-Dick chapter 4, inside the calibration chapters 4–135 (never the eval chapters 1–3). */
const CALIBRATION_CHAPTER = 4;
const CALIBRATION_LABEL = `Moby-Dick chapter ${CALIBRATION_CHAPTER} (from the calibration chapters 4–135; the eval text is chapters 1–3)`;
let calibrationTextCache: string | null = null;

async function loadCalibrationText(dataUrl: string, ctx: Ctx): Promise<string> {
  if (calibrationTextCache) return calibrationTextCache;
  const url = new URL(`chapter_${CALIBRATION_CHAPTER}.json`, dataUrl).href;
  const source = await download(url, (l, t) => ctx.progress('download', l, t));
  const json = JSON.parse(new TextDecoder().decode(await source.read(0, source.size))) as { text?: string };
  if (typeof json.text !== 'string') throw new LabError(`${url} has no "text" field`);
  calibrationTextCache = evalText([json.text]);
  return calibrationTextCache;
}

/** Activation absmax/RMS per input channel of `tensor` over the calibration text (all matrices are measured once and kept). */
export async function activationStats({ tensor, maxTokens, outlierK, dataUrl }: Args<'activationStats'>, ctx: Ctx): Promise<ActivationChannels> {
  const rt = await getRuntime(ctx);
  const key = `${maxTokens}|${outlierK}`;
  if (rt.activations?.key !== key) {
    const text = await loadCalibrationText(dataUrl, ctx);
    ctx.progress('analyze', 0, maxTokens);
    const result = wasmCall('measuring activations', () =>
      rt.base.activationStats(text, { maxTokens, outlierK }, (done: number, total: number) => {
        ctx.progress('analyze', done, total);
        return !ctx.cancelled();
      }),
    );
    rt.activations = { key, ...result };
  }
  const found = rt.activations.tensors.find((t) => t.tensor === tensor);
  if (!found) throw new LabError(`${tensor} is not a weight matrix the forward pass multiplies activations with (norm vectors have no input channels)`);
  return {
    tensor,
    tokens: rt.activations.tokens,
    text: CALIBRATION_LABEL,
    outlierK,
    colAbsmax: Array.from(found.colAbsmax),
    colRms: Array.from(found.colRms),
    outliers: found.outliers,
  };
}
