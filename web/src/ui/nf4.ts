// Panel 5's chart: the block's normalised weights with three codebooks as tick rows below.
import * as Plot from '@observablehq/plot';
import type { Nf4Placement } from '../messages';

export const codebookNames = { nf4: 'NF4 (bitsandbytes)', normal: 'normal quantiles', int4: 'INT4 uniform' } as const;

export function renderNf4(container: HTMLElement, p: Nf4Placement, width: number): void {
  const ticks = [
    ...p.nf4Levels.map((x) => ({ x, book: codebookNames.nf4 })),
    ...p.normalLevels.map((x) => ({ x, book: codebookNames.normal })),
    ...p.int4Levels.map((x) => ({ x, book: codebookNames.int4 })),
  ];
  const histogram = Plot.plot({
    width: Math.max(300, width),
    height: 200,
    marginLeft: 60,
    x: { label: 'weight ÷ block absmax', domain: [-1.05, 1.05] },
    y: { label: 'weights', grid: true },
    marks: [Plot.rectY(p.normalised, Plot.binX({ y: 'count' }, { x: (v: number) => v, thresholds: 32 })), Plot.ruleY([0])],
  });
  histogram.setAttribute('role', 'img');
  histogram.setAttribute('aria-label', `Histogram of block ${p.block}'s ${p.normalised.length} weights divided by its absmax ${p.absmax.toPrecision(4)}`);
  const levels = Plot.plot({
    width: Math.max(300, width),
    height: 130,
    marginLeft: 140,
    x: { label: 'level position', domain: [-1.05, 1.05] },
    y: { label: null, domain: Object.values(codebookNames) },
    color: { domain: Object.values(codebookNames), range: ['darkorange', 'seagreen', 'slateblue'] },
    marks: [Plot.tickX(ticks, { x: 'x', y: 'book', stroke: 'book', strokeWidth: 2, title: (d: { x: number; book: string }) => `${d.book}: ${d.x.toFixed(4)}` })],
  });
  levels.setAttribute('role', 'img');
  levels.setAttribute('aria-label', 'Positions of the 16 NF4 levels, 16 normal quantiles and 15 INT4 levels in [-1, 1]');
  container.replaceChildren(histogram, levels);
}
