// Worker handlers of the Methods panel: a target's planned per-tensor types, which methods fit
// it, and a method run (calibration → quantization → evaluation against the base, a Compare
// row), its file, and the Hugging Face layouts with a method's codes. The core does the work
// (contract: LabModel.calibrate / quantizeImatrix / quantizeGptq / quantizeAwq / quantizeHqq and
// their exports, the code paths of `quantlab imatrix` and `--method gptq|awq|hqq`); here are the
// calibration text, the cache and progress.
import { LabError } from '../errors';
import { type CalibSource, type ExportFile, type HfExport, type MethodInfo, type MethodName, type MethodRun, type Methods, presetLabel, type QuantManifest } from '../messages';
import { calibrationChapters, evalText, type LabImatrix, type LabModel, listMethods, methodSupports, parseTarget } from '../pkg/quantlab.js';
import { download } from '../source';
import { loadImatrix, saveImatrix } from './calib-store';
import { type Ctx } from './context';
import { storeForOffline } from './offline';
import { cachedResult, exportFile, getRuntime, loadEvalText, measure, reporter, type Runtime, wasmCall } from './runtime';

type Args<M extends keyof Methods> = Methods[M]['args'];

/** A calibration text, its hash and what to call it. */
interface CalibText {
  text: string;
  sha256: string;
  label: string;
}

/** Importance matrices by (model hash, text hash, tokens): a second run with the same three reuses it. */
const imatrices = new Map<string, { owner: Runtime; imatrix: LabImatrix }>();
/** Calibration chapters read so far, by number. */
const chapterTexts = new Map<number, string>();

export async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

async function chapter(n: number, dataUrl: string, ctx: Ctx): Promise<string> {
  const known = chapterTexts.get(n);
  if (known !== undefined) return known;
  const url = new URL(`chapter_${n}.json`, dataUrl).href;
  const source = await download(url, (l, t) => ctx.progress('download', l, t));
  await storeForOffline(url, source, ctx);
  const json = JSON.parse(new TextDecoder().decode(await source.read(0, source.size))) as { text?: string };
  if (typeof json.text !== 'string') throw new LabError(`${url} has no "text" field`);
  chapterTexts.set(n, json.text);
  return json.text;
}

/** Moby-Dick chapters 4+ (never the eval chapters), read in order until they hold enough characters for `tokens`, joined as the CLI does: the CLI's default text for the same tokens. */
async function defaultCalibText(tokens: number, dataUrl: string, ctx: Ctx): Promise<CalibText> {
  const plan = calibrationChapters(tokens);
  const chapters: string[] = [];
  let chars = 0;
  let last = plan.first;
  for (let n = plan.first; n <= plan.last && chars < plan.charsWanted; n++) {
    const text = await chapter(n, dataUrl, ctx);
    chapters.push(text);
    // The CLI counts UTF-8 bytes (Rust's str::len).
    chars += new TextEncoder().encode(text).length;
    last = n;
  }
  const text = evalText(chapters);
  return { text, sha256: await sha256(text), label: last === plan.first ? `Moby-Dick chapter ${last}` : `Moby-Dick chapters ${plan.first}–${last}` };
}

export async function calibText(source: CalibSource, tokens: number, dataUrl: string, ctx: Ctx): Promise<CalibText> {
  if (source.kind === 'default') return defaultCalibText(tokens, dataUrl, ctx);
  if (!source.text.trim()) throw new LabError('The calibration text is empty: paste some text or pick a file.');
  return { text: source.text, sha256: await sha256(source.text), label: source.label };
}

/** Where an importance matrix came from: this page's memory, the store kept across page loads, or a calibration run now. */
type ImatrixSource = 'memory' | 'saved' | 'computed';

/**
 * The importance matrix of the runtime's base over `text` with `tokens` tokens: kept in memory
 * for this model, and in Cache Storage across page loads (calib-store.ts; an entry the core
 * refuses is dropped and the step says so).
 */
