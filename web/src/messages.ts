// The typed protocol between the page and the lab worker. Every request carries an id; the
// worker answers with exactly one `result` or `error` for that id, and may send `progress`
// messages for it before that.

// The wasm core's results are typed by declarations generated from its Rust structs (in the
// module's .d.ts); the types below that describe core results are those, not copies.
import type { ErrorMetrics, EvalOpts, FormatInfo, GenerateResult, GgufHeader, Histogram, LayerErrorMethod, LayerErrorResult, MethodInfo, Paired, PlannedType, PresetInfo, QuantReport, QuantScheme, RecipeAdvice, SafetensorsHeader, ScanReport, SuiteResult, ThreadStats, TypeCount, WeightStats } from './pkg/quantlab.js';
import type { WireError } from './errors';

export type { ErrorMetrics, FormatInfo, MethodInfo, PlannedType, PresetInfo, QuantReport, RecipeAdvice, ScanReport, SuiteResult, TaskResult, TensorRow, TypeCount, UnitRow } from './pkg/quantlab.js';

/** The header of an opened model file: a GGUF, or a safetensors file in the same shape. */
export type ModelHeader = GgufHeader | SafetensorsHeader;

/** Whether the model is kept in Cache Storage for offline use. */
export interface OfflineState {
  state: 'cached' | 'stored' | 'no-quota' | 'unavailable' | 'not-kept';
  message: string;
}

export interface LoadedModel {
  source: string;
  header: ModelHeader;
  /** Set for models opened from a URL. */
  offline?: OfflineState;
}

/** A histogram of one tensor's values (or a row or group of them). */
export type HistogramResult = Histogram & { tensor: string };

export interface AdapterReport {
  available: boolean;
  /** Why WebGPU is not usable, when it is not. */
  reason?: string;
  vendor?: string;
  architecture?: string;
  description?: string;
  isFallbackAdapter?: boolean;
  shaderF16?: boolean;
  subgroups?: boolean;
  maxStorageBufferBindingSize?: number;
  /** Result of running shaders/axpy.wgsl through wgpu against its CPU twin. */
  computeCheck?: { passed: boolean; maxAbsError: number } | { passed: false; error: string };
}

/** One row of the layer browser: statistics of a tensor and its error under the chosen format. */
export interface TensorAnalysis {
  name: string;
  elements: number;
  bytes: number;
  kurtosis: number | null;
  outlierRows: number;
  outlierCols: number;
  format: string;
  bitsPerWeight?: number;
  metrics?: ErrorMetrics;
  /** Why the format could not be applied to this tensor (e.g. row length not a block multiple). */
  error?: string;
}

export type Scope = 'tensor' | 'row' | 'group';

/** What the histogram panel shows: the values of one scope and the chosen format's levels. */
export interface TensorView {
  tensor: string;
  format: string;
  scope: Scope;
  /** Values in the shown scope: a whole tensor, one row, or one group of the format. */
  histogram: HistogramResult;
  /** First flattened index and length of the shown scope. */
  start: number;
  length: number;
  row: number;
  group: number;
  nGroups: number;
  groupLen: number;
  /** Representable values of `group` under the format (ascending, distinct). */
  levels: number[];
  /** Values of the selected group outside [min level, max level]: clipped by the format. */
  clipped: number;
  /** Weights of the whole tensor stored with each code. */
  occupancy: number[];
  bitsPerWeight: number;
  metrics: ErrorMetrics | null;
  /** Why the format could not be applied to this tensor (the histogram is still shown). */
  formatError?: string;
}

/** Per-channel statistics of one weight matrix. */
export type ChannelStats = WeightStats & { tensor: string };

/** NF4 vs normal quantiles vs INT4 for one block of 64 weights and the whole tensor. */
export interface Nf4Placement {
  tensor: string;
  block: number;
  nBlocks: number;
  blockSize: number;
  /** The block's weights divided by the block's absmax (so they lie in [-1, 1]). */
  normalised: number[];
  absmax: number;
  nf4Levels: number[];
  int4Levels: number[];
  normalLevels: number[];
  /** Mean squared error over the whole tensor, per codebook (same blocks, same absmax scaling). */
  mse: { nf4: number; int4: number; normal: number };
  signalPower: number;
}

