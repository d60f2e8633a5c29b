// Compare's "Task checks" cells: valid % and agreement % of a row's instruct task suite, with a
// details view of the tasks that broke their rule or answered differently from the base.
import type { SuiteResult, TaskChecks, TaskResult } from '../messages';
import { el } from './dom';

const pct = (x: number) => `${(100 * x).toFixed(0)}%`;

/** `text` quoted on one line, cut to `max` characters (answers can run to the token budget). */
function quoted(text: string, max = 120): string {
  const one = text.trim().replace(/\s+/g, ' ');
  return JSON.stringify(one.length > max ? `${one.slice(0, max)}…` : one);
}

/** One task's line: its id, the answer, why it breaks the rule, and the base's answer where they differ. */
function taskLine(t: TaskResult, base: TaskResult | undefined): HTMLLIElement {
  const li = el('li', undefined, { 'data-task': t.id });
  li.append(el('strong', t.id), ` ${quoted(t.text)}`);
  if (!t.valid) li.append(el('span', ` — invalid: ${t.why ?? 'breaks its rule'}`, { class: 'warn' }));
  if (t.agreesWithBase === false && base) li.append(el('span', ` — the base answered ${quoted(base.text)}`));
  if (t.ending === 'budget') li.append(el('small', ` (cut at ${t.tokens} tokens)`));
  return li;
}

/** The tasks worth a look: invalid, or (for a quantized model) not the base's answer. */
function details(result: SuiteResult, base: SuiteResult | null, suite: TaskChecks['suite']): HTMLDetailsElement {
  const box = el('details', undefined, { class: 'task-details' });
  const shown = result.tasks.filter((t) => !t.valid || t.agreesWithBase === false);
  box.append(el('summary', `${shown.length} of ${result.tasks.length} tasks to look at`));
  const list = el('ul');
  list.append(...shown.map((t) => taskLine(t, base?.tasks.find((b) => b.id === t.id))));
  box.append(list, el('small', `${suite.label}: greedy, chat template, at most ${suite.maxNewTokens} new tokens per task`));
  return box;
}

/** The cell of a quantized row (`checks` set) or of the base row (`base` only); "—" when not run. */
export function taskCell(checks: TaskChecks | undefined, which: 'base' | 'quantized'): HTMLTableCellElement {
  if (!checks) return el('td', '—', { class: 'tasks' });
  const result = which === 'base' ? checks.base : checks.result;
  const agreement = which === 'base' ? 1 : result.agreement ?? 0;
  const td = el('td', `valid ${pct(result.valid)} · agree ${pct(agreement)}`, {
    class: 'tasks',
    'data-tasks-valid': String(result.valid),
    'data-tasks-agreement': String(agreement),
    title: `valid: the answer follows its task's rule; agree: the same answer as the base (${checks.suite.tasks} tasks of ${checks.suite.label})`,
  });
  td.append(details(result, which === 'base' ? null : checks.base, checks.suite));
  return td;
}
