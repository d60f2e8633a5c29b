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
