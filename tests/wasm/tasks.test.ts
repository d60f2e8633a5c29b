// The instruct task suite in the wasm core (crate/src/bindings/tasks.rs), in Node, on the
// default model: `LabModel.runTasks` gives the answers, verdicts and scores that the native
// `quantlab eval --tasks --json` prints for the same suite (the CLI is the reference: the page
// must not disagree with it), on the base and on q4_0 (pure, as Compare quantizes). The suite is
// tests/fixtures/tasks/five.json: one task of each rule kind from tasks/instruct-checks.json,
// where the default model's base answers two validly and three not and q4_0 agrees with it on
// three, so every verdict and both agreement outcomes are compared. The default model (not the
// tiny random one, which has no chat template and answers bytes at random) is loaded once; the
// answers are short (16–40 tokens).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import init, { checkTaskSuite, defaultTaskSuite, LabModel, type SuiteResult } from '../../web/src/pkg/quantlab.js';
import { thrown } from './thrown';

const MODEL = resolve(__dirname, '../../models/SmolLM2-135M-Instruct.Q4_1.gguf');
const WASM = new URL('../../web/src/pkg/quantlab_bg.wasm', import.meta.url);
const SUITE = resolve(__dirname, '../fixtures/tasks/five.json');
const SLOW = 600_000;

let base: LabModel;
let q4: LabModel;
beforeAll(async () => {
  if (!existsSync(WASM)) throw new Error('web/src/pkg is missing: run `npm test` (it builds the wasm core)');
  if (!existsSync(MODEL)) throw new Error('models/ is missing the default model: run `npm test` (setup downloads it)');
  await init({ module_or_path: readFileSync(WASM) });
  base = LabModel.fromGguf(new Uint8Array(readFileSync(MODEL)));
  q4 = base.quantize('q4_0');
}, SLOW);

/** The CLI's JSON task row (snake_case) in the binding's field names. */
interface CliTask {
  id: string;
  text: string;
  tokens: number;
  ending: string;
  valid: boolean;
  why?: string;
  agrees_with_base?: boolean;
}
interface CliRow {
  format: string;
  tasks: CliTask[];
  valid: number;
  agreement: number | null;
}

function asCli(r: SuiteResult): { tasks: CliTask[]; valid: number; agreement: number | null } {
  return {
    tasks: r.tasks.map((t) => ({
      id: t.id,
      text: t.text,
      tokens: t.tokens,
      ending: t.ending,
      valid: t.valid,
      ...(t.why === undefined || t.why === null ? {} : { why: t.why }),
      ...(t.agreesWithBase === undefined || t.agreesWithBase === null ? {} : { agrees_with_base: t.agreesWithBase }),
    })),
    valid: r.valid,
    agreement: r.agreement ?? null,
  };
}