/** The evaluation protocol of a comparison (what the manifest records). */
export interface EvalProtocol {
  protocol: string;
  ctx: number;
  windows: number;
  windowsAvailable: number;
  tokensScored: number;
  textTokens: number;
  text: string;
  /** The KV cache every evaluated model ran with, when not f32 (the base reference always has f32). */
  kvCache?: EvalKvCache;
  /** Set when the base and the model ran on WebGPU (absent: the CPU). */
  device?: 'webgpu';
  /** The WebGPU adapter that ran them, as the browser names it. */
  adapter?: string;
}

/** Where Compare evaluates: the CPU (wasm threads) or WebGPU (the GPU's batched forward). */
export type EvalDevice = 'cpu' | 'webgpu';

/** One format's measured result (the base is a row too, with format "base"). */
export interface FormatResult {
  format: string;
  /** The scheme's typed description (from parseScheme). */
  scheme: QuantScheme;
  bitsPerWeight: number;
  bytes: number;
  ppl: number;
  pplStderr: number;
  meanNll: number;
  klMean?: number;
  klMax?: number;
  top1Agreement?: number;
  tokensPerSec?: number;
  /** Paired statistics against the base on the same tokens (standard errors of Δppl, KL, top-1). */
  paired?: Paired;
  basePpl: number;
  /** Matrices the tensor policy stored in another type (e.g. K-quants on 576-wide rows). */
  fallbacks: number;
  quantizeSummary: string;
  /** Per weight matrix: what it became and its error (from the core's quantize report). */
  tensorErrors?: TensorError[];
  /** Weight matrices per stored type (a preset's mix). */
  byType?: TypeCount[];
  /** How the types were chosen: llama.cpp's per-tensor rules of a file type, or one type everywhere. */
  mix?: TypeMix;
  /** The method that chose the codes, when not round-to-nearest of a Compare run. */
  method?: MethodRun;
  /** Set for a mixed-precision recipe (recipe.json) rather than one format or preset. */
  recipe?: RecipeRun;
  /** The instruct task suite on the base and on this model (Compare's "Task checks"). */
  tasks?: TaskChecks;
  /** Set for a row with quantized activations (Compare's "Activations"): the setup it ran. */
  activations?: ActivationRun;
  /** KV cache bytes per position of context for this row's cache type (`LabModel.kvCacheBytes`; linear in positions). */
  kvBytesPerToken?: number;
}

/**
 * Activation quantization of a Compare row (`LabEval.run`'s `activations`, as `quantlab eval
 * --activations QUANT [--smoothquant A] [--llm-int8-threshold T] [--calib-tokens N]`): the format
 * (`int8-token`, `int8-tensor`, `int8-static`, `llm-int8`, …), SmoothQuant's alpha, LLM.int8()'s
 * threshold, and the calibration tokens of static ranges and SmoothQuant (default text: Moby-Dick
 * chapters 4+).
 */
export interface ActivationSetup {
  quant: string;
  smoothquant?: number;
  threshold?: number;
  calibTokens?: number;
}

/** What a row with quantized activations ran: its setup and the core's label for it. */
export interface ActivationRun extends ActivationSetup {
  /** As the CLI's row names end, e.g. `act int8-token, SmoothQuant α=0.5`. */
  label: string;
  /** The label of the same format's weights-only row. */
  weights: string;
  /** The calibration text, when the setup calibrates. */
  calibration?: string;
}

/** Which task suite to run: the committed one (built into the core) or a user's file of the same schema. */
export type TaskSuiteChoice = { kind: 'default' } | { kind: 'file'; json: string; label: string };

/** A row's task checks (`LabModel.runTasks`, as `quantlab eval --tasks`): the base's answers and this model's, scored. */
export interface TaskChecks {
  suite: { label: string; sha256: string; tasks: number; maxNewTokens: number };
  /** The base model's answers (valid share; no agreement). */
  base: SuiteResult;
  /** This model's answers: valid share and agreement with the base's. */
  result: SuiteResult;
}

