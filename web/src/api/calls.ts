// How the package's long calls take an AbortSignal and a progress callback: a signal's abort
// becomes the worker call's cancel (a shared flag the core polls, or a worker restart for a step
// that cannot see it), and the call then rejects with the worker's CancelledError.
import type { CallHandle, LabClient, ProgressFn } from '../client';
import { CancelledError } from '../errors';
import type { Method, Methods, Progress } from '../messages';

/** What every long call of the package API accepts. `D` is the progress detail of the call. */
export interface CallOptions<D = never> {
  /** Aborting it cancels the call, which then rejects with a CancelledError. */
  signal?: AbortSignal;
  /** Called as the worker reports the phase of the call and how far it is. */
  onProgress?: ProgressFn<D>;
}

/** `client`'s call of `method`, cancelled when `options.signal` aborts. */
export function runCall<M extends Method>(client: LabClient, method: M, args: Methods[M]['args'], options: CallOptions<Progress<M>> = {}): Promise<Methods[M]['result']> {
  const { signal, onProgress } = options;
  if (signal?.aborted) return Promise.reject(new CancelledError(`cancelled before it started: ${method}`));
  const handle = client.startCall(method, args, onProgress);
  if (!signal) return handle.result;
  const abort = () => handle.cancel();
  signal.addEventListener('abort', abort, { once: true });
  return handle.result.finally(() => signal.removeEventListener('abort', abort));
}

/**
 * A cancel handle over a call that takes a signal: what the lab's progress views hold (their
 * Cancel button aborts the signal).
 */
export function abortable<T>(start: (signal: AbortSignal) => Promise<T>): CallHandle<T> {
  const controller = new AbortController();
  return { result: start(controller.signal), cancel: () => controller.abort() };
}
