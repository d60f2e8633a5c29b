// One progress bar with a label and a Cancel button, for any long worker step.
import type { CallHandle } from '../client';
import { CancelledError, kindOf } from '../errors';
import { formatBytes, formatCount } from '../format';
import type { Phase } from '../messages';
import { el } from './dom';

export const phaseLabel: Record<Phase, string> = {
  download: 'Downloading',
  read: 'Reading',
  parse: 'Parsing header',
  decode: 'Decoding',
  cache: 'Storing for offline use',
  analyze: 'Analysing',
  calibrate: 'Calibrating',
  quantize: 'Quantizing',
  evaluate: 'Evaluating',
  generate: 'Generating',
  export: 'Exporting',
};

const byteDrivenPhases: Phase[] = ['download', 'read', 'parse', 'cache'];

export function describeProgress(phase: Phase, loaded: number, total: number): string {
  if (byteDrivenPhases.includes(phase)) return `${phaseLabel[phase]} ${formatBytes(loaded)}${total ? ` of ${formatBytes(total)}` : ''}`;
  if (total === 0) return `${phaseLabel[phase]}…`;
  if (phase === 'decode') return `${phaseLabel[phase]} ${formatCount(total)} values`;
  return `${phaseLabel[phase]} ${formatCount(loaded)} of ${formatCount(total)}`;
}

/** A progress widget inside `host`; hidden while idle. */
export class ProgressView {
  readonly root: HTMLElement;
  private label: HTMLElement;
  private bar: HTMLProgressElement;
  private cancelButton: HTMLButtonElement;
  private current: (() => void) | null = null;

  constructor(host: HTMLElement, id: string) {
    this.bar = el('progress', undefined, { id: `${id}-bar`, max: '1' });
    this.label = el('label', '', { for: `${id}-bar`, id: `${id}-label` });
    this.cancelButton = el('button', 'Cancel', { type: 'button', id: `${id}-cancel`, class: 'secondary' });
    this.cancelButton.addEventListener('click', () => this.current?.());
    this.root = el('div', undefined, { class: 'progress', id, role: 'status', 'aria-live': 'polite' });
    const row = el('div', undefined, { class: 'progress-row' });
    row.append(this.bar, this.cancelButton);
    this.root.append(this.label, row);
    this.root.hidden = true;
    host.append(this.root);
  }

  update(text: string, fraction: number | null): void {
    this.label.textContent = text;
    if (fraction === null) this.bar.removeAttribute('value');
    else this.bar.value = Math.min(1, Math.max(0, fraction));
  }

  /** Shows progress for `handle` until it settles; returns its result (throws its error). */
  async track<T>(title: string, handle: CallHandle<T>, cancellable = true): Promise<T> {
    this.root.hidden = false;
    this.cancelButton.hidden = !cancellable;
    this.current = () => {
      this.update(`${title}: cancelling…`, null);
      handle.cancel();
    };
    this.update(`${title}…`, null);
    try {
      return await handle.result;
    } finally {
      this.current = null;
      this.root.hidden = true;
    }
  }

  /** The progress callback to pass with the call. */
  listener(title: string) {
    return (phase: Phase, loaded: number, total: number) =>
      this.update(`${title}: ${describeProgress(phase, loaded, total)}`, total > 0 ? loaded / total : null);
  }
}

/** A cancelled step: the page's own cancel, or a core call whose progress callback said stop. */
export function isCancel(error: unknown): boolean {
  return error instanceof CancelledError || kindOf(error)?.kind === 'cancelled';
}
