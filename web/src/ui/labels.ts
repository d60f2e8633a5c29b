// Collision-free placement of point labels on a chart (pure; unit-tested in tests/web/labels.test.ts).
// Each label tries positions around its point, nearest first, then further out, and takes the
// first that stays inside the plot area and touches no other label, no point and no obstacle
// (axis titles). Points are placed in order, so earlier points get the closer spots.

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface LabelRequest {
  /** The point's position in pixels. */
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Placed extends Box {
  /** How far the label's nearest edge is from its point (a leader line is drawn past a few pixels). */
  distance: number;
  /** False when no free spot existed; the label then sits at the least crowded candidate. */
  free: boolean;
}

export const intersects = (a: Box, b: Box) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

const inside = (a: Box, area: Box) => a.x >= area.x && a.y >= area.y && a.x + a.width <= area.x + area.width && a.y + a.height <= area.y + area.height;

function overlap(a: Box, b: Box): number {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  return w > 0 && h > 0 ? w * h : 0;
}

/** Candidate boxes for a label around (x, y) at `gap` pixels: above, below, right, left, then the corners. */
function candidates(r: LabelRequest, gap: number): Box[] {
  const { x, y, width: w, height: h } = r;
  return [
    { x: x - w / 2, y: y - gap - h, width: w, height: h },
    { x: x - w / 2, y: y + gap, width: w, height: h },
    { x: x + gap, y: y - h / 2, width: w, height: h },
    { x: x - gap - w, y: y - h / 2, width: w, height: h },
    { x: x + gap * 0.7, y: y - gap * 0.7 - h, width: w, height: h },
    { x: x - gap * 0.7 - w, y: y - gap * 0.7 - h, width: w, height: h },
    { x: x + gap * 0.7, y: y + gap * 0.7, width: w, height: h },
    { x: x - gap * 0.7 - w, y: y + gap * 0.7, width: w, height: h },
  ];
}

/**
 * Places one label per request inside `area`, avoiding each other, `pointRadius` around every
 * point and the `obstacles`. Gaps grow from `pointRadius + 3` in steps of the label height.
 */
export function placeLabels(requests: LabelRequest[], area: Box, obstacles: Box[], pointRadius: number): Placed[] {
  const points: Box[] = requests.map((r) => ({ x: r.x - pointRadius, y: r.y - pointRadius, width: 2 * pointRadius, height: 2 * pointRadius }));
  const taken: Box[] = [...obstacles, ...points];
  const placed: Placed[] = [];
  for (const r of requests) {
    let best: { box: Box; cost: number; gap: number } | null = null;
    let found: { box: Box; gap: number } | null = null;
    const first = pointRadius + 3;
    for (let ring = 0; ring < 8 && !found; ring++) {
      const gap = first + ring * r.height;
      for (const box of candidates(r, gap)) {
        const ok = inside(box, area);
        const cost = taken.reduce((sum, t) => sum + overlap(box, t), 0) + (ok ? 0 : 1e9) + ring;
        if (ok && cost === ring) {
          found = { box, gap };
          break;
        }
        if (!best || cost < best.cost) best = { box, cost, gap };
      }
    }
    const chosen = found ?? best!;
    taken.push(chosen.box);
    placed.push({ ...chosen.box, distance: chosen.gap - pointRadius, free: found !== null });
  }
  return placed;
}
