import { describe, expect, test } from 'vitest';
import { formatBpw, formatBytes, formatCount, formatParams, formatShape } from '../../web/src/format';
import { fromWire, kindOf, ModelFormatError, RuntimeError, toWire, LabError } from '../../web/src/errors';
import { toBins } from '../../web/src/ui/histogram';

describe('format', () => {
  test('bytes use binary units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(2304)).toBe('2.25 KiB');
    expect(formatBytes(207_360)).toBe('203 KiB');
    expect(formatBytes(30_081_024)).toBe('28.7 MiB');
    expect(formatBytes(-1)).toBe('—');
  });
  test('counts and parameters', () => {
    expect(formatCount(331_776)).toBe('331,776');
    expect(formatParams(134_515_008)).toBe('134.5M');
    expect(formatParams(7_241_732_096)).toBe('7.24B');
  });
  test('shape and bits per weight', () => {
    expect(formatShape([576, 49152])).toBe('576 × 49152');
    expect(formatBpw(5)).toBe('5');
    expect(formatBpw(8.5)).toBe('8.5');
    expect(formatBpw(6.5625)).toBe('6.5625');
    expect(formatBpw(2.625)).toBe('2.625');
  });
});

describe('errors cross the worker boundary with their class', () => {
  test('subclass survives', () => {
    const e = fromWire(toWire(new ModelFormatError('bad magic')));
    expect(e).toBeInstanceOf(ModelFormatError);
    expect(e.message).toBe('bad magic');
  });
  test('plain errors become LabError', () => {
    const e = fromWire(toWire(new TypeError('x')));
    expect(e).toBeInstanceOf(LabError);
    expect(e.name).toBe('LabError');
  });
  test("the wasm core's error kind travels as data, through a structured clone as postMessage makes", () => {
    // What a binding throws: an Error with the kind's fields set on it (bindings/mod.rs).
    const thrown = Object.assign(new Error("GPU validation error in f16 activations: adapter 'x' has no shader-f16 feature"), { kind: 'missingFeature', feature: 'shader-f16' });
    expect(kindOf(thrown)).toMatchObject({ kind: 'missingFeature', feature: 'shader-f16' });
    const e = fromWire(structuredClone(toWire(new RuntimeError(`uploading: ${thrown.message}`, kindOf(thrown)))));
    expect(e).toBeInstanceOf(RuntimeError);
    expect(e.kind).toEqual({ kind: 'missingFeature', feature: 'shader-f16' });
    const cancelled = fromWire(structuredClone(toWire(Object.assign(new Error('stopped'), { kind: 'cancelled', done: 3, total: 211 }))));
    expect(kindOf(cancelled)).toEqual({ kind: 'cancelled', done: 3, total: 211 });
    expect(kindOf(new Error('cancelled: by wording only'))).toBeUndefined();
  });
});

describe('histogram bins', () => {
  test('edges cover [lo, hi] and counts are kept', () => {
    const bins = toBins({ tensor: 't', lo: -1, hi: 1, counts: [1, 2, 3, 4], total: 10, outside: 0, nonFinite: 0, min: -1, max: 1 });
    expect(bins.map((b) => b.x0)).toEqual([-1, -0.5, 0, 0.5]);
    expect(bins[3]!.x1).toBe(1);
    expect(bins.reduce((a, b) => a + b.count, 0)).toBe(10);
  });
});