/** A recipe's row: its name, its formats and how many tensors it lists. */
export interface RecipeRun {
  name: string;
  /** SHA-256 of the recipe file's text (a saved row is reused only for the same file). */
  sha256: string;
  /** The recipe's default format, and the other formats it lists. */
  formats: string[];
  tensors: number;
}

/** What a sensitivity scan quantizes at a time (`quantlab sensitivity --unit`). */
export type ScanUnit = 'tensor' | 'layer';

/** The budget of a recommended recipe: bits per weight, bytes, or the size of a format everywhere. */
export type RecipeBudget = { bitsPerWeight: number } | { budgetBytes: number } | { targetFormat: string };

/** llama.cpp's per-tensor types of a file type (`q4_k_m`), or one type everywhere (`--pure`). */
export type TypeMix = 'llama.cpp' | 'pure';

/** A preset's row label in Compare: its name and that its types are llama.cpp's per-tensor mix. */
export const presetLabel = (name: string) => `${name} (llama.cpp types)`;

/** The method names of the core (`listMethods()`). */
export type MethodName = MethodInfo['name'];

/** What calibration text a method run uses. */
export type CalibSource = { kind: 'default' } | { kind: 'text'; text: string; label: string };

/** A method run's settings, as the manifest records them. */
export interface MethodRun {
  name: MethodName;
  /** The calibration text (absent for rtn). */
  calibration?: { text: string; textSha256: string; tokens: number; /** Tokens the importance matrix ran (whole chunks). */ tokensRun?: number; /** The importance matrix was reused (this page's, or one saved by an earlier page load), not computed for this run. */ reused?: boolean };
  seconds: number;
}

/** What the Methods panel asks the worker to run. */
export interface MethodRequest {
  target: string;
  mix: TypeMix;
  method: MethodName;
  calib: CalibSource;
  tokens: number;
}

/** One weight matrix's error after quantization (model quantReport). */
export interface TensorError {
  name: string;
  to: string;
  mse: number;
  /** dB, or "inf" for a tensor copied unchanged. */
  sqnrDb: number | 'inf' | '-inf' | null;
}

/** Activation magnitudes per input channel of one weight matrix over a calibration text. */
export interface ActivationChannels {
  tensor: string;
  /** Positions run through the model. */
  tokens: number;
  /** What text it was (chapters, disjoint from the eval chapters). */
  text: string;
  outlierK: number;
  colAbsmax: number[];
  colRms: number[];
  outliers: number[];
}

/** One layer input under SmoothQuant and LLM.int8() (`LabModel.smoothingStats` on the calibration text). */
export interface SmoothingChannels {
  tensor: string;
  /** The matrices that read this input. */
  tensors: string[];
  tokens: number;
  text: string;
  alpha: number;
  threshold: number;
  /** max|X_j| per channel before smoothing. */
  absmax: number[];
  /** SmoothQuant's factors s_j. */
  factors: number[];
  /** max|X_j| measured on the smoothed model (max|X_j| / s_j). */
  smoothedAbsmax: number[];
  /** Channels LLM.int8() keeps in float at `threshold` (max|X_j| ≥ threshold). */
  outliers: number[];
}

/** Everything needed to reproduce one comparison row: the quant manifest. */
export interface QuantManifest {
  tool: string;
  coreVersion: string;
  createdAt: string;
  source: { name: string; sha256: string; format: string; bytes: number; bitsPerWeight: number; note: string };
  protocol: EvalProtocol;
  result: FormatResult;
}

export interface GenerateOptions {
  prompt: string;
  seed: number;
  maxTokens: number;
  temperature: number;
  chat: boolean;
  /** Where to decode: `auto` probes CPU vs WebGPU once per model and uses the faster. */
  device?: Device;
  /** How the WebGPU forward stores keys and values (the CPU path always keeps f32). */
  kvCache?: KvCache;
  /** What the WebGPU forward's matmuls compute in (f16 needs the adapter's shader-f16; the CPU path is f32). */
  activations?: Activations;
  /**
   * Test/diagnostic hook: destroy the WebGPU device (`GpuLabModel.destroyDevice`) once the base
   * model has generated this many tokens on it, as a driver reset would.
   */
  loseDeviceAfter?: number;
}

export type Device = 'auto' | 'cpu' | 'webgpu';

