// The package's client API: `const lab = await createLab()` starts the lab worker (the wasm core
// runs there, off the page's thread) and wraps its typed messages in plain async methods. Every
// long call takes `{signal, onProgress}`; failures are the typed classes of errors.ts, with the
// core's ErrorKind carried across the worker boundary.
import { LabClient, type ProgressFn } from '../client';
import { FormatChoiceError, LabError } from '../errors';
import type { ActivationSetup, Activations, CalibSource, CoreStart, Device, DeviceStatus, EvalDevice, EvalKvCache, ExportManifest, HfExport, HfLayout, HistogramResult, KvCache, LoadedModel, MethodName, Methods, QuantizeResult, QuantManifest, RecipeAdvice, RecipeBudget, ScanReport, ScanUnit, Scope, StartMessage, StepEvent, TaskSuiteChoice, TensorRow, TensorView, TypeMix } from '../messages';
import { type CallOptions, runCall } from './calls';
import { TokenStream } from './tokens';
import { defaultWorker } from './worker-url';

export interface LabOptions {
  /** The lab worker's script (the package's `quantlab/worker`); by default the one next to this module. */
  workerUrl?: string | URL;
  /** The single-thread core's .wasm; by default the one next to its glue module. */
  wasmUrl?: string | URL;
  /** The threaded core's .wasm; by default the one next to its glue module. */
  threadsWasmUrl?: string | URL;
  /**
   * Compute threads. 1 runs the single-thread core; more needs a cross-origin isolated page
   * (COOP/COEP headers) and otherwise falls back to one thread (`lab.core.note` says why).
   * By default the browser's cores, at most 8.
   */
  threads?: number;
  /** Makes the worker instead of `workerUrl` (a worker from another loader, or a test double). */
  createWorker?: () => Worker;
  /** How long a cancelled call may run on before the worker is restarted to stop it (ms). */
  hardCancelMs?: number;
}

/** The core's version, its format, preset and method lists, and the threads it runs on. */
export type CoreInfo = Methods['init']['result'];

/** A model: a URL (relative to the page), a File or Blob, or the file's bytes. */
export type ModelSource = string | URL | Blob | ArrayBuffer | ArrayBufferView;

/**
 * How to quantize: a format or llama.cpp preset name with how types are chosen (`pure`: that type
 * for every weight matrix; `llama.cpp`: a preset's per-tensor types), and for `evaluate` the
 * method that chooses the codes (round-to-nearest by default; imatrix, GPTQ and AWQ calibrate
 * first, HQQ reads the weights only; `lab.core.methodList` lists them).
 */
export interface Recipe {
  target: string;
  mix?: TypeMix;
  method?: MethodName;
  /** The calibration text of imatrix/GPTQ/AWQ (default: Moby-Dick chapters after the eval text, under `dataUrl`). */
  calibration?: CalibSource;
  /** Calibration tokens (default 4096). */
  calibrationTokens?: number;
}

/** How `evaluate` measures: windows of `ctx` tokens of the eval text under `dataUrl`. */
export interface EvalProtocolOptions {
  /** Tokens per window (default 512). */
  ctx?: number;
  /** At most this many windows (default: all of the text). */
  windows?: number | null;
  /** The folder with Moby-Dick's `chapter_N.json` (default: `data/moby-dick/` under the page). */
  dataUrl?: string | URL;
  /** Earlier manifests: a row measured before with the same model, protocol and core is reused. */
  saved?: QuantManifest[];
}

/** `evaluate`'s task suite: none (`false`), the built-in one (`true`) or a suite file's text (same schema as tasks/instruct-checks.json). */
export type TaskSuiteOption = boolean | { json: string; label?: string };

export interface HistogramOptions extends CallOptions {
  bins?: number;
}

export interface TensorViewOptions extends HistogramOptions {
  /** The format whose levels, error and occupancy to show with the values. */
  format: string;
  /** The values shown: the whole tensor, one row, or one group of the format (default tensor). */
  scope?: Scope;
  /** Which group (or the row holding it) for scope `row`/`group` (default 0). */
  group?: number;
}

