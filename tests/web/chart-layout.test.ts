// The pure parts of the lab's chart layout: label placement without collisions, padded domains,
// and the histogram's zoomed ranges (checked against sorting and counting the values directly).
import { describe, expect, test } from 'vitest';
import { histogramOf } from '../../web/src/analysis';
import { quantileBins, rangeOf, regroup } from '../../web/src/ui/histogram';
import { type Box, intersects, placeLabels } from '../../web/src/ui/labels';
import { padLinear, padLog } from '../../web/src/ui/tradeoff';

/** A small deterministic generator (mulberry32), so failures reproduce. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('placeLabels', () => {
  const area: Box = { x: 60, y: 30, width: 600, height: 270 };
  const axisTitle: Box = { x: 0, y: 0, width: 200, height: 14 };

  test('labels of coinciding and crowded points touch nothing and stay inside', () => {
    // Two formats at the same bits per weight and nearly the same loss (q4_0 and nf4-b64 do that).
    const points = [
      { x: 150, y: 40, width: 60, height: 14 },
      { x: 150, y: 46, width: 40, height: 14 },
      { x: 150, y: 52, width: 90, height: 14 },
      { x: 655, y: 295, width: 30, height: 14 },
      { x: 65, y: 35, width: 140, height: 14 },
    ];
    const placed = placeLabels(points, area, [axisTitle], 5);
    const dots = points.map((p) => ({ x: p.x - 5, y: p.y - 5, width: 10, height: 10 }));
    placed.forEach((a, i) => {
      expect(a.free).toBe(true);
      expect(a.x >= area.x && a.y >= area.y && a.x + a.width <= area.x + area.width && a.y + a.height <= area.y + area.height).toBe(true);
      expect(intersects(a, axisTitle)).toBe(false);
      for (const d of dots) expect(intersects(a, d)).toBe(false);
      placed.forEach((b, j) => j > i && expect(intersects(a, b)).toBe(false));
    });
  });

  test('random scatters of 12 labels: no collisions', () => {
    const next = random(7);
    for (let round = 0; round < 50; round++) {
      const points = Array.from({ length: 12 }, () => ({ x: area.x + 10 + next() * (area.width - 20), y: area.y + 10 + next() * (area.height - 20), width: 30 + next() * 80, height: 14 }));
      const placed = placeLabels(points, area, [axisTitle], 5);
      placed.forEach((a, i) => placed.forEach((b, j) => j > i && expect(intersects(a, b), `round ${round}: ${i} and ${j}`).toBe(false)));
    }
  });
});

describe('padded domains', () => {
  test('linear and log padding keep every value strictly inside', () => {
    expect(padLinear(4.5, 8.5, 0.1)).toEqual([4.1, 8.9]);
    expect(padLinear(4.5, 4.5, 0.1, 0.25)).toEqual([4.25, 4.75]);
    const [lo, hi] = padLog(1e-3, 1e-1, 0.5);
    expect(lo).toBeCloseTo(1e-4, 10);
    expect(hi).toBeCloseTo(1, 10);
  });
});

describe('histogram ranges', () => {
  // Bell-shaped values with a few outliers far out, like a weight matrix.
  const next = random(3);
  const values = Float64Array.from({ length: 20_000 }, (_, i) => (i % 997 === 0 ? 40 * (next() - 0.5) : Math.sqrt(-2 * Math.log(next() || 1e-12)) * Math.cos(2 * Math.PI * next())));
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  const h = histogramOf('t', values, 128 * 32);

  test('the robust range holds the 0.1st and 99.9th percentiles, one fine bin outwards at most', () => {
    const fine = (h.hi - h.lo) / h.counts.length;
    const [a, b] = quantileBins(h.counts, 0.001);
    const lowValue = sorted[Math.floor(0.001 * (n - 1))]!;
    const highValue = sorted[Math.ceil(0.999 * (n - 1))]!;
    expect(h.lo + a * fine).toBeLessThanOrEqual(lowValue);
    expect(h.lo + (a + 1) * fine).toBeGreaterThan(lowValue);
    expect(h.lo + b * fine).toBeGreaterThanOrEqual(highValue);
    expect(h.lo + (b - 1) * fine).toBeLessThanOrEqual(highValue);
  });

  test('regrouped bins count exactly the values in them, and the rest is outside', () => {
    for (const mode of ['robust', 'group', 'full'] as const) {
      const shown = rangeOf(h, mode, [-0.5, -0.1, 0.2, 0.6], 128);
      expect(shown.bins.length).toBeLessThanOrEqual(128);
      for (const bin of shown.bins) {
        // Far from the edges (floating point may move a value on an edge by one bin).
        const inside = sorted.filter((v) => v >= bin.x0 + 1e-9 && v < bin.x1 - 1e-9).length;
        const near = sorted.filter((v) => v >= bin.x0 - 1e-9 && v < bin.x1 + 1e-9).length;
        expect(bin.count).toBeGreaterThanOrEqual(inside);
        expect(bin.count).toBeLessThanOrEqual(near);
      }
      const shownCount = shown.bins.reduce((s, bin) => s + bin.count, 0);
      expect(shownCount + shown.outside).toBe(n);
      expect(shown.domain).toEqual([shown.bins[0]!.x0, shown.bins[shown.bins.length - 1]!.x1]);
    }
    expect(rangeOf(h, 'full', [], 128).outside).toBe(0);
    const group = rangeOf(h, 'group', [-0.5, 0.6], 128).domain;
    expect(group[0]).toBeLessThanOrEqual(-0.5 - 0.05 * 1.1 + 1e-9);
    expect(group[1]).toBeGreaterThanOrEqual(0.6 + 0.05 * 1.1 - 1e-9);
  });

  test('a range at the top end is widened downwards to whole groups', () => {
    const shown = regroup(h, h.counts.length - 5, h.counts.length, 2);
    expect(shown.bins.length).toBe(2);
    expect(shown.domain[1]).toBeCloseTo(h.hi, 12);
  });
});