/** KV cache formats of the WebGPU forward (`GpuLabModel.upload`'s kvCache). */
export const KV_CACHE_FORMATS = ['f32', 'f16', 'int8'] as const;
export type KvCache = (typeof KV_CACHE_FORMATS)[number];

/**
 * KV cache types of the CPU evaluation (`LabEval.run`'s kvCache, the core's generated type; rules in
 * crate/src/model/kv_cache.rs): every model runs with that cache, measured against the base with an
 * f32 cache. Wider than the WebGPU forward's `KvCache`.
 */
export type EvalKvCache = NonNullable<EvalOpts['kvCache']>;

/** Activation precisions of the WebGPU forward's matmuls (`GpuLabModel.upload`'s activations). */
export const ACTIVATION_PRECISIONS = ['f32', 'f16'] as const;
export type Activations = (typeof ACTIVATION_PRECISIONS)[number];

/** Which backend a generation ran on, and why. */
export interface DeviceChoice {
  requested: Device;
  used: 'cpu' | 'webgpu';
  /** The WebGPU adapter's name, when one was acquired. */
  adapter?: string;
  /** One line for the user: the probe's measurement, the forced choice, or the fallback's cause. */
  reason: string;
  /** Set when WebGPU was wanted but failed (no WebGPU, device lost, limits): the error, and that the CPU was used. */
  fallback?: string;
  /** The KV cache format the generation used: the requested one on WebGPU, always f32 on the CPU. */
  kvCache: KvCache;
  /** The matmul activations the generation used: f16 only on WebGPU with shader-f16, else f32. */
  activations: Activations;
  /** Why requested f16 activations ran as f32 (the adapter has no shader-f16), when they did. */
  activationsNote?: string;
  /** Set when the WebGPU device was lost part-way through a side: the rest of it (and any later side) ran on the CPU. */
  deviceLost?: { side: 'base' | 'quantized'; afterTokens: number };
}

/** One model's generation: the core's result, its label and the streamed pieces. */
export type GenerationSide = GenerateResult & {
  label: string;
  pieces: string[];
  /** When this side ran on WebGPU: the kernels its matrices used (e.g. "Q4_K (dedicated) ×180, Q5_0 → f16 (generic) ×30"). */
  gpuKernels?: string;
};

/** A streamed token (progress detail of `generate`). */
export interface TokenEvent {
  side: 'base' | 'quantized';
  piece: string;
  tokenId: number;
}

/** A step of a comparison run (progress detail of `compareFormats`). */
export interface StepEvent {
  step: number;
  steps: number;
  label: string;
  /** Set when a format finished: its manifest (the page saves it). */
  manifest?: QuantManifest;
  /** The manifest was reused from the page's saved results (same model, format, protocol, core), not measured again. */
  cached?: boolean;
  /** A calibration step: its statistics were computed now, or a saved importance matrix (same model, text, tokens, core) was reused. */
  calibration?: 'computed' | 'saved';
  /** Something the step reports beside its label (a saved matrix that was dropped, and why). */
  note?: string;
  /** WebGPU was asked for but this row (and the rest of the run) evaluated on the CPU: why. */
  deviceNote?: string;
}

/** A status line while `generate` prepares WebGPU (progress detail of `generate`). */
export interface DeviceStatus {
  status: string;
}

/**
 * Requests the page sends, keyed by method: `args`, the `result`, and the `progress` detail the
 * worker may attach to its progress messages for that method (`never`: none).
 */
