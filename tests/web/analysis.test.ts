import { describe, expect, test } from 'vitest';
import { codebookMse, histogramOf, median, normalQuantile, normalQuantileLevels, paretoFrontier, sortedLevels } from '../../web/src/analysis';

describe('normal quantiles', () => {
  test('match published values of the inverse normal CDF', () => {
    // scipy.stats.norm.ppf values.
    expect(normalQuantile(0.5)).toBeCloseTo(0, 12);
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963984540054, 8);
    expect(normalQuantile(0.01)).toBeCloseTo(-2.326347874040841, 8);
    expect(normalQuantile(0.84134474606854293)).toBeCloseTo(1, 8);
    expect(() => normalQuantile(0)).toThrow(RangeError);
  });
  test('16 levels are symmetric, ascending and end at ±1', () => {
    const l = normalQuantileLevels(16);
    expect(l).toHaveLength(16);
    expect(l[0]).toBe(-1);
    expect(l[15]).toBe(1);
    for (let i = 0; i < 16; i++) expect(l[i]! + l[15 - i]!).toBeCloseTo(0, 12);
    for (let i = 1; i < 16; i++) expect(l[i]!).toBeGreaterThan(l[i - 1]!);
  });
});

describe('codebook error', () => {
  test('hand-computed blockwise absmax rounding', () => {
    // Block [2, 1, -0.4, 0.2] → /2 = [1, .5, -.2, .1] → levels {-1, 0, 1}: [1, 1, 0, 0] → [2, 2, 0, 0].
    // Errors: 0, 1, 0.4, 0.2 → squares 0 + 1 + 0.16 + 0.04 = 1.2 over 4 values.
    expect(codebookMse([2, 1, -0.4, 0.2], 4, [1, -1, 0])).toBeCloseTo(0.3, 12);
    // Two blocks of 2; the second is all zero (no error).
    expect(codebookMse([1, 0.5, 0, 0], 2, [-1, 0, 1])).toBeCloseTo(0.25 / 4, 12);
    expect(codebookMse([0.3, -0.3], 2, [-1, 1])).toBe(0);
  });
});

describe('helpers', () => {
  test('histogramOf counts every finite value and reports NaN apart', () => {
    const h = histogramOf('t', [0, 1, 2, 3, NaN, 4], 4);
    expect(h.counts).toEqual([1, 1, 1, 2]);
    expect(h.total).toBe(5);
    expect(h.nonFinite).toBe(1);
    expect([h.lo, h.hi]).toEqual([0, 4]);
    expect(histogramOf('c', [2, 2], 3).counts.reduce((a, b) => a + b)).toBe(2);
  });
  test('sortedLevels sorts and drops duplicates (±0 too)', () => {
    expect(sortedLevels([0, 0.5, -0, -0.5, 1])).toEqual([-0.5, 0, 0.5, 1]);
  });
  test('median of even and odd counts', () => {
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([5, 1, 3])).toBe(3);
    expect(median([])).toBe(0);
  });
  test('Pareto frontier keeps only undominated points', () => {
    const pts = [
      { id: 'q8', bitsPerWeight: 8.5, loss: 10.0 },
      { id: 'q4', bitsPerWeight: 4.5, loss: 11.0 },
      { id: 'bad', bitsPerWeight: 5.0, loss: 12.0 },
      { id: 'q2', bitsPerWeight: 2.6, loss: 20.0 },
      { id: 'f16', bitsPerWeight: 16, loss: 10.0 },
      { id: 'nan', bitsPerWeight: 3, loss: NaN },
    ];
    expect(paretoFrontier(pts).map((p) => p.id)).toEqual(['q2', 'q4', 'q8']);
  });
});
