// What the lesson pages share: the model they open and how they keep their state in the URL, so a
// teacher's link opens the same view (the PWA's precache ignores these parameters: LESSON_STATE in
// web/vite.config.ts).

/** The lab's default model, relative to a lesson page (the PWA caches it under the same URL). */
export const MODEL = '../models/SmolLM2-135M-Instruct.Q4_1.gguf';

/** Selects `value` in `select`, adding it when a shared link names an option the list lacks. */
export function pickOption(select: HTMLSelectElement, value: string | null): void {
  if (!value) return;
  if (![...select.options].some((o) => o.value === value)) select.append(new Option(value, value));
  select.value = value;
}

/** Writes the lesson's state into the address bar without a navigation. */
export function keepInUrl(state: Record<string, string>): void {
  const url = new URL(location.href);
  for (const [k, v] of Object.entries(state)) url.searchParams.set(k, v);
  history.replaceState(null, '', url);
}

/** A table cell with `text`; a `th` is a row header. */
export function cell(text: string, tag: 'td' | 'th' = 'td'): HTMLElement {
  const c = document.createElement(tag);
  if (tag === 'th') c.setAttribute('scope', 'row');
  c.textContent = text;
  return c;
}

/** Shows a failed step in its status line as `ErrorName: message`, marked `data-error` for tests. */
export function showError(status: HTMLElement, error: unknown): void {
  const e = error instanceof Error ? error : new Error(String(error));
  status.dataset.error = 'true';
  status.textContent = `${e.name}: ${e.message}`;
}