export interface GenerateOptions extends CallOptions<never> {
  /** The quantized side's format (the base is the model as loaded). */
  format: string;
  device?: Device;
  maxTokens?: number;
  seed?: number;
  /** 0: greedy (default). */
  temperature?: number;
  /** Wrap the prompt in the model's chat template. */
  chat?: boolean;
  kvCache?: KvCache;
  activations?: Activations;
  /** Device notes while WebGPU is prepared (upload, speed probe). */
  onStatus?: (note: DeviceStatus) => void;
  /** Diagnostic (tests/e2e/gpu.test.mjs): lose the WebGPU device after this many base tokens. */
  loseDeviceAfter?: number;
}

export interface ExportResult {
  blob: Blob;
  fileName: string;
  manifest: ExportManifest;
}

const DEFAULT_BINS = 128;
const DEFAULT_CTX = 512;
const DEFAULT_CALIBRATION_TOKENS = 4096;
/** `quantlab sensitivity`'s default `--calib-tokens`. */
const DEFAULT_SCAN_TOKENS = 1024;

/** What a sensitivity scan quantizes and on which text. */
export interface ScanOptions {
  /** One weight matrix at a time, or a layer's matrices (default). */
  unit?: ScanUnit;
  /** Calibration tokens scored per unit (default 1024). */
  tokens?: number;
  /** Only these units (names as the rows give them). */
  units?: string[] | null;
  /** The calibration text (default: Moby-Dick chapters 4+, never the eval chapters, under `dataUrl`). */
  calibration?: CalibSource;
  dataUrl?: string | URL;
}

/** A relative URL resolved against the page (the worker would resolve it against its own script). */
function absolute(url: string | URL): string {
  const base = globalThis.document?.baseURI ?? globalThis.location?.href;
  try {
    return new URL(String(url), base).href;
  } catch {
    throw new LabError(`${String(url)} is not a URL this page can resolve`);
  }
}

function toFile(source: Blob | ArrayBuffer | ArrayBufferView, name: string): File {
  if (source instanceof File) return source;
  if (source instanceof Blob) return new File([source], name);
  const bytes = source instanceof ArrayBuffer ? source : source.buffer.slice(source.byteOffset, source.byteOffset + source.byteLength);
  return new File([bytes as ArrayBuffer], name);
}

export class Lab {
  /**
   * Called after the worker was restarted to stop a call that ignored its cancel. By default the
   * lab re-opens the model it had; set this to do it yourself.
   */
  onRestart: (() => void) | null = null;
  private current: LoadedModel | null = null;
  private lastSource: string | File | null = null;

  constructor(
    /** The worker client underneath (every worker method, for what this API does not wrap). */
    readonly client: LabClient,
    readonly core: CoreInfo,
  ) {
    client.onRestart = () => {
      this.current = null;
      if (this.onRestart) this.onRestart();
      else if (this.lastSource !== null) void this.load(this.lastSource).catch(() => {});
    };
  }

  /** The open model (its header and where it came from), or null. */
  get model(): LoadedModel | null {
    return this.current;
  }

  /** Opens a model: GGUF, or safetensors for the weight views. A URL is downloaded (and kept for offline use where the page allows). */
  async load(source: ModelSource, options: CallOptions & { name?: string } = {}): Promise<LoadedModel> {
    // What a restarted worker re-opens: the resolved URL, or the bytes with their name.
    const what = typeof source === 'string' || source instanceof URL ? absolute(source) : toFile(source, options.name ?? 'model.gguf');
    const loaded = typeof what === 'string' ? await runCall(this.client, 'openUrl', { url: what }, options) : await runCall(this.client, 'openFile', { file: what }, options);
    this.current = loaded;
    this.lastSource = what;
    return loaded;
  }

  /** The open model's tensors (name, type, shape, size). */
  tensors(): TensorRow[] {
    if (!this.current) throw new LabError('No model is open: call lab.load first');
    return this.current.header.tensors;
  }

