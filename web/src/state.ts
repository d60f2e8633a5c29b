// The shareable view: everything a teacher needs to send a link to "this tensor, this format,
// this panel" lives in the URL's query string (replaceState, so Back still leaves the lab).

export type StateKey = 'model' | 'tensor' | 'format' | 'panel' | 'scope' | 'group' | 'block' | 'compare' | 'layers' | 'prompt';

const params = new URLSearchParams(location.search);

export function getParam(key: StateKey): string | null {
  return params.get(key);
}

export function setParam(key: StateKey, value: string | number | null): void {
  if (value === null || value === '') params.delete(key);
  else params.set(key, String(value));
  history.replaceState(null, '', `${location.pathname}?${params}${location.hash}`);
}

export function getInt(key: StateKey, fallback: number): number {
  const v = Number(params.get(key));
  return Number.isInteger(v) && v >= 0 && params.has(key) ? v : fallback;
}
