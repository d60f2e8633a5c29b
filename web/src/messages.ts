// The typed protocol between the page and the lab worker. Every request carries an id; the
// worker answers with exactly one `result` or `error` for that id, and may send `progress`
// messages for it before that.

/** One tensor row of a GGUF header, as returned by the wasm core. */
export interface TensorRow {
  name: string;
  /** ggml order: dims[0] is the row length (contiguous values). */
  dims: number[];
  type: string;
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

export interface GgufHeader {
  status: 'ok';
  version: number;
  alignment: number;
  dataOffset: number;
  fileLen: number;
  summary: ModelSummary;
  metadata: Record<string, unknown>;
  tensors: TensorRow[];
}

export interface LoadedModel {
  source: string;
  header: GgufHeader;
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

/** Requests the page sends, keyed by method; `R` is the result type. */
export interface Methods {
  init: { args: Record<string, never>; result: { coreVersion: string } };
  probeGpu: { args: Record<string, never>; result: AdapterReport };
  openUrl: { args: { url: string }; result: LoadedModel };
  openFile: { args: { file: File }; result: LoadedModel };
  histogram: { args: { tensor: string; bins: number }; result: HistogramResult };
}
export type Method = keyof Methods;

export interface Request<M extends Method = Method> {
  id: number;
  method: M;
  args: Methods[M]['args'];
}

export type Phase = 'download' | 'read' | 'parse' | 'decode';

export type WorkerMessage =
  | { kind: 'progress'; id: number; phase: Phase; loaded: number; total: number }
  | { kind: 'result'; id: number; value: unknown }
  | { kind: 'error'; id: number; error: { name: string; message: string } };