  /** A histogram of a tensor's values; with `format`, also that format's levels, error and occupancy. */
  histogram(tensor: string, options?: HistogramOptions): Promise<HistogramResult>;
  histogram(tensor: string, options: TensorViewOptions): Promise<TensorView>;
  histogram(tensor: string, options: HistogramOptions | TensorViewOptions = {}): Promise<HistogramResult | TensorView> {
    const bins = options.bins ?? DEFAULT_BINS;
    if (!('format' in options)) return runCall(this.client, 'histogram', { tensor, bins }, options);
    return runCall(this.client, 'tensorView', { tensor, format: options.format, bins, scope: options.scope ?? 'tensor', group: options.group ?? 0 }, options);
  }

  /** Quantizes the model by round-to-nearest and reports each matrix's type and error (GPTQ/imatrix: `evaluate` a method recipe). */
  quantize(target: string | Recipe, options: CallOptions = {}): Promise<QuantizeResult> {
    const recipe = typeof target === 'string' ? { target } : target;
    if (recipe.method && recipe.method !== 'rtn') {
      return Promise.reject(new FormatChoiceError(`quantize rounds to nearest; ${recipe.method} calibrates on text first: pass the recipe to evaluate(), which runs and measures it`));
    }
    return runCall(this.client, 'quantize', { target: recipe.target, mix: recipe.mix ?? 'pure' }, options);
  }

  /**
   * Quantizes to each format or recipe and measures it against the base model (perplexity, KL,
   * top-1 agreement, paired standard errors): one manifest per entry, in the order given. With a
   * `kvCache` other than f32 (round-to-nearest rows), every model runs with that KV cache and is
   * measured against the base with an f32 cache (`protocol.kvCache` in the manifest).
   * With `tasks` (`true`: the built-in suite; or a suite file's text), each round-to-nearest format and
   * preset also runs the instruct task suite (`result.tasks`: valid share and agreement with the
   * base's answers, as `quantlab eval --tasks`).
   * `device: 'webgpu'` evaluates round-to-nearest rows on WebGPU (`protocol.device` and `.adapter`
   * in their manifests; f32 KV cache only); where WebGPU is missing or fails, the rows run on the
   * CPU and a progress step's `note` says why. Method recipes evaluate on the CPU.
   * With `activations` (round-to-nearest rows), each format's manifest is followed by a second one,
   * the same format with its activations quantized as `activations` says (`result.activations`; as
   * `quantlab eval --activations … [--smoothquant A] [--llm-int8-threshold T]`: W8A8 beside W8),
   * evaluated on the CPU.
   */
  async evaluate({ formats, protocol = {}, kvCache, tasks = false, device, loseDeviceAfter, activations }: { formats: (string | Recipe)[]; protocol?: EvalProtocolOptions; kvCache?: EvalKvCache; tasks?: TaskSuiteOption; device?: EvalDevice; loseDeviceAfter?: number; activations?: ActivationSetup }, options: CallOptions<StepEvent> = {}): Promise<QuantManifest[]> {
    const recipes = formats.map((f) => (typeof f === 'string' ? { target: f } : f));
    const common = { ctx: protocol.ctx ?? DEFAULT_CTX, maxWindows: protocol.windows ?? null, dataUrl: absolute(protocol.dataUrl ?? 'data/moby-dick/'), saved: protocol.saved ?? [] };
    const suite: TaskSuiteChoice | null = tasks === false ? null : tasks === true ? { kind: 'default' } : { kind: 'file', json: tasks.json, label: tasks.label ?? 'a task suite file' };
    if (suite && recipes.some((r) => r.method && r.method !== 'rtn')) {
      throw new FormatChoiceError('task checks run on round-to-nearest formats and presets; evaluate calibrated methods (imatrix, GPTQ) without tasks');
    }
    const plain = recipes.filter((r) => !r.method || r.method === 'rtn');
    if (kvCache && kvCache !== 'f32' && plain.length < recipes.length) {
      throw new FormatChoiceError(`kvCache ${kvCache} applies to round-to-nearest formats only; evaluate the ${recipes.find((r) => !plain.includes(r))!.method} recipes without it`);
    }
    if (activations && plain.length < recipes.length) {
      throw new FormatChoiceError(`activations apply to round-to-nearest formats only; evaluate the ${recipes.find((r) => !plain.includes(r))!.method} recipes without them`);
    }
    const pure = plain.filter((r) => (r.mix ?? 'pure') === 'pure');
    const presets = plain.filter((r) => r.mix === 'llama.cpp');
    const results = new Map<Recipe, QuantManifest[]>();
    if (plain.length > 0) {
      const rows = await runCall(this.client, 'compareFormats', { formats: pure.map((r) => r.target), presets: presets.map((r) => r.target), ...common, tasks: suite, ...(kvCache ? { kvCache } : {}), ...(device ? { device } : {}), ...(loseDeviceAfter !== undefined ? { loseDeviceAfter } : {}), ...(activations ? { activations } : {}) }, options);
      const per = activations ? 2 : 1;
      [...pure, ...presets].forEach((r, i) => results.set(r, rows.slice(per * i, per * i + per)));
    }
    for (const r of recipes.filter((r) => !plain.includes(r))) {
      const args = { target: r.target, mix: r.mix ?? 'pure', method: r.method!, calib: r.calibration ?? { kind: 'default' as const }, tokens: r.calibrationTokens ?? DEFAULT_CALIBRATION_TOKENS, ...common };
      results.set(r, [await runCall(this.client, 'runMethod', args, options)]);
    }
    return recipes.flatMap((r) => results.get(r)!);
  }