async function imatrixFor(rt: Runtime, text: CalibText, tokens: number, ctx: Ctx<'runMethod' | 'exportMethod'>, step: { step: number; steps: number; label: string }): Promise<{ imatrix: LabImatrix; source: ImatrixSource }> {
  const key = `${rt.sha256}|${text.sha256}|${tokens}`;
  for (const [k, v] of imatrices) {
    // Matrices of a model no longer open are freed.
    if (v.owner !== rt) {
      v.imatrix.free();
      imatrices.delete(k);
    }
  }
  const hit = imatrices.get(key);
  if (hit) return { imatrix: hit.imatrix, source: 'memory' };
  const storeKey = { modelSha256: rt.sha256, textSha256: text.sha256, tokens };
  const saved = await loadImatrix(storeKey, rt.base);
  if (saved.state === 'saved') {
    imatrices.set(key, { owner: rt, imatrix: saved.imatrix });
    ctx.progress('calibrate', 1, 1, { ...step, label: `${step.label}: saved importance matrix (cached)`, calibration: 'saved' });
    return { imatrix: saved.imatrix, source: 'saved' };
  }
  const note = saved.state === 'dropped' ? ` (a saved importance matrix was dropped, not used: ${saved.reason})` : '';
  const computing = { ...step, label: `${step.label}${note}`, calibration: 'computed' as const, ...(note ? { note } : {}) };
  ctx.progress('calibrate', 0, 0, computing);
  const imatrix = wasmCall('calibration', () => rt.base.calibrate(text.text, { tokens }, reporter(ctx, 'calibrate', computing)));
  imatrices.set(key, { owner: rt, imatrix });
  await saveImatrix(storeKey, imatrix);
  return { imatrix, source: 'computed' };
}

/** A layer-sequential method's (GPTQ, AWQ) progress callback: the core counts positions over every pass; the panel shows the layer reached. */
function layerProgress(rt: Runtime, ctx: Ctx<'runMethod' | 'exportMethod' | 'exportHfLayout'>, step: { step: number; steps: number; label: string }) {
  const layers = rt.base.info().config.nLayers;
  return (done: number, total: number) => {
    ctx.progress('calibrate', Math.floor((done / total) * layers), layers, step);
    return !ctx.cancelled();
  };
}

export async function plannedTypes({ target, mix }: Args<'plannedTypes'>, ctx: Ctx<'plannedTypes'>) {
  const rt = await getRuntime(ctx);
  return wasmCall(`types of ${target}`, () => rt.base.plannedTypes(target, mix));
}

export async function methodSupport({ target }: Args<'methodSupport'>): Promise<Record<MethodName, boolean>> {
  const names = listMethods().map((m) => m.name);
  return Object.fromEntries(names.map((name) => [name, wasmCall(`format ${target}`, () => methodSupports(name, target))])) as Record<MethodName, boolean>;
}

/** How a row names its method (an RTN row is named like Compare's, so the two share saved results). */
const METHOD_SUFFIX: Record<MethodName, string> = { rtn: '', imatrix: ' · imatrix', gptq: ' · GPTQ', awq: ' · AWQ', hqq: ' · HQQ' };

/** What `method` calibrates on, from the core's list (RTN and HQQ read the weights only). */
function calibrationOf(method: MethodName): MethodInfo['calibration'] {
  return listMethods().find((m) => m.name === method)?.calibration ?? 'none';
}

/** Whether `method` reads calibration text. */
function calibrates(method: MethodName): boolean {
  return calibrationOf(method) !== 'none';
}

/** Refuses a method the core says cannot produce `target`. */
function checkSupport(method: MethodName, target: string, name: string): void {
  if (!wasmCall(`method ${method}`, () => methodSupports(method, target))) {
    throw new LabError(`${method} cannot quantize to ${name}: ${listMethods().find((m) => m.name === method)?.formats ?? ''}`);
  }
}

/** A row label: the target (a preset says so) and the method. */
export function methodLabel(target: string, isPreset: boolean, method: MethodName): string {
  return `${isPreset ? presetLabel(target) : target}${METHOD_SUFFIX[method]}`;
}