describe('runTasks: the task suite in the browser core', () => {
  test('base and q4_0 answers, verdicts and scores equal `quantlab eval --tasks --json`', () => {
    // The native binary `npm test` builds in its cargo suite, which runs before this one.
    const native = resolve(process.env.CARGO_TARGET_DIR ?? resolve(__dirname, '../../target'), 'debug/quantlab');
    if (!existsSync(native)) throw new Error(`${native} is missing: build it with \`cargo build\` (npm test's cargo suite does)`);
    const cli = JSON.parse(execFileSync(native, ['eval', MODEL, '--tasks', SUITE, '-f', 'q4_0', '--pure', '--threads', '1', '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })) as { rows: CliRow[] };
    expect(cli.rows.map((r) => r.format)).toEqual(['base (Q4_1 checkpoint)', 'q4_0']);

    const suite = readFileSync(SUITE, 'utf8');
    const seen: [number, number, string][] = [];
    const b = base.runTasks(suite, undefined, (done: number, total: number, id: string) => void seen.push([done, total, id]));
    expect(seen).toEqual([
      [1, 5, 'json-person'],
      [2, 5, 'word-capital'],
      [3, 5, 'number-sum'],
      [4, 5, 'stop-yes'],
      [5, 5, 'repeat-phrase'],
    ]);
    const q = q4.runTasks(suite, b.tasks);
    const { format: _b, ...cliBase } = cli.rows[0]!;
    const { format: _q, ...cliQ4 } = cli.rows[1]!;
    expect(asCli(b)).toEqual(cliBase);
    expect(asCli(q)).toEqual(cliQ4);
    // What the comparison covers: valid and invalid answers, agreeing and disagreeing ones.
    expect(new Set(b.tasks.map((t) => t.valid))).toEqual(new Set([true, false]));
    expect(new Set(q.tasks.map((t) => t.agreesWithBase))).toEqual(new Set([true, false]));
  }, SLOW);

  test('the default suite is the committed file; a bad suite or base answers are typed errors naming what is wrong', () => {
    expect(defaultTaskSuite()).toBe(readFileSync(resolve(__dirname, '../../tasks/instruct-checks.json'), 'utf8'));
    expect(checkTaskSuite(defaultTaskSuite()).ids).toHaveLength(16);
    expect(checkTaskSuite(readFileSync(SUITE, 'utf8'))).toEqual({ ids: ['json-person', 'word-capital', 'number-sum', 'stop-yes', 'repeat-phrase'], maxNewTokens: 16 });
    const bad = (json: string) => thrown(() => base.runTasks(json, undefined));
    expect(bad('{"tasks": []}')).toMatchObject({ kind: 'badInput', what: 'file', message: expect.stringMatching(/no tasks/) });
    expect(bad('{"tasks": [{"id": "a", "prompt": "p", "rule": {"kind": "vibes"}}]}')).toMatchObject({ kind: 'badInput', what: 'file', message: expect.stringMatching(/vibes/) });
    const twice = '{"tasks": [{"id": "a", "prompt": "p", "rule": {"kind": "stop", "max_words": 1}}, {"id": "a", "prompt": "q", "rule": {"kind": "stop", "max_words": 1}}]}';
    expect(bad(twice)).toMatchObject({ kind: 'badInput', what: 'file', message: expect.stringMatching(/'a' appears twice/) });
    expect(thrown(() => checkTaskSuite('{"tasks": [{"id": "a", "prompt": "p"}]}'))).toMatchObject({ kind: 'badInput', message: expect.stringMatching(/missing field `rule`/) });
    const one = '{"max_new_tokens": 1, "tasks": [{"id": "x", "prompt": "Say hi.", "rule": {"kind": "stop", "max_words": 3}}]}';
    const other = [{ id: 'y', text: 'hi', tokens: 1, ending: 'budget' }];
    expect(thrown(() => base.runTasks(one, other as never))).toMatchObject({ kind: 'badInput', what: 'options', message: expect.stringMatching(/task 'y'.*'x'/) });
    expect(thrown(() => base.runTasks(one, [] as never))).toMatchObject({ kind: 'badInput', what: 'options', message: expect.stringMatching(/0 answers for a suite of 1/) });
  });

  test('progress returning false cancels after that task (kind cancelled)', () => {
    const two = '{"max_new_tokens": 2, "tasks": [{"id": "x", "prompt": "Say hi.", "rule": {"kind": "stop", "max_words": 3}}, {"id": "y", "prompt": "Say bye.", "rule": {"kind": "stop", "max_words": 3}}]}';
    expect(thrown(() => base.runTasks(two, undefined, () => false))).toMatchObject({ kind: 'cancelled', done: 1, total: 2 });
    // Base answers from a run of the same suite are accepted, extra fields and all.
    const b = base.runTasks(two, null);
    expect(b.agreement ?? null).toBeNull();
    expect(base.runTasks(two, b.tasks)).toMatchObject({ agreement: 1 });
  }, SLOW);
});
