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

// A second copy of the package on the page (or a re-import under another URL) leaves the first definitions in place.
for (const [name, element] of ELEMENTS) if (!customElements.get(name)) customElements.define(name, element);

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