/** Calibrate (cached), quantize with the method, evaluate against the base (Compare's protocol). */
export async function runMethod(args: Args<'runMethod'>, ctx: Ctx<'runMethod'>): Promise<QuantManifest> {
  const { target, mix, method, calib, tokens, dataUrl, saved } = args;
  const rt = await getRuntime(ctx);
  const parsed = wasmCall(`format ${target}`, () => parseTarget(target));
  checkSupport(method, target, parsed.name);
  const label = methodLabel(parsed.name, mix === 'llama.cpp', method);
  const evalTextJoined = await loadEvalText(dataUrl, ctx);
  const text = calibrates(method) ? await calibText(calib, tokens, dataUrl, ctx) : null;
  const hit = cachedResult(saved, rt.sha256, label, args.ctx, args.maxWindows, (m) => m.result.method?.calibration?.textSha256 === text?.sha256 && m.result.method?.calibration?.tokens === (text ? tokens : undefined));
  const steps = 3;
  if (hit) {
    ctx.progress('evaluate', 1, 1, { step: 2, steps, label: `${label}: saved result`, manifest: hit, cached: true });
    return hit;
  }
  const started = performance.now();
  let model: LabModel;
  let tokensRun: number | undefined;
  let imatrixSource: ImatrixSource | undefined;
  const layerwise = calibrationOf(method) === 'layerSequential';
  const calibStep = { step: 0, steps, label: layerwise ? `${method.toUpperCase()}: calibrate and quantize layer by layer (progress in layers)` : `Calibrate on ${text?.label ?? ''}` };
  const quantizeStep = { step: 1, steps, label: `Quantize ${label}` };
  ctx.progress('calibrate', 0, 0, calibStep);
  if (method === 'imatrix' && text) {
    const found = await imatrixFor(rt, text, tokens, ctx, calibStep);
    const imatrix = found.imatrix;
    tokensRun = imatrix.info().tokens;
    imatrixSource = found.source;
    ctx.progress('quantize', 0, 0, quantizeStep);
    model = wasmCall(`quantizing to ${label}`, () => rt.base.quantizeImatrix(target, mix, imatrix, reporter(ctx, 'quantize', quantizeStep)));
  } else if (method === 'gptq' && text) {
    model = wasmCall(`quantizing to ${label}`, () => rt.base.quantizeGptq(target, mix, text.text, { tokens }, layerProgress(rt, ctx, calibStep)));
  } else if (method === 'awq' && text) {
    model = wasmCall(`quantizing to ${label}`, () => rt.base.quantizeAwq(target, mix, text.text, { tokens }, layerProgress(rt, ctx, calibStep)));
  } else if (method === 'hqq') {
    ctx.progress('quantize', 0, 0, quantizeStep);
    model = wasmCall(`quantizing to ${label}`, () => rt.base.quantizeHqq(target, mix, reporter(ctx, 'quantize', quantizeStep)));
  } else {
    ctx.progress('quantize', 0, 0, quantizeStep);
    model = wasmCall(`quantizing to ${label}`, () => rt.base.quantizeTarget(target, mix, reporter(ctx, 'quantize', quantizeStep)));
  }
  const seconds = (performance.now() - started) / 1000;
  try {
    const run: MethodRun = { name: method, seconds, ...(text ? { calibration: { text: text.label, textSha256: text.sha256, tokens, ...(tokensRun === undefined ? {} : { tokensRun }), ...(imatrixSource ? { reused: imatrixSource !== 'computed' } : {}) } } : {}) };
    const evalStep = { step: 2, steps, label: `Evaluate ${label} against the base` };
    const manifest = measure(rt, model, { label, scheme: parsed.scheme, mix, method: run }, evalTextJoined, { ctx: args.ctx, maxWindows: args.maxWindows }, ctx, evalStep);
    ctx.progress('evaluate', 1, 1, { ...evalStep, manifest });
    return manifest;
  } finally {
    model.free();
  }
}