export interface Methods {
  init: { args: Record<string, never>; result: { coreVersion: string; formats: string; formatList: FormatInfo[]; presetList: PresetInfo[]; methodList: MethodInfo[] } & CoreThreads; progress: never };
  probeGpu: { args: Record<string, never>; result: AdapterReport; progress: never };
  openUrl: { args: { url: string }; result: LoadedModel; progress: never };
  openFile: { args: { file: File }; result: LoadedModel; progress: never };
  histogram: { args: { tensor: string; bins: number }; result: HistogramResult; progress: never };
  analyzeTensors: { args: { format: string; outlierK: number }; result: TensorAnalysis[]; progress: TensorAnalysis };
  tensorView: { args: { tensor: string; format: string; bins: number; scope: Scope; group: number }; result: TensorView; progress: never };
  channelStats: { args: { tensor: string; outlierK: number }; result: ChannelStats; progress: never };
  nf4Placement: { args: { tensor: string; block: number }; result: Nf4Placement; progress: never };
  activationStats: { args: { tensor: string; maxTokens: number; outlierK: number; dataUrl: string }; result: ActivationChannels; progress: never };
  /** A layer input's channel maxima before and after SmoothQuant, and LLM.int8()'s outlier columns (`LabModel.smoothingStats`). */
  smoothingStats: { args: { tensor: string; alpha: number; threshold: number; tokens: number; dataUrl: string }; result: SmoothingChannels; progress: never };
  compareFormats: { args: { formats: string[]; presets?: string[]; ctx: number; maxWindows: number | null; dataUrl: string; saved: QuantManifest[]; kvCache?: EvalKvCache; /** Also run this task suite on the base and each row. */ tasks?: TaskSuiteChoice | null; /** Where to evaluate (default cpu); WebGPU failing falls back to the CPU with a step `note`. */ device?: EvalDevice; /** Diagnostic (tests/e2e/compare-gpu.test.mjs): lose the WebGPU device after this many evaluated positions of a row (0: before its first). */ loseDeviceAfter?: number; /** Also a row per format with its activations quantized so (on the CPU). */ activations?: ActivationSetup | null }; result: QuantManifest[]; progress: StepEvent };
  /** The type each weight matrix gets under a target, before quantizing. */
  plannedTypes: { args: { target: string; mix: TypeMix }; result: PlannedType[]; progress: never };
  /** Whether each method can choose the codes of `target` (from the core's method list). */
  methodSupport: { args: { target: string }; result: Record<MethodName, boolean>; progress: never };
  /** Calibrate (cached), quantize with a method and evaluate against the base: a Compare row. */
  runMethod: { args: MethodRequest & { ctx: number; maxWindows: number | null; dataUrl: string; saved: QuantManifest[] }; result: QuantManifest; progress: StepEvent };
  /** Each block matrix's relative output error RTN vs GPTQ vs AWQ on the calibration text (`quantlab layer-error`). */
  layerErrors: { args: { target: string; calib: CalibSource; tokens: number; tensors: string[] | null; methods: LayerErrorMethod[] | null; actOrder: boolean; dataUrl: string }; result: LayerErrorResult & { text: string; seconds: number }; progress: never };
  generate: { args: GenerateOptions & { format: string }; result: { base: GenerationSide; quantized: GenerationSide; device: DeviceChoice }; progress: TokenEvent | DeviceStatus };
  /** Quantize (round-to-nearest) without evaluating: what each matrix became. A format's model is kept for `generate` with it. */
  quantize: { args: { target: string; mix: TypeMix }; result: QuantizeResult; progress: never };
  exportModel: { args: { format: string }; result: ExportFile; progress: never };
  /** The model's linears in an INT group format, their codes chosen by `method` (default rtn; gptq and awq calibrate on `calib`), as the Hugging Face checkpoint `quantlab quantize --layout gptq|awq --method M` writes (model.safetensors + config.json). */
  exportHfLayout: { args: { format: string; layout: HfLayout; method?: MethodName; calib?: CalibSource; tokens?: number; dataUrl?: string }; result: HfExport; progress: StepEvent };
  /** The model quantized with a method (imatrix, GPTQ, AWQ, HQQ) as a file, as `quantlab quantize --imatrix / --method M` writes it. */
  exportMethod: { args: MethodRequest & { dataUrl: string }; result: ExportFile; progress: StepEvent };
  /** The sensitivity scan (`quantlab sensitivity`): each unit alone at `format` (or each of several, comma-separated, as `-f`), KL to the base on calibration text; the worker keeps the scan for `recommendRecipe`. */
  sensitivity: { args: { format: string; unit: ScanUnit; tokens: number; units: string[] | null; calib: CalibSource; dataUrl: string }; result: ScanReport; progress: never };
  /** The recipe `quantlab sensitivity --high --target-…` recommends for the last scan. */
  recommendRecipe: { args: { highFormat: string; budget: RecipeBudget }; result: RecipeAdvice; progress: never };
  /** Quantize by a recipe file (`quantlab eval --recipe`) and evaluate it against the base: a Compare row. */
  evaluateRecipe: { args: { recipeJson: string; ctx: number; maxWindows: number | null; dataUrl: string; saved: QuantManifest[] }; result: QuantManifest; progress: StepEvent };
  /** Diagnostic (tests/e2e/soak.test.mjs): the worker's memory after a garbage collection where the browser allows one. */
  memory: { args: Record<string, never>; result: WorkerMemory; progress: never };
  /** Diagnostic (tests/e2e/threads.test.mjs): the core's threads and the tasks each has run. */
  threadStats: { args: Record<string, never>; result: ThreadStats; progress: never };
}

