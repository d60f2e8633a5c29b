// One name per format, and what each format does to the open model, for every place a format
// is offered or named: the canonical registry name (the short names users type, like "nf4",
// map to it, "nf4-b64"), whether a typed name is a format at all (asked of the core, which
// says why not), and how many weight matrices fall back to another type because their rows
// cannot be split into the format's blocks (the worker's planned types, no quantizing).
import { kindOf } from '../errors';
import type { FormatInfo, PresetInfo } from '../messages';
import type { CompareRole } from '../pkg/quantlab.js';
import { formatCount } from '../format';
import type { App } from './app';

/** Matrices of the open model a format cannot store in its own type. */
export interface Fallbacks {
  matrices: number;
  fallbacks: number;
  /** The types those matrices get instead, with how many of each. */
  to: [string, number][];
  /** The core's reason for the first of them (one tensor's note). */
  example: string | null;
}

export type FormatStatus =
  | { kind: 'valid'; name: string; fallbacks: Fallbacks | null }
  | { kind: 'invalid'; name: string; reason: string }
  /** The check itself failed (the worker restarted, …); the name may be fine. */
  | { kind: 'unknown'; name: string; reason: string };

/** A format Compare and Methods offer: its canonical name and the short name users may type. */
export interface OfferedFormat {
  canonical: string;
  alias: string;
  bitsPerWeight: number;
  compare: CompareRole;
}

class FormatCatalog {
  private aliases = new Map<string, string>();
  private presets = new Map<string, PresetInfo>();
  /** Names the registry lists as formats: fixed family names, examples, suggestions. */
  private formatNames = new Set<string>();
  private offeredNames: OfferedFormat[] = [];

  set(formats: FormatInfo[], presets: PresetInfo[]): void {
    const suggestions = formats.flatMap((f) => f.suggestions);
    this.aliases = new Map(suggestions.map((s) => [s.name, s.canonical]));
    this.presets = new Map(presets.map((p) => [p.name, p]));
    this.formatNames = new Set([...formats.flatMap((f) => [f.pattern, f.example]), ...suggestions.flatMap((s) => [s.name, s.canonical])]);
    this.offeredNames = suggestions.filter((s) => s.compare !== 'notOffered').map((s) => ({ canonical: s.canonical, alias: s.name, bitsPerWeight: s.bitsPerWeight, compare: s.compare }));
  }

  /** The registry's canonical name of a suggested name; any other name as given. */
  canonical(name: string): string {
    return this.aliases.get(name) ?? name;
  }

  /** The formats Compare offers, by canonical name. */
  offered(): OfferedFormat[] {
    return this.offeredNames;
  }

  /** The llama.cpp file type `name` names when it is not also a format (q4_k_m is one; q8_0 is both). */
  presetOnly(name: string): PresetInfo | undefined {
    return this.formatNames.has(name) ? undefined : this.presets.get(name);
  }
}

/** The core's registry as the page received it from `init`. */
export const formatCatalog = new FormatCatalog();

const statuses = new Map<string, Promise<FormatStatus>>();

/** Whether `name` is one format the core can quantize to, and its fallbacks on the open model (cached per model). */
export function formatStatus(app: App, name: string): Promise<FormatStatus> {
  const key = `${app.generation}|${app.model ? 'model' : 'none'}|${name}`;
  let status = statuses.get(key);
  if (!status) {
    status = check(app, name);
    statuses.set(key, status);
  }
  return status;
}

async function check(app: App, name: string): Promise<FormatStatus> {
  const preset = formatCatalog.presetOnly(name);
  if (preset) {
    return { kind: 'invalid', name, reason: `${name} is one of llama.cpp's file types, a mix of types per tensor rather than one format: compare it under the presets in Compare, or use its default type ${preset.defaultType.toLowerCase()} here` };
  }
  try {
    await app.client.call('methodSupport', { target: name });
  } catch (error) {
    const kind = kindOf(error);
    const reason = (error as Error).message;
    return kind?.kind === 'badInput' ? { kind: 'invalid', name, reason } : { kind: 'unknown', name, reason };
  }
  if (!app.model) return { kind: 'valid', name, fallbacks: null };
  try {
    const types = await app.client.call('plannedTypes', { target: name, mix: 'pure' });
    const noted = types.filter((t) => t.note);
    const to = new Map<string, number>();
    for (const t of noted) to.set(t.type, (to.get(t.type) ?? 0) + 1);
    return { kind: 'valid', name, fallbacks: { matrices: types.length, fallbacks: noted.length, to: [...to], example: noted[0]?.note ?? null } };
  } catch {
    // A model the runtime cannot plan for (weights-only safetensors): the name is still valid.
    return { kind: 'valid', name, fallbacks: null };
  }
}

/** Whether most of the model's matrices cannot use the format: it then mostly measures its fallback. */
export const mostlyFallsBack = (f: Fallbacks) => 2 * f.fallbacks > f.matrices;

/** "181 of 211 weight matrices fall back to Q5_0" (empty when none do). */
export function fallbackText(f: Fallbacks): string {
  if (f.fallbacks === 0) return '';
  // The core names ggml types as llama.cpp prints them (Q5_0); the lab's names are lower case.
  const to = f.to.map(([t, n]) => (f.to.length > 1 ? `${formatCount(n)} × ${t.toLowerCase()}` : t.toLowerCase())).join(', ');
  return `${formatCount(f.fallbacks)} of ${formatCount(f.matrices)} weight matrices fall back to ${to}`;
}

/**
 * Keeps the toolbar's note on the chosen format current (after a model loads or the format
 * changes): why a typed name is not a format, or how many matrices fall back.
 */
export function watchFormatNote(app: App, note: HTMLElement): void {
  let asked = 0;
  const update = async () => {
    const ticket = ++asked;
    const status = await formatStatus(app, app.format);
    if (ticket !== asked) return;
    note.className = 'format-note';
    note.title = '';
    delete note.dataset.fallbacks;
    if (status.kind === 'valid') {
      const f = status.fallbacks;
      note.textContent = f && f.fallbacks ? `${fallbackText(f)} (their rows do not split into its blocks)` : '';
      if (f) note.dataset.fallbacks = String(f.fallbacks);
      if (f && mostlyFallsBack(f)) note.classList.add('warn');
      note.title = f?.example ?? '';
    } else {
      note.textContent = status.kind === 'invalid' ? `"${status.name}" is not a format: ${status.reason}` : `could not check ${status.name}: ${status.reason}`;
      note.classList.add('bad');
    }
    note.dataset.status = status.kind;
  };
  document.addEventListener('lab:format', () => void update());
  document.addEventListener('lab:model', () => void update());
  void update();
}