/** The model quantized to `target` with a method, as the file `quantlab quantize --imatrix` / `--method gptq|awq|hqq` writes (same calibration text and tokens as `runMethod`; the imatrix is shared with it). */
export async function exportMethod(args: Args<'exportMethod'>, ctx: Ctx<'exportMethod'>): Promise<ExportFile> {
  const { target, mix, method, calib, tokens, dataUrl } = args;
  const rt = await getRuntime(ctx);
  const parsed = wasmCall(`format ${target}`, () => parseTarget(target));
  if (method === 'rtn') throw new LabError('Round to nearest needs no calibration: export the format itself (Export panel).');
  checkSupport(method, target, parsed.name);
  const text = calibrates(method) ? await calibText(calib, tokens, dataUrl, ctx) : null;
  const label = methodLabel(parsed.name, mix === 'llama.cpp', method);
  const step = { step: 0, steps: 1, label: `Export ${label}` };
  const started = performance.now();
  ctx.progress(text ? 'calibrate' : 'export', 0, 0, step);
  let out;
  if (method === 'imatrix' && text) {
    const { imatrix } = await imatrixFor(rt, text, tokens, ctx, step);
    out = wasmCall(`exporting ${label}`, () => rt.base.exportImatrix(rt.bytes, target, mix, imatrix));
  } else if (method === 'gptq' && text) {
    out = wasmCall(`exporting ${label}`, () => rt.base.exportGptq(rt.bytes, target, mix, text.text, { tokens }, layerProgress(rt, ctx, step)));
  } else if (method === 'awq' && text) {
    out = wasmCall(`exporting ${label}`, () => rt.base.exportAwq(rt.bytes, target, mix, text.text, { tokens }, layerProgress(rt, ctx, step)));
  } else {
    out = wasmCall(`exporting ${label}`, () => rt.base.exportHqq(rt.bytes, target, mix, reporter(ctx, 'export', step)));
  }
  return exportFile(rt, parsed.name, out, methodRun(method, started, text, tokens));
}

function methodRun(method: MethodName, started: number, text: CalibText | null, tokens: number): MethodRun {
  const seconds = (performance.now() - started) / 1000;
  return { name: method, seconds, ...(text ? { calibration: { text: text.label, textSha256: text.sha256, tokens } } : {}) };
}

/** The model's linears in AutoGPTQ's or AutoAWQ's checkpoint layout, their codes chosen by `method` (round to nearest by default), with its manifest. */
export async function exportHfLayout(args: Args<'exportHfLayout'>, ctx: Ctx<'exportHfLayout'>): Promise<HfExport> {
  const { format, layout, method = 'rtn', calib = { kind: 'default' }, tokens = 4096, dataUrl } = args;
  const rt = await getRuntime(ctx);
  const text = calibrates(method) ? await calibText(calib, tokens, dataUrl ?? new URL('data/moby-dick/', self.location.href).href, ctx) : null;
  const step = { step: 0, steps: 1, label: `Export ${format}${METHOD_SUFFIX[method]} in the ${layout} layout` };
  const progress = calibrationOf(method) === 'layerSequential' ? layerProgress(rt, ctx, step) : reporter(ctx, 'export', step);
  const started = performance.now();
  const out = wasmCall(`exporting ${format} in the ${layout} layout`, () => rt.base.exportHfLayout(rt.bytes, format, layout, method, text?.text ?? '', { tokens }, progress));
  const codes = method === 'rtn' ? '' : ` (${method} codes)`;
  const summary = `${out.quantized} linear layers quantized to ${format}${codes} in ${layout === 'gptq' ? "AutoGPTQ's v1" : "AutoAWQ's GEMM"} layout, ${out.kept} tensors kept in float; put model.safetensors and config.json in one directory`;
  const file = exportFile(rt, format, { bytes: out.safetensors, extension: 'safetensors', summary }, method === 'rtn' ? undefined : methodRun(method, started, text, tokens));
  const manifest = { ...file.manifest, fileName: 'model.safetensors', layout };
  return { safetensors: file.blob, config: out.config, quantized: out.quantized, kept: out.kept, manifest };
}
