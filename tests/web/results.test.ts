import { describe, expect, test } from 'vitest';
import type { QuantManifest } from '../../web/src/messages';
import { CSV_COLUMNS, manifestsToCsv } from '../../web/src/results';
import { firstDivergence } from '../../web/src/analysis';

const manifest: QuantManifest = {
  tool: 'quantlab web lab',
  coreVersion: '0.1.0',
  createdAt: '2026-11-23T18:00:00.000Z',
  source: { name: 'm.gguf', sha256: 'ab'.repeat(32), format: 'Q4_1', bytes: 10, bitsPerWeight: 5.7, note: 'base = the Q4_1 checkpoint dequantized' },
  protocol: { protocol: 'default', ctx: 128, windows: 1, windowsAvailable: 40, tokensScored: 127, textTokens: 5000, text: 'Moby-Dick, chapters 1–3' },
  result: { format: 'q8_0', scheme: { value: { kind: 'ggml', ty: 'Q8_0' }, mapping: 'symmetric', granularity: { kind: 'group', size: 32 }, range: { kind: 'min_max' }, doubleQuant: null }, bitsPerWeight: 8.5, bytes: 100, ppl: 93.2, pplStderr: 30.9, meanNll: 4.5, klMean: 0.0016, top1Agreement: 0.984, basePpl: 93.6, fallbacks: 0, quantizeSummary: 's' },
};

describe('quant manifest CSV', () => {
  test('header plus one row per manifest; commas and quotes escaped; objects as JSON', () => {
    const lines = manifestsToCsv([manifest, { ...manifest, source: { ...manifest.source, name: 'a, "b".gguf' } }]).trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe(CSV_COLUMNS.join(','));
    const row = lines[1]!;
    expect(row.startsWith(`m.gguf,${'ab'.repeat(32)},Q4_1,q8_0,8.5,100,93.2,30.9,93.6,0.0016,,0.984,,0,default,128,1,127,`)).toBe(true);
    expect(row.endsWith(',"{""value"":{""kind"":""ggml"",""ty"":""Q8_0""},""mapping"":""symmetric"",""granularity"":{""kind"":""group"",""size"":32},""range"":{""kind"":""min_max""},""doubleQuant"":null}"')).toBe(true);
    expect(lines[2]!.startsWith('"a, ""b"".gguf",')).toBe(true);
    // A row with task checks: their valid and agreement shares and the suite's name.
    const suite = { label: 'five.json', sha256: 'cd'.repeat(32), tasks: 5, maxNewTokens: 16 };
    const checks = { suite, base: { tasks: [], valid: 0.4, agreement: null }, result: { tasks: [], valid: 0.2, agreement: 0.6 } };
    const withTasks = manifestsToCsv([{ ...manifest, result: { ...manifest.result, tasks: checks } }]).split('\n')[1]!;
    expect(withTasks).toContain(',127,0.2,0.6,five.json,');
  });
});

describe('first divergence', () => {
  test('index of the first differing token, -1 when identical, the shorter length for a prefix', () => {
    expect(firstDivergence([1, 2, 3], [1, 2, 4])).toBe(2);
    expect(firstDivergence([1, 2], [1, 2])).toBe(-1);
    expect(firstDivergence([1, 2], [1, 2, 3])).toBe(2);
    expect(firstDivergence([], [5])).toBe(0);
  });
});