  /** Generates from `prompt` with the base model, then with it quantized to `format`: iterate the tokens, await `result` for both sides. */
  generate(prompt: string, options: GenerateOptions): TokenStream {
    const { format, device = 'cpu', maxTokens = 32, seed = 0, temperature = 0, chat = false, kvCache, activations, loseDeviceAfter, signal, onProgress, onStatus } = options;
    const args = { prompt, format, device, maxTokens, seed, temperature, chat, kvCache, activations, loseDeviceAfter };
    return new TokenStream((push, status) => {
      const listener: ProgressFn<Methods['generate']['progress']> = (phase, loaded, total, detail) => {
        onProgress?.(phase, loaded, total);
        if (detail && 'status' in detail) status(detail);
        else if (detail) push(detail);
      };
      // Aborted by the caller's signal, or by leaving the loop early.
      const stop = new AbortController();
      if (signal?.aborted) stop.abort();
      signal?.addEventListener('abort', () => stop.abort(), { once: true });
      return { result: runCall(this.client, 'generate', args, { signal: stop.signal, onProgress: listener }), cancel: () => stop.abort() };
    }, onStatus);
  }

  /**
   * The model quantized to `format` as a file (GGUF for ggml types, else safetensors) and what it
   * is. A recipe with an imatrix, GPTQ or AWQ method calibrates first (its text from `dataUrl`, as
   * `evaluate` does); with HQQ it reads the weights only. The file is the one `quantlab quantize
   * --imatrix` / `--method gptq|awq|hqq` writes.
   */
  async export(format: string | Recipe, options: CallOptions<StepEvent> & { dataUrl?: string | URL } = {}): Promise<ExportResult> {
    const r = typeof format === 'string' ? { target: format } : format;
    const { dataUrl, ...call } = options;
    const { blob, fileName, manifest } =
      !r.method || r.method === 'rtn'
        ? await runCall(this.client, 'exportModel', { format: r.target }, call as CallOptions)
        : await runCall(
            this.client,
            'exportMethod',
            { target: r.target, mix: r.mix ?? 'pure', method: r.method, calib: r.calibration ?? { kind: 'default' }, tokens: r.calibrationTokens ?? DEFAULT_CALIBRATION_TOKENS, dataUrl: absolute(dataUrl ?? 'data/moby-dick/') },
            call,
          );
    return { blob, fileName, manifest };
  }

