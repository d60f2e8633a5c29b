// Error classes the lab surfaces to users. The worker sends {name, message}; `fromWire`
// restores the subclass so the page can react to the kind of failure.

export class LabError extends Error {
  override name = 'LabError';
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

export function toWire(error: unknown): { name: string; message: string } {
  if (error instanceof LabError) return { name: error.name, message: error.message };
  if (error instanceof Error) return { name: 'LabError', message: error.message };
  return { name: 'LabError', message: String(error) };
}

export function fromWire(wire: { name: string; message: string }): LabError {
  const Class = (classes as Record<string, typeof LabError>)[wire.name] ?? LabError;
  return new Class(wire.message);
}
