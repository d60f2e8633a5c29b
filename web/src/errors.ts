// Error classes the lab surfaces to users. The worker sends {name, message, kind}; `fromWire`
// restores the subclass so the page can react to the kind of failure. `kind` is the wasm core's
// ErrorKind (generated from the Rust enum) when the failure came from the core: code branches on
// it, never on the message, which is for people.
import type { ErrorKind, LabWasmError } from './pkg/quantlab.js';

export type { ErrorKind };

export class LabError extends Error {
  override name = 'LabError';
  constructor(
    message: string,
    /** What failed, when the wasm core said (cancelled, missingFeature, limitExceeded…). */
    readonly kind?: ErrorKind,
  ) {
    super(message);
  }
}

/** The file is not a GGUF, is truncated, or is internally inconsistent. */
export class ModelFormatError extends LabError {
  override name = 'ModelFormatError';
}

/** Fetching the model failed (HTTP error, network down). */
export class DownloadError extends LabError {
  override name = 'DownloadError';
}

/** WebGPU missing, adapter refused, device lost. The CPU path keeps working. */
export class GpuUnavailableError extends LabError {
  override name = 'GpuUnavailableError';
}

/** The worker or wasm module itself failed (a bug, or the browser lacks WebAssembly). */
export class WorkerCrashError extends LabError {
  override name = 'WorkerCrashError';
}

/** The user pressed Cancel; the step stopped and nothing was kept from it. */
export class CancelledError extends LabError {
  override name = 'CancelledError';
}

/** The chosen format cannot be applied (unknown name, or a tensor shape it cannot split). */
export class FormatChoiceError extends LabError {
  override name = 'FormatChoiceError';
}

/** Quantizing, evaluating or generating with the runtime failed. */
export class RuntimeError extends LabError {
  override name = 'RuntimeError';
}

/** The browser would not give the lab enough storage to keep the model for offline use. */
export class StorageQuotaError extends LabError {
  override name = 'StorageQuotaError';
}

const classes = {
  LabError,
  ModelFormatError,
  DownloadError,
  GpuUnavailableError,
  WorkerCrashError,
  CancelledError,
  FormatChoiceError,
  RuntimeError,
  StorageQuotaError,
};

/** An error as the worker posts it to the page. */
export interface WireError {
  name: string;
  message: string;
  kind?: ErrorKind;
}

/** Whether `error` is what a wasm binding throws: an Error carrying the core's ErrorKind. */
function isWasmError(error: unknown): error is LabWasmError {
  return error instanceof Error && 'kind' in error && typeof error.kind === 'string';
}

/** The wasm core's kind of `error`: a LabError's, or a binding's thrown Error (which is one). */
export function kindOf(error: unknown): ErrorKind | undefined {
  if (error instanceof LabError) return error.kind;
  return isWasmError(error) ? error : undefined;
}

export function toWire(error: unknown): WireError {
  const found = kindOf(error);
  // The binding set the kind's fields on its Error as own enumerable properties (message and
  // stack are not enumerable), and postMessage drops an Error's own fields: spreading copies
  // exactly the kind into a plain object.
  const kind = found && { ...found };
  if (error instanceof LabError) return { name: error.name, message: error.message, kind };
  if (error instanceof Error) return { name: 'LabError', message: error.message, kind };
  return { name: 'LabError', message: String(error) };
}

export function fromWire(wire: WireError): LabError {
  const Class = (classes as Record<string, typeof LabError>)[wire.name] ?? LabError;
  return new Class(wire.message, wire.kind);
}