  /**
   * The model's linear layers in `format` (an INT group format) as the Hugging Face checkpoint
   * transformers' GPTQ (AutoGPTQ v1) or AWQ (GEMM) loaders read: `model.safetensors` and
   * `config.json`, as `quantlab quantize --layout` writes them. A recipe's method (rtn, gptq, awq,
   * hqq; round to nearest by default) chooses the codes, calibrating as `export` does.
   */
  async exportHfLayout(format: string | Recipe, layout: HfLayout, options: CallOptions<StepEvent> & { dataUrl?: string | URL } = {}): Promise<HfExport> {
    const r = typeof format === 'string' ? { target: format } : format;
    const { dataUrl, ...call } = options;
    const method = r.method ? { method: r.method, calib: r.calibration ?? { kind: 'default' as const }, tokens: r.calibrationTokens ?? DEFAULT_CALIBRATION_TOKENS, dataUrl: absolute(dataUrl ?? 'data/moby-dick/') } : {};
    return runCall(this.client, 'exportHfLayout', { format: r.target, layout, ...method }, call);
  }

  /**
   * The sensitivity scan (`quantlab sensitivity MODEL -f FORMAT --json`): each unit (a weight
   * matrix, or a layer's) alone at `format`, its KL to the base on calibration text; rows ranked.
   * Several formats, comma-separated (`q4_0,q5_0`), are each scanned (`other_scans`), and the
   * recipe chooses among them per unit. `units` scans only those units. The lab keeps the scan
   * for `recommendRecipe`.
   */
  sensitivity(format: string, options: CallOptions & ScanOptions = {}): Promise<ScanReport> {
    const { unit = 'layer', tokens = DEFAULT_SCAN_TOKENS, units = null, calibration = { kind: 'default' }, dataUrl, ...call } = options;
    return runCall(this.client, 'sensitivity', { format, unit, tokens, units, calib: calibration, dataUrl: absolute(dataUrl ?? 'data/moby-dick/') }, call);
  }

  /** The recipe `quantlab sensitivity --high HIGH --target-…` recommends from the last scan (`recipe_json` is recipe.json). */
  recommendRecipe(budget: RecipeBudget, options: CallOptions & { highFormat?: string } = {}): Promise<RecipeAdvice> {
    const { highFormat = 'q8_0', ...call } = options;
    return runCall(this.client, 'recommendRecipe', { highFormat, budget }, call);
  }

  /** Quantizes by a recipe file (`quantlab eval --recipe`) and measures it against the base: a manifest marked as a recipe. */
  evaluateRecipe(recipeJson: string, protocol: EvalProtocolOptions = {}, options: CallOptions<StepEvent> = {}): Promise<QuantManifest> {
    return runCall(this.client, 'evaluateRecipe', { recipeJson, ctx: protocol.ctx ?? DEFAULT_CTX, maxWindows: protocol.windows ?? null, dataUrl: absolute(protocol.dataUrl ?? 'data/moby-dick/'), saved: protocol.saved ?? [] }, options);
  }

  /** Stops the worker; the lab cannot be used afterwards. */
  terminate(): void {
    this.client.terminate();
    this.current = null;
  }
}

/** Starts the lab worker and its wasm core; resolves once the core answers. */
export async function createLab(options: LabOptions = {}): Promise<Lab> {
  const start: CoreStart = {
    threads: options.threads ?? null,
    ...(options.wasmUrl ? { wasmUrl: absolute(options.wasmUrl) } : {}),
    ...(options.threadsWasmUrl ? { threadsWasmUrl: absolute(options.threadsWasmUrl) } : {}),
  };
  const workerUrl = options.workerUrl && absolute(options.workerUrl);
  const make = options.createWorker ?? (workerUrl ? () => new Worker(workerUrl, { type: 'module' }) : defaultWorker);
  const client = new LabClient(() => {
    const worker = make();
    worker.postMessage({ start } satisfies StartMessage);
    return worker;
  }, options.hardCancelMs);
  try {
    return new Lab(client, await client.call('init', {}));
  } catch (error) {
    client.terminate();
    throw error;
  }
}
