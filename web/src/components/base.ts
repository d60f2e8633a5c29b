// What every quantlab custom element shares: one lab per page (a module-level `createLab()`
// promise, unless the element's `lab` property names another), the model its `src` names opened
// once per lab however many elements name it, attributes reflected to properties, a debounced
// re-render that aborts the previous call, and a live region that says what is happening and
// shows a failure's message instead of throwing out of the element.
import { createLab, type Lab } from '../api/lab';
import { LabError } from '../errors';

/** Attribute changes within this many ms make one render (typing into a bound input, a script setting several). */
const DEBOUNCE_MS = 60;

let page: Promise<Lab> | null = null;

/** The page's shared lab, started by the first element that needs it. */
export function sharedLab(): Promise<Lab> {
  page ??= createLab();
  return page;
}

/** The model each lab has open or is opening: elements naming the same `src` share one download. */
const opened = new WeakMap<Lab, { url: string; loaded: Promise<unknown> }>();

/**
 * Opens `src` (a URL relative to the page) in `lab` unless it is open or opening already. Without
 * `src` the element uses what the lab has, or waits for another element's load. A lab holds one
 * model: elements of one page that name different models take turns, the last load wins.
 */
export async function ensureModel(lab: Lab, src: string | null): Promise<void> {
  const current = opened.get(lab);
  if (!src) {
    if (current) await current.loaded;
    else if (!lab.model) throw new LabError('No model is open: set the src attribute to a GGUF or safetensors URL');
    return;
  }
  const url = new URL(src, document.baseURI).href;
  if (current?.url === url) {
    await current.loaded;
    return;
  }
  const loaded = lab.load(url);
  const entry = { url, loaded };
  opened.set(lab, entry);
  // A failed load is retried by the next render instead of failing every element for good.
  loaded.catch(() => opened.get(lab) === entry && opened.delete(lab));
  await loaded;
}

/** How an attribute's text becomes its property's value. */
export interface AttrType<T> {
  parse(text: string | null): T;
  write(value: T): string | null;
}

export const text = (fallback: string | null = null): AttrType<string | null> => ({ parse: (t) => t ?? fallback, write: (v) => v });
const numeric = (fallback: number, accept: (n: number) => boolean): AttrType<number> => ({
  parse: (t) => {
    const n = t === null || t.trim() === '' ? NaN : Number(t);
    return accept(n) ? n : fallback;
  },
  write: (v) => String(v),
});
/** An integer attribute; anything else reads as `fallback`. */
export const int = (fallback: number) => numeric(fallback, Number.isInteger);
/** A finite number attribute; anything else reads as `fallback`. */
export const num = (fallback: number) => numeric(fallback, Number.isFinite);

const camel = (name: string) => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** Defines a property per attribute (`max-tokens` → `maxTokens`) that reads and writes the attribute. */
export function reflect(target: { prototype: HTMLElement }, attributes: Record<string, AttrType<unknown>>): void {
  for (const [name, type] of Object.entries(attributes)) {
    Object.defineProperty(target.prototype, camel(name), {
      configurable: true,
      get(this: HTMLElement) {
        return type.parse(this.getAttribute(name));
      },
      set(this: HTMLElement, value: unknown) {
        const written = value === null || value === undefined ? null : type.write(value);
        if (written === null) this.removeAttribute(name);
        else this.setAttribute(name, written);
      },
    });
  }
}

/** The styles every element starts from; the custom properties are its documented knobs (DEVELOPERS.md). */
const BASE_CSS = `
:host { display: block; font: var(--ql-font, 14px system-ui, sans-serif); color: var(--ql-color, inherit); }
:host([hidden]) { display: none; }
[part~=controls] { display: flex; flex-wrap: wrap; gap: var(--ql-gap, 0.5em 1em); align-items: center; margin-bottom: 0.5em; }
[part~=status] { margin: 0.25em 0; font-size: 0.9em; color: var(--ql-muted-color, #555); min-height: 1.2em; }
[part~=status][data-error] { color: var(--ql-error-color, crimson); }
[part~=caption] { font-size: 0.9em; color: var(--ql-muted-color, #555); }
button, select, input, textarea { font: inherit; }
:focus-visible { outline: 2px solid var(--ql-focus-color, #1a73e8); outline-offset: 2px; }
svg { max-width: 100%; height: auto; }
/* Plot paints its marks with these colours; custom properties restyle them. */
[fill=steelblue] { fill: var(--ql-bar-color, steelblue); }
[stroke=darkorange] { stroke: var(--ql-level-color, darkorange); }
[stroke=crimson] { stroke: var(--ql-clip-color, crimson); }
`;

/** One element: a shadow root with the `controls`, `chart`, `caption` and `status` parts. */
export abstract class QlElement extends HTMLElement {
  protected readonly shadow: ShadowRoot;
  protected readonly controls: HTMLElement;
  protected readonly chart: HTMLElement;
  protected readonly caption: HTMLElement;
  /** The live region: progress, then a summary or the failure's message. */
  protected readonly status: HTMLElement;
  private labOverride: Lab | null = null;
  private controller: AbortController | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;

  /** What the element is, for assistive technology when the page gives it no aria-label. */
  protected abstract readonly label: string;

