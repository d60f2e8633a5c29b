// The page's handle on the lab worker: typed calls that return promises, with progress callbacks.
import { fromWire, WorkerCrashError } from './errors';
import type { Method, Methods, Phase, Request, WorkerMessage } from './messages';

export type ProgressFn = (phase: Phase, loaded: number, total: number) => void;

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  onProgress?: ProgressFn;
}

export class LabClient {
  private nextId = 1;
  private pending = new Map<number, Pending>();

  constructor(private worker: Worker) {
    worker.addEventListener('message', (event: MessageEvent<WorkerMessage>) => this.receive(event.data));
    worker.addEventListener('error', (event) => {
      const error = new WorkerCrashError(`The lab worker failed: ${event.message || 'unknown error'}`);
      for (const p of this.pending.values()) p.reject(error);
      this.pending.clear();
    });
  }

  call<M extends Method>(method: M, args: Methods[M]['args'], onProgress?: ProgressFn): Promise<Methods[M]['result']> {
    const id = this.nextId++;
    const request: Request<M> = { id, method, args };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onProgress });
      this.worker.postMessage(request);
    });
  }

  private receive(message: WorkerMessage): void {
    const pending = this.pending.get(message.id);
    if (!pending) return;
    if (message.kind === 'progress') {
      pending.onProgress?.(message.phase, message.loaded, message.total);
      return;
    }
    this.pending.delete(message.id);
    if (message.kind === 'result') pending.resolve(message.value);
    else pending.reject(fromWire(message.error));
  }
}
