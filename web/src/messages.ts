// The typed protocol between the page and the lab worker. Every request carries an id; the
// worker answers with exactly one `result` or `error` for that id, and may send `progress`
// messages for it before that.

/** One tensor row of a GGUF header, as returned by the wasm core. */
export interface TensorRow {
  name: string;
  /** ggml order: dims[0] is the row length (contiguous values). */
  dims: number[];
  type: string;
  /** ggml type id; -1 for a safetensors dtype the lab cannot decode as weights (U8 codes, I64, F8…). */
  typeId: number;
  nElements: number;
  nBytes: number;
  /** Absolute byte offset of the tensor data in the file. */
  offset: number;
  bitsPerWeight: number;
}

export interface TypeStats {
  type: string;
  tensors: number;
  elements: number;
  bytes: number;
}

export interface ModelSummary {
  architecture: string | null;
  name: string | null;
  file_type: string | null;
  context_length: number | null;
  embedding_length: number | null;
  block_count: number | null;
  feed_forward_length: number | null;
  head_count: number | null;
  head_count_kv: number | null;
  vocab_size: number | null;
  tokenizer_model: string | null;
  parameter_count: number;
  tensor_bytes: number;
  tensor_count: number;
  bits_per_weight: number;
  types: TypeStats[];
}

/** The header of an opened model file: a GGUF, or a safetensors file in the same shape. */
export interface GgufHeader {
  status: 'ok';
  /** Absent for GGUF (the parser predates safetensors support). */
  container?: 'gguf' | 'safetensors';
  version: number;
  alignment: number;
  dataOffset: number;
  fileLen: number;
  summary: ModelSummary;
  metadata: Record<string, unknown>;
  tensors: TensorRow[];
}

/** Whether the model is kept in Cache Storage for offline use. */
export interface OfflineState {
  state: 'cached' | 'stored' | 'no-quota' | 'unavailable' | 'not-kept';
  message: string;
}

export interface LoadedModel {
  source: string;
  header: GgufHeader;
  /** Set for models opened from a URL. */
  offline?: OfflineState;
}

export interface HistogramResult {
  tensor: string;
  lo: number;
  hi: number;
  counts: number[];
  total: number;
  outside: number;
  non_finite: number;
  min: number | null;
  max: number | null;
}

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

/** The error of one format on one tensor (wasm `quantizeTensor` metrics). */
export interface ErrorMetrics {
  n: number;
  mse: number;
  rmse: number;
  max_abs_error: number;
  /** dB, or "inf"/"-inf" (JSON has no infinity). */
  sqnr_db: number | 'inf' | '-inf' | null;
  cosine: number;
  signal_power: number;
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

export interface ChannelStats {
  tensor: string;
  rows: number;
  cols: number;
  absmax: number;
  rms: number;
  excess_kurtosis: number | null;
  row_absmax: number[];
  row_rms: number[];
  col_absmax: number[];
  col_rms: number[];
  outlier_k: number;
  outlier_rows: number[];
  outlier_cols: number[];
}

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
}

/** One format's measured result (the base is a row too, with format "base"). */
export interface FormatResult {
  format: string;
  /** The scheme's canonical name and typed description (from parseScheme). */
  scheme: unknown;
  bitsPerWeight: number;
  bytes: number;
  ppl: number;
  pplStderr: number;
  meanNll: number;
  klMean?: number;
  klMax?: number;
  top1Agreement?: number;
  tokensPerSec?: number;
  basePpl: number;
  /** Matrices the tensor policy stored in another type (e.g. K-quants on 576-wide rows). */
  fallbacks: number;
  quantizeSummary: string;
  /** Per weight matrix: what it became and its error (from the core's quantize report). */
  tensorErrors?: TensorError[];
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
}

export type Device = 'auto' | 'cpu' | 'webgpu';

/** KV cache formats of the WebGPU forward (`GpuLabModel.upload`'s kvCache). */
export const KV_CACHE_FORMATS = ['f32', 'f16', 'int8'] as const;
export type KvCache = (typeof KV_CACHE_FORMATS)[number];

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
}

export interface GenerationSide {
  label: string;
  text: string;
  pieces: string[];
  tokenIds: number[];
  stopReason: string;
  promptTokens: number;
  prefillTokensPerSec: number;
  decodeTokensPerSec: number;
  /** When this side ran on WebGPU: the kernels its matrices used (e.g. "Q4_K (dedicated) ×180, Q5_0 → f16 (generic) ×30"). */
  gpuKernels?: string;
}

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
}

/** Requests the page sends, keyed by method; `R` is the result type. */
// TODO(boundary): generated — the fields of formats::registry::FormatInfo the page reads
// (listFormats(); crate/src/formats/registry.rs has the rest: family, gpu, gguf, rowFallbacks).
/** One format family from the core's registry, with the names the lab suggests for it. */
export interface FormatInfo {
  pattern: string;
  example: string;
  description: string;
  support: 'quantize' | 'decodeOnly';
  bitsPerWeight: number | null;
  suggestions: { name: string; canonical: string; bitsPerWeight: number; compare: 'notOffered' | 'offered' | 'defaultPick' }[];
}

export interface Methods {
  init: { args: Record<string, never>; result: { coreVersion: string; formats: string; formatList: FormatInfo[] } };
  probeGpu: { args: Record<string, never>; result: AdapterReport };
  openUrl: { args: { url: string }; result: LoadedModel };
  openFile: { args: { file: File }; result: LoadedModel };
  histogram: { args: { tensor: string; bins: number }; result: HistogramResult };
  analyzeTensors: { args: { format: string; outlierK: number }; result: TensorAnalysis[] };
  tensorView: { args: { tensor: string; format: string; bins: number; scope: Scope; group: number }; result: TensorView };
  channelStats: { args: { tensor: string; outlierK: number }; result: ChannelStats };
  nf4Placement: { args: { tensor: string; block: number }; result: Nf4Placement };
  activationStats: { args: { tensor: string; maxTokens: number; outlierK: number; dataUrl: string }; result: ActivationChannels };
  compareFormats: { args: { formats: string[]; ctx: number; maxWindows: number | null; dataUrl: string }; result: QuantManifest[] };
  generate: { args: GenerateOptions & { format: string }; result: { base: GenerationSide; quantized: GenerationSide; device: DeviceChoice } };
  exportModel: { args: { format: string }; result: { blob: Blob; extension: string; summary: string; fileName: string } };
}
export type Method = keyof Methods;

export interface Request<M extends Method = Method> {
  id: number;
  method: M;
  args: Methods[M]['args'];
  /** Int32Array view target: the page sets element 0 to 1 to cancel (when SharedArrayBuffer exists). */
  cancelFlag?: SharedArrayBuffer;
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
  | 'quantize'
  | 'evaluate'
  | 'generate'
  | 'export';

export type WorkerMessage =
  | { kind: 'progress'; id: number; phase: Phase; loaded: number; total: number; detail?: unknown }
  | { kind: 'result'; id: number; value: unknown }
  | { kind: 'error'; id: number; error: { name: string; message: string } };
