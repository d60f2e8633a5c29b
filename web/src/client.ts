// The page's handle on the lab worker: typed calls that return promises, with progress callbacks
// and cancellation.
//
// Cancelling sets a flag the worker polls: a SharedArrayBuffer when the page is cross-origin
// isolated (scripts/static.mjs sends COOP/COEP), so even a long synchronous wasm call sees it at
// its next progress callback; otherwise a `{cancel: id}` message that the worker's async loops
// see between steps. A call that has not stopped `hardCancelMs` after a cancel (a synchronous
// wasm call without the shared flag) is ended by restarting the worker; `onRestart` lets the
// page re-open its model in the fresh worker.
import { CancelledError, fromWire, WorkerCrashError } from './errors';
import type { CancelMessage, Method, Methods, Phase, Progress, Request, WorkerMessage } from './messages';

/** A progress callback; `D` is the detail type of the method called. */
export type ProgressFn<D = never> = (phase: Phase, loaded: number, total: number, detail?: D) => void;

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  onProgress?: ProgressFn<Progress<Method>>;
  flag?: Int32Array;
}

/** A running call: await `result`; `cancel()` asks the worker to stop it. */
export interface CallHandle<T> {
  result: Promise<T>;
  cancel(): void;
}

export class LabClient {
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private worker!: Worker;
  /** Called after the worker was restarted to end a call that ignored a cancel. */
  onRestart: () => void = () => {};

  constructor(private makeWorker: () => Worker, private hardCancelMs = 2500) {
    this.start();
  }

  private start(): void {
    this.worker = this.makeWorker();
    this.worker.addEventListener('message', (event: MessageEvent<WorkerMessage>) => this.receive(event.data));
    this.worker.addEventListener('error', (event) => {
      this.failAll(new WorkerCrashError(`The lab worker failed: ${event.message || 'unknown error'}`));
    });
  }

  /** Stops the worker for good; calls still running fail with a CancelledError. */
  terminate(): void {
    this.worker.terminate();
    this.failAll(new CancelledError('cancelled: the lab was closed'));
  }

  private failAll(error: Error): void {
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
  }

  call<M extends Method>(method: M, args: Methods[M]['args'], onProgress?: ProgressFn<Progress<M>>): Promise<Methods[M]['result']> {
    return this.startCall(method, args, onProgress).result;
  }

  /** Like `call`, with a cancel handle. */
  startCall<M extends Method>(method: M, args: Methods[M]['args'], onProgress?: ProgressFn<Progress<M>>): CallHandle<Methods[M]['result']> {
    const id = this.nextId++;
    const shared = typeof SharedArrayBuffer === 'function' && globalThis.crossOriginIsolated ? new SharedArrayBuffer(4) : undefined;
    const request: Request<M> = { id, method, args, cancelFlag: shared };
    const result = new Promise<Methods[M]['result']>((resolve, reject) => {
      // The worker sends call `id` only the progress details of its method `M`.
      const progress = onProgress as ProgressFn<Progress<Method>> | undefined;
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onProgress: progress, flag: shared && new Int32Array(shared) });
      this.worker.postMessage(request);
    });
    return { result, cancel: () => this.cancel(id) };
  }

  private cancel(id: number): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    if (pending.flag) Atomics.store(pending.flag, 0, 1);
    this.worker.postMessage({ cancel: id } satisfies CancelMessage);
    setTimeout(() => {
      if (!this.pending.has(id)) return;
      // The worker is stuck in a call that cannot see the cancel: replace it.
      this.worker.terminate();
      this.failAll(new CancelledError('cancelled (the lab worker was restarted to stop the step)'));
      this.start();
      this.onRestart();
    }, this.hardCancelMs);
  }

  private receive(message: WorkerMessage): void {
    const pending = this.pending.get(message.id);
    if (!pending) return;
    if (message.kind === 'progress') {
      pending.onProgress?.(message.phase, message.loaded, message.total, message.detail);
      return;
    }
    this.pending.delete(message.id);
    if (message.kind === 'result') pending.resolve(message.value);
    else pending.reject(fromWire(message.error));
  }
}