/** The core's quantize report of a target, with the name the lab gives it (a preset says it has llama.cpp's types). */
export type QuantizeResult = QuantReport & { label: string; mix: TypeMix };

/** What an exported file is: the source it was made from and how (kept beside the file). */
/** The Hugging Face checkpoint layouts transformers' GPTQ and AWQ loaders read. */
export type HfLayout = 'gptq' | 'awq';

/** A Hugging Face checkpoint directory's two files and what they hold. */
export interface HfExport {
  safetensors: Blob;
  config: string;
  /** Linear layers quantized, tensors kept in float. */
  quantized: number;
  kept: number;
  manifest: ExportManifest;
}

/** An exported model file and what it is. */
export interface ExportFile {
  blob: Blob;
  extension: string;
  summary: string;
  fileName: string;
  manifest: ExportManifest;
}

export interface ExportManifest {
  tool: string;
  coreVersion: string;
  createdAt: string;
  source: { name: string; sha256: string; bytes: number };
  format: string;
  fileName: string;
  /** `gguf` for ggml types, else `safetensors`. */
  extension: string;
  /** The core's summary of the export (types, sizes). */
  summary: string;
  /** How the codes were chosen, when not round to nearest: the method and its calibration. */
  method?: MethodRun;
  /** A Hugging Face checkpoint layout (the file is the directory's model.safetensors). */
  layout?: HfLayout;
}

/** What the worker holds: the wasm core's linear memory (it grows, never shrinks). */
export interface WorkerMemory {
  /** `memory.buffer.byteLength` of the wasm core. */
  wasmBytes: number;
  /** Whether a garbage collection ran first (`gc` is exposed only with `--js-flags=--expose-gc`). */
  collected: boolean;
}
export type Method = keyof Methods;
/** The progress detail of method `M`. */
export type Progress<M extends Method> = Methods[M]['progress'];

export interface Request<M extends Method = Method> {
  id: number;
  method: M;
  args: Methods[M]['args'];
  /** Int32Array view target: the page sets element 0 to 1 to cancel (when SharedArrayBuffer exists). */
  cancelFlag?: SharedArrayBuffer;
}

/** How many compute threads the page wants; null: as many as the browser offers (capped). */
export interface CoreStart {
  threads: number | null;
  /** Where the single-thread core's .wasm is (absolute URL); by default next to its glue module. */
  wasmUrl?: string;
  /** Where the threaded core's .wasm is (absolute URL); by default next to its glue module. */
  threadsWasmUrl?: string;
}

/** The first page → worker message, before any request: how to start the wasm core. */
export interface StartMessage {
  start: CoreStart;
}

/** The compute threads the core runs on, and why only one where that is so. */
export interface CoreThreads {
  threads: number;
  /** Set when the single-thread build runs: why (shown in the lab's status line). */
  note: string | null;
}

/** A page → worker control message: stop request `id` at its next progress check. */
export interface CancelMessage {
  cancel: number;
}

export type Phase =
  | 'download'
  | 'read'
  | 'parse'
  | 'decode'
  | 'cache'
  | 'analyze'
  | 'calibrate'
  | 'quantize'
  | 'evaluate'
  | 'generate'
  | 'export';

export type WorkerMessage =
  | { kind: 'progress'; id: number; phase: Phase; loaded: number; total: number; detail?: Progress<Method> }
  | { kind: 'result'; id: number; value: unknown }
  | { kind: 'error'; id: number; error: WireError };
