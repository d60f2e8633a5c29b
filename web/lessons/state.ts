// What the lesson pages share: the model they open and how they keep their state in the URL, so a
// teacher's link opens the same view (the PWA's precache ignores these parameters: LESSON_STATE in
// web/vite.config.ts).

/** The lab's default model, relative to a lesson page (the PWA caches it under the same URL). */
export const MODEL = '../models/SmolLM2-135M-Instruct.Q4_1.gguf';

/** The eval text (Moby-Dick chapters 1–3), relative to a lesson page. */
export const DATA_URL = '../data/moby-dick/';

/**
 * The evaluation protocols the lessons offer (`ctx`×`windows`, the `protocol` parameter); the first,
 * 63 scored tokens, keeps a page to seconds. The lab's Compare uses at least 2,048.
 */
export const PROTOCOLS: Record<string, { ctx: number; windows: number; label: string }> = {
  '64x1': { ctx: 64, windows: 1, label: '63 (one window of 64: quick)' },
  '128x1': { ctx: 128, windows: 1, label: '127 (one window of 128)' },
  '512x4': { ctx: 512, windows: 4, label: '2,044 (four windows of 512: minutes)' },
};

/** Fills `select` with the protocols and picks the one a shared link names (`?protocol=…`). */
export function protocolChoice(select: HTMLSelectElement, asked: string | null): void {
  for (const [value, p] of Object.entries(PROTOCOLS)) select.append(new Option(p.label, value));
  if (asked && asked in PROTOCOLS) select.value = asked;
}

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

/**
 * One checkbox per offered value (plus any chosen value the list lacks, from a shared link) in
 * `host`, checked as `chosen` says; a change updates `chosen` and calls `changed`.
 */
export function choiceBoxes(host: HTMLElement, offered: readonly string[], chosen: Set<string>, changed: () => void): void {
  for (const value of [...offered, ...[...chosen].filter((v) => !offered.includes(v))]) {
    const box = Object.assign(document.createElement('input'), { type: 'checkbox', value, checked: chosen.has(value) });
    const label = document.createElement('label');
    label.append(box, ` ${value}`);
    host.append(label);
    box.addEventListener('change', () => {
      if (box.checked) chosen.add(value);
      else chosen.delete(value);
      changed();
    });
  }
}

/** `chosen` in the order of `offered`, then the values a shared link added. */
export function inOrder(offered: readonly string[], chosen: Set<string>): string[] {
  return offered.filter((v) => chosen.has(v)).concat([...chosen].filter((v) => !offered.includes(v)));
}
