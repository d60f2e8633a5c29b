// The instruct task suite in the worker (contract: LabModel.runTasks, the code path of
// `quantlab eval --tasks`): the base's answers once per model and suite, then each compared
// model's answers scored against the rules and the base's. Compare attaches the result to the row's
// manifest, so a saved row keeps its task checks like its other numbers.
import { LabError } from '../errors';
import type { Method, Progress, QuantManifest, TaskChecks, TaskSuiteChoice } from '../messages';
import { checkTaskSuite, defaultTaskSuite, type LabModel, type SuiteResult } from '../pkg/quantlab.js';
import type { Ctx } from './context';
import { sha256 } from './methods';
import { reporter, type Runtime, wasmCall } from './runtime';

/** What the manifests call the committed suite. */
const DEFAULT_LABEL = 'tasks/instruct-checks.json (built in)';

/** A suite to run: its text, hash, name and task count. */
export interface SuiteText {
  json: string;
  sha256: string;
  label: string;
  tasks: number;
  maxNewTokens: number;
}

/** The base's answers by (model, suite hash): every compared row is scored against them. */
let baseRun: { owner: Runtime; sha256: string; result: SuiteResult } | null = null;

/** The chosen suite, checked by the core before anything runs (a user's file: errors name what is wrong). */
export async function suiteText(choice: TaskSuiteChoice): Promise<SuiteText> {
  const json = choice.kind === 'default' ? defaultTaskSuite() : choice.json;
  const label = choice.kind === 'default' ? DEFAULT_LABEL : choice.label;
  const info = wasmCall(`the task suite ${label}`, () => checkTaskSuite(json));
  return { json, sha256: await sha256(json), label, tasks: info.ids.length, maxNewTokens: info.maxNewTokens };
}

/** Whether `m` already holds this suite's task checks. */
export function hasTasks(m: QuantManifest, suite: SuiteText): boolean {
  return m.result.tasks?.suite.sha256 === suite.sha256;
}

/**
 * The suite on the base (cached per model and suite) and on `model`, scored against the rules
 * and the base's answers. Progress: the base's tasks, then the model's, as one count.
 */
export function runTaskChecks<M extends Method>(rt: Runtime, model: LabModel, label: string, suite: SuiteText, ctx: Ctx<M>, step: Progress<M>): TaskChecks {
  const cachedBase = baseRun?.owner === rt && baseRun.sha256 === suite.sha256 ? baseRun.result : null;
  const offset = cachedBase ? 0 : suite.tasks;
  const total = offset + suite.tasks;
  const report = reporter(ctx, 'evaluate', step);
  ctx.progress('evaluate', 0, total, step);
  const base =
    cachedBase ??
    wasmCall('task checks on the base', () => rt.base.runTasks(suite.json, undefined, (done: number) => report(done, total)));
  baseRun = { owner: rt, sha256: suite.sha256, result: base };
  const result = wasmCall(`task checks on ${label}`, () => model.runTasks(suite.json, base.tasks, (done: number) => report(offset + done, total)));
  if (result.agreement === undefined || result.agreement === null) throw new LabError(`task checks on ${label} gave no agreement with the base`);
  return { suite: { label: suite.label, sha256: suite.sha256, tasks: suite.tasks, maxNewTokens: suite.maxNewTokens }, base, result };
}
