// listFormats() is the one source of the lab's format lists: it must still offer every name the
// UI used to hard-code (web/src/main.ts SUGGESTED_FORMATS, web/src/panels/compare.ts FORMATS and
// DEFAULT_PICK before the registry), and each name it offers must parse to its canonical name.
import { readFileSync } from 'node:fs';
import { beforeAll, expect, test } from 'vitest';
import init, { listFormats, parseScheme } from '../../web/src/pkg/quantlab.js';
import type { FormatInfo } from '../../web/src/messages';

beforeAll(async () => {
  await init({ module_or_path: readFileSync(new URL('../../web/src/pkg/quantlab_bg.wasm', import.meta.url)) });
});

const OLD_SUGGESTED = ['q8_0', 'q6_k', 'q5_k', 'q5_1', 'q5_0', 'q4_k', 'q4_1', 'q4_0', 'q3_k', 'q2_k', 'nf4', 'nf4-b64-dq', 'fp4', 'fp8-e4m3', 'fp8-e5m2', 'int8-sym-channel', 'int4-sym-g64', 'int4-asym-g128', 'int4-sym-channel', 'int3-asym-g64'];
const OLD_COMPARE = ['q8_0', 'q6_k', 'q5_k', 'q5_0', 'q4_k', 'q4_1', 'q4_0', 'q3_k', 'q2_k', 'nf4', 'fp4', 'int8-sym-channel', 'int4-asym-g128', 'fp8-e4m3'];
const OLD_DEFAULT_PICK = ['q8_0', 'q6_k', 'q4_k', 'q4_0', 'nf4'];
// Formats that became quantizable since, offered through their registry entry alone.
const ADDED_SINCE = ['iq4_nl'];

test('listFormats() offers the lists the UI used to hard-code', () => {
  const suggestions = (listFormats() as FormatInfo[]).flatMap((f) => f.suggestions);
  const names = (keep: (compare: string) => boolean) => suggestions.filter((s) => keep(s.compare)).map((s) => s.name);
  expect(new Set(names(() => true))).toEqual(new Set([...OLD_SUGGESTED, ...ADDED_SINCE]));
  expect(names((c) => c !== 'notOffered')).toEqual(expect.arrayContaining(OLD_COMPARE));
  expect(names((c) => c !== 'notOffered')).toHaveLength(OLD_COMPARE.length);
  expect(names((c) => c === 'defaultPick')).toEqual(OLD_DEFAULT_PICK);
});

test('every suggested name parses to the canonical name listFormats() shows', () => {
  for (const f of listFormats() as FormatInfo[]) {
    if (f.support === 'quantize') expect((parseScheme(f.example) as { name: string }).name).toBe(f.example);
    for (const s of f.suggestions) {
      expect((parseScheme(s.name) as { name: string }).name).toBe(s.canonical);
      expect(s.bitsPerWeight).toBeGreaterThan(1);
    }
  }
});
