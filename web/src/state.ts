// The shareable view: everything a teacher needs to send a link to "this tensor, this format,
// this panel" lives in the URL's query string (replaceState, so Back still leaves the lab).
import { ACTIVATION_PRECISIONS, type Activations, KV_CACHE_FORMATS, type KvCache } from './messages';

export type StateKey = 'model' | 'tensor' | 'format' | 'panel' | 'scope' | 'group' | 'block' | 'compare' | 'presets' | 'layers' | 'prompt' | 'kv' | 'act' | 'threads' | 'range' | 'sens' | 'recipe';

/**
 * One page's query-string state: parsed once from `search`, each change written back through
 * `write` (the page passes history.replaceState; tests pass a recorder, so Node needs no DOM).
 */
export class UrlState {
  private params: URLSearchParams;

  constructor(search: string, private write: (query: string) => void) {
    this.params = new URLSearchParams(search);
  }

  get(key: StateKey): string | null {
    return this.params.get(key);
  }

  set(key: StateKey, value: string | number | null): void {
    if (value === null || value === '') this.params.delete(key);
    else this.params.set(key, String(value));
    this.write(this.params.toString());
  }

  getInt(key: StateKey, fallback: number): number {
    const v = Number(this.params.get(key));
    return Number.isInteger(v) && v >= 0 && this.params.has(key) ? v : fallback;
  }

  /** `key`'s value if it is one of `choices` (a hand-edited or stale link may hold anything), else `fallback`. */
  getChoice<T extends string>(key: StateKey, choices: readonly T[], fallback: T): T {
    const v = this.params.get(key);
    return choices.find((c) => c === v) ?? fallback;
  }

  /** The generate panel's KV cache select: f32 (the default) unless the link names f16 or int8. */
  getKvCache(): KvCache {
    return this.getChoice('kv', KV_CACHE_FORMATS, 'f32');
  }

  /** Stores the KV cache choice; the default f32 is left out of the link. */
  setKvCache(kv: KvCache): void {
    this.set('kv', kv === 'f32' ? null : kv);
  }

  /** The generate panel's activations select: f32 (the default) unless the link names f16. */
  getActivations(): Activations {
    return this.getChoice('act', ACTIVATION_PRECISIONS, 'f32');
  }

  /** Stores the activations choice; the default f32 is left out of the link. */
  setActivations(a: Activations): void {
    this.set('act', a === 'f32' ? null : a);
  }
}

let page: UrlState | null = null;

/** The page's state, read from `location` on first use. */
export function pageState(): UrlState {
  return (page ??= new UrlState(location.search, (query) => history.replaceState(null, '', `${location.pathname}?${query}${location.hash}`)));
}

export function getParam(key: StateKey): string | null {
  return pageState().get(key);
}

export function setParam(key: StateKey, value: string | number | null): void {
  pageState().set(key, value);
}

export function getInt(key: StateKey, fallback: number): number {
  return pageState().getInt(key, fallback);
}
