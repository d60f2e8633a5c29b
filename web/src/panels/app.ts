// What the panels share: the worker client, the open model, the selection and error display.
import type { Lab } from '../api/lab';
import type { LabClient } from '../client';
import type { LabError } from '../errors';
import type { LoadedModel } from '../messages';
import { $ } from '../ui/dom';

export interface App {
  /** The lab, made through the package API (createLab). */
  readonly lab: Lab;
  /** Its worker client, for the worker methods the package API does not wrap. */
  readonly client: LabClient;
  model: LoadedModel | null;
  tensor: string | null;
  format: string;
  /** Increments on every model load, so late answers about an old model are dropped. */
  generation: number;
}

export function showError(error: unknown): void {
  const box = $('#error');
  const e = error as LabError;
  box.textContent = e?.message ?? String(error);
  box.dataset.kind = e?.name ?? 'Error';
  box.hidden = false;
}

export function clearError(): void {
  $('#error').hidden = true;
}

/** Shows a panel-local error (or clears it with null). */
export function panelError(host: HTMLElement, error: unknown | null): void {
  let box = host.querySelector<HTMLElement>(':scope > .error');
  if (error === null) {
    if (box) box.hidden = true;
    return;
  }
  if (!box) {
    box = document.createElement('div');
    box.className = 'error';
    box.setAttribute('role', 'alert');
    host.append(box);
  }
  const e = error as LabError;
  box.textContent = e?.message ?? String(error);
  box.dataset.kind = e?.name ?? 'Error';
  box.hidden = false;
}
