// `lab.generate` as an async iterator: the worker streams each generated token as a progress
// detail of its `generate` call; this queues them for `for await`. Leaving the loop early
// (`break`, `return`, a throw) cancels the generation.
import type { CallHandle } from '../client';
import type { DeviceStatus, Methods, TokenEvent } from '../messages';

export type GenerateOutcome = Methods['generate']['result'];

/** Starts the call; `push` receives every token, `status` every device note. */
export type StartGeneration = (push: (token: TokenEvent) => void, status: (note: DeviceStatus) => void) => CallHandle<GenerateOutcome>;

/**
 * The tokens of a side-by-side generation (the base model's, then the quantized model's; `side`
 * says which), and the whole `result` (both sides, timings, the device used) once it ends.
 */
export class TokenStream implements AsyncIterableIterator<TokenEvent> {
  /** Both sides' results and the device choice; rejects as the iteration does. */
  readonly result: Promise<GenerateOutcome>;
  private queue: TokenEvent[] = [];
  private wake: (() => void) | null = null;
  private finished = false;
  private failure: { error: unknown } | null = null;
  private handle: CallHandle<GenerateOutcome>;

  constructor(start: StartGeneration, onStatus: (note: DeviceStatus) => void = () => {}) {
    this.handle = start((token) => {
      this.queue.push(token);
      this.signal();
    }, onStatus);
    this.result = this.handle.result;
    this.result.then(
      () => this.end(null),
      (error: unknown) => this.end({ error }),
    );
  }

  private end(failure: { error: unknown } | null): void {
    this.finished = true;
    this.failure = failure;
    this.signal();
  }

  private signal(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  async next(): Promise<IteratorResult<TokenEvent>> {
    for (;;) {
      const token = this.queue.shift();
      if (token) return { value: token, done: false };
      if (this.failure) throw this.failure.error;
      if (this.finished) return { value: undefined, done: true };
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  /** Called when a `for await` loop is left early: stops the generation. */
  async return(): Promise<IteratorResult<TokenEvent>> {
    if (!this.finished) {
      this.handle.cancel();
      // The cancellation's rejection belongs to this early exit, not to an unread `result`.
      this.result.catch(() => {});
    }
    this.queue = [];
    this.finished = true;
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
