// The package's `quantlab/components` entry: importing it defines the custom elements (a side
// effect, listed in package.json's `sideEffects`). They share one lab per page (`sharedLab`);
// each element's `lab` property can hand it another.
import { QlGenerate } from './generate';
import { QlHistogram, QlLevels } from './histogram';
import { QlTradeoff } from './tradeoff';
import { QlNf4Placement, QlOutliers } from './weights';

export { sharedLab, QlElement } from './base';
export { QlGenerate, QlHistogram, QlLevels, QlNf4Placement, QlOutliers, QlTradeoff };

const ELEMENTS: [string, CustomElementConstructor][] = [
  ['ql-histogram', QlHistogram],
  ['ql-levels', QlLevels],
  ['ql-nf4-placement', QlNf4Placement],
  ['ql-outliers', QlOutliers],
  ['ql-tradeoff', QlTradeoff],
  ['ql-generate', QlGenerate],
];

/**
 * Defines the elements (importing this module does it already). An app whose bundler drops the
 * bare import as side-effect free calls it. A second copy of the package on the page (or a
 * re-import under another URL) leaves the first definitions in place.
 */
export function defineElements(): void {
  for (const [name, element] of ELEMENTS) if (!customElements.get(name)) customElements.define(name, element);
}

defineElements();

declare global {
  interface HTMLElementTagNameMap {
    'ql-histogram': QlHistogram;
    'ql-levels': QlLevels;
    'ql-nf4-placement': QlNf4Placement;
    'ql-outliers': QlOutliers;
    'ql-tradeoff': QlTradeoff;
    'ql-generate': QlGenerate;
  }
}
