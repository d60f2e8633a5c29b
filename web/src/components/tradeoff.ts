// <ql-tradeoff>: the lab's quality-vs-size chart (ui/tradeoff.ts) with its Pareto frontier, over
// manifests the page already has (the `results` property) or an evaluation of the `formats` attribute.
import type { QuantManifest } from '../messages';
import { renderTradeoff, type TradeoffPoint } from '../ui/tradeoff';
import { control, int, QlElement, reflect, select, text } from './base';

const METRICS = { ppl: 'perplexity', kl: 'KL divergence to the base' } as const;
type Metric = keyof typeof METRICS;

/**
 * `<ql-tradeoff src formats ctx windows text-url>`: perplexity (or KL) against bits per weight.
 * Set `results` to manifests from `lab.evaluate` to chart them; otherwise the element evaluates
 * the space-separated `formats` on `windows` windows of `ctx` tokens of the text at `text-url`.
 */
export class QlTradeoff extends QlElement {
  static observedAttributes = ['src', 'formats', 'ctx', 'windows', 'text-url'];
  declare src: string | null;
  declare formats: string | null;
  declare ctx: number;
  declare windows: number;
  declare textUrl: string | null;
  protected readonly label: string = 'Quality against size';
  private metric = control(this.controls, 'Quality', select(METRICS, 'ppl'));
  private given: QuantManifest[] | null = null;
  private measured: QuantManifest[] = [];

  constructor() {
    super();
    this.metric.setAttribute('part', 'metric-select');
    this.metric.addEventListener('change', () => this.draw());
  }

  /** Manifests to chart instead of evaluating `formats` (null: evaluate). */
  get results(): QuantManifest[] | null {
    return this.given;
  }
  set results(manifests: QuantManifest[] | null) {
    this.given = manifests;
    this.schedule();
  }

  protected async render(signal: AbortSignal): Promise<string> {
    if (this.given) this.measured = this.given;
    else {
      const formats = (this.formats ?? '').split(/[\s,]+/).filter(Boolean);
      if (formats.length === 0) return 'Set the formats attribute (or the results property) to chart a trade-off.';
      const lab = await this.ready();
      const protocol = { ctx: this.ctx, windows: this.windows, ...(this.textUrl ? { dataUrl: this.textUrl } : {}) };
      const onProgress = (_phase: unknown, loaded: number, total: number) => this.say(`Evaluating ${formats.join(', ')}: ${loaded} of ${total}…`);
      const measured = await lab.evaluate({ formats, protocol }, { signal, onProgress });
      signal.throwIfAborted();
      this.measured = measured;
    }
    return this.draw();
  }

  private draw(): string {
    const rows = this.measured;
    if (rows.length === 0) return '';
    const metric = this.metric.value as Metric;
    const points: TradeoffPoint[] = rows.map((m) => ({ label: m.result.format, bitsPerWeight: m.result.bitsPerWeight, loss: metric === 'ppl' ? m.result.ppl : (m.result.klMean ?? NaN) }));
    // Perplexity has the base model as a point; KL to itself is 0, which a log axis cannot show.
    if (metric === 'ppl') points.push({ label: `base (${rows[0]!.source.format})`, bitsPerWeight: rows[0]!.source.bitsPerWeight, loss: rows[0]!.result.basePpl });
    const frontier = renderTradeoff(this.chart, points, { yLabel: METRICS[metric], log: metric !== 'ppl', width: this.width() });
    this.chart.dataset.frontier = JSON.stringify(frontier);
    this.caption.textContent = `Pareto frontier: ${frontier.join(', ')}`;
    return `${rows.length} formats measured`;
  }
}

reflect(QlTradeoff, { src: text(), formats: text(), ctx: int(512), windows: int(4), 'text-url': text() });