  constructor(css = '') {
    super();
    this.shadow = this.attachShadow({ mode: 'open' });
    const style = document.createElement('style');
    style.textContent = BASE_CSS + css;
    this.controls = part('div', 'controls');
    this.chart = part('div', 'chart');
    this.caption = part('p', 'caption');
    this.status = part('p', 'status');
    this.status.setAttribute('role', 'status');
    this.status.setAttribute('aria-live', 'polite');
    this.shadow.append(style, this.controls, this.chart, this.caption, this.status);
  }

  /** The lab this element uses: a given one, or the page's shared lab. Setting it re-renders. */
  get lab(): Lab | null {
    return this.labOverride;
  }
  set lab(lab: Lab | null) {
    this.labOverride = lab;
    this.schedule();
  }

  connectedCallback(): void {
    // A property set before the element was defined is an own property hiding the accessor: re-set it through the accessor.
    const observed = (this.constructor as { observedAttributes?: string[] }).observedAttributes ?? [];
    for (const name of [...observed.map(camel), 'lab', 'results']) {
      if (!Object.prototype.hasOwnProperty.call(this, name)) continue;
      const value: unknown = (this as Record<string, unknown>)[name];
      delete (this as Record<string, unknown>)[name];
      (this as Record<string, unknown>)[name] = value;
    }
    if (!this.hasAttribute('role')) this.setAttribute('role', 'group');
    if (!this.hasAttribute('aria-label') && !this.hasAttribute('aria-labelledby')) this.setAttribute('aria-label', this.label);
    this.schedule();
  }

  disconnectedCallback(): void {
    clearTimeout(this.timer);
    this.controller?.abort();
  }

  attributeChangedCallback(_name: string, old: string | null, value: string | null): void {
    if (old !== value && this.isConnected) this.schedule();
  }

  /** Renders again after the debounce, cancelling a render still running. */
  protected schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.refresh(), DEBOUNCE_MS);
  }

  /** The lab (given or shared) with the element's model open. */
  protected async ready(): Promise<Lab> {
    const lab = this.labOverride ?? (await sharedLab());
    this.say('Opening the model…');
    await ensureModel(lab, this.getAttribute('src'));
    return lab;
  }

  private async refresh(): Promise<void> {
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    this.setAttribute('aria-busy', 'true');
    this.say('Starting the lab…');
    try {
      const summary = await this.render(controller.signal);
      if (controller.signal.aborted) return;
      this.say(summary);
      this.dispatchEvent(new CustomEvent('ql-render', { detail: summary }));
    } catch (error) {
      // A render replaced by a newer one ends quietly; the newer one reports.
      if (controller.signal.aborted) return;
      this.fail(error);
    } finally {
      if (this.controller === controller) this.removeAttribute('aria-busy');
    }
  }

  /** Shows a failure in the live region (the typed error's name and message) and dispatches `ql-error`. */
  protected fail(error: unknown): void {
    const e = error instanceof Error ? error : new LabError(String(error));
    this.chart.replaceChildren();
    this.caption.textContent = '';
    this.status.textContent = `${e.name}: ${e.message}`;
    this.status.dataset.error = e.name;
    this.dispatchEvent(new CustomEvent('ql-error', { detail: e }));
  }

  protected say(message: string): void {
    this.status.textContent = message;
    delete this.status.dataset.error;
  }

  /**
   * Draws the element for its current attributes; resolves with the status line. `signal` aborts
   * when a newer render starts: a render checks it after each await, so a late answer draws nothing.
   */
  protected abstract render(signal: AbortSignal): Promise<string>;

  /** The chart width: the element's own, or a default while it has no layout. */
  protected width(): number {
    return this.chart.clientWidth || this.clientWidth || 640;
  }
}

function part<K extends keyof HTMLElementTagNameMap>(tag: K, name: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.setAttribute('part', name);
  return node;
}

/** A labelled control in the element's `controls` part. */
export function control<E extends HTMLElement>(host: HTMLElement, caption: string, input: E): E {
  const label = document.createElement('label');
  label.append(`${caption} `, input);
  host.append(label);
  return input;
}

/** A labelled number input for an index (a group, a block): `set` gets its value as an integer ≥ 0 on change. */
export function indexInput(host: HTMLElement, caption: string, partName: string, set: (index: number) => void): HTMLInputElement {
  const input = control(host, caption, Object.assign(document.createElement('input'), { type: 'number', min: '0', step: '1' }));
  input.setAttribute('part', partName);
  input.addEventListener('change', () => set(Math.max(0, Math.floor(Number(input.value)) || 0)));
  return input;
}

/** A <select> of `options` (value → text). */
export function select(options: Record<string, string>, value: string): HTMLSelectElement {
  const s = document.createElement('select');
  for (const [v, t] of Object.entries(options)) s.append(Object.assign(document.createElement('option'), { value: v, textContent: t }));
  s.value = value;
  return s;
}

/** The tensor named by the attribute, or the model's first 2-D one. */
export function pickTensor(lab: Lab, tensor: string | null): string {
  if (tensor) return tensor;
  const matrix = lab.tensors().find((t) => t.dims.length === 2);
  if (!matrix) throw new LabError('The model has no 2-D tensor: set the tensor attribute');
  return matrix.name;
}
