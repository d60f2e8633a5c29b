// <ql-nf4-placement> and <ql-outliers>: the lab's NF4 codebook and outlier-channel charts
// (ui/nf4.ts, ui/channels.ts) over one tensor of the element's model.
import { runCall } from '../api/calls';
import type { ChannelStats } from '../messages';
import { renderChannels } from '../ui/channels';
import { codebookNames, renderNf4 } from '../ui/nf4';
import { control, indexInput, int, num, pickTensor, QlElement, reflect, select, text } from './base';

/**
 * `<ql-nf4-placement src tensor block>`: one block of 64 weights divided by its absmax, with the
 * NF4, normal-quantile and INT4 codebooks below, and each codebook's error over the whole tensor.
 */
export class QlNf4Placement extends QlElement {
  static observedAttributes = ['src', 'tensor', 'block'];
  declare src: string | null;
  declare tensor: string | null;
  declare block: number;
  protected readonly label: string = 'NF4 level placement';
  private blockInput = indexInput(this.controls, 'Block', 'block-input', (block) => (this.block = block));

  protected async render(signal: AbortSignal): Promise<string> {
    const lab = await this.ready();
    const tensor = pickTensor(lab, this.tensor);
    this.say(`Placing the codebooks on ${tensor}…`);
    const p = await runCall(lab.client, 'nf4Placement', { tensor, block: Math.max(0, this.block) }, { signal });
    signal.throwIfAborted();
    this.blockInput.max = String(p.nBlocks - 1);
    this.blockInput.value = String(p.block);
    renderNf4(this.chart, p, this.width());
    const db = (mse: number) => (10 * Math.log10(p.signalPower / mse)).toFixed(2);
    this.caption.textContent = `Block ${p.block} of ${p.nBlocks} (absmax ${p.absmax.toPrecision(4)}). SQNR over the tensor: ${codebookNames.nf4} ${db(p.mse.nf4)} dB, ${codebookNames.normal} ${db(p.mse.normal)} dB, ${codebookNames.int4} ${db(p.mse.int4)} dB`;
    return `${tensor}, block ${p.block}: done`;
  }
}

const METRICS = { absmax: 'absmax', rms: 'RMS' } as const;
type Metric = keyof typeof METRICS;

/**
 * `<ql-outliers src tensor k>`: each input and output channel's absmax (or RMS) of a weight
 * matrix, channels above k × the median absmax in red.
 */
export class QlOutliers extends QlElement {
  static observedAttributes = ['src', 'tensor', 'k'];
  declare src: string | null;
  declare tensor: string | null;
  declare k: number;
  protected readonly label: string = 'Outlier channels';
  private metric = control(this.controls, 'Show', select(METRICS, 'absmax'));
  private inputs = document.createElement('div');
  private outputs = document.createElement('div');
  private stats: ChannelStats | null = null;

  constructor() {
    super();
    this.metric.setAttribute('part', 'metric-select');
    this.metric.addEventListener('change', () => this.draw());
  }

  protected async render(signal: AbortSignal): Promise<string> {
    const lab = await this.ready();
    const tensor = pickTensor(lab, this.tensor);
    this.say(`Measuring the channels of ${tensor}…`);
    const stats = await runCall(lab.client, 'channelStats', { tensor, outlierK: this.k > 0 ? this.k : 6 }, { signal });
    signal.throwIfAborted();
    this.stats = stats;
    this.draw();
    return `${tensor}: ${this.stats.outlierCols.length} input and ${this.stats.outlierRows.length} output outlier channels`;
  }

  private draw(): void {
    const s = this.stats;
    if (!s) return;
    const metric = this.metric.value as Metric;
    this.chart.replaceChildren(this.inputs, this.outputs);
    renderChannels(this.inputs, { absmax: s.colAbsmax, rms: s.colRms, outliers: s.outlierCols, k: s.outlierK, metric, what: 'input' }, this.width());
    renderChannels(this.outputs, { absmax: s.rowAbsmax, rms: s.rowRms, outliers: s.outlierRows, k: s.outlierK, metric, what: 'output' }, this.width());
    this.caption.textContent = `${s.tensor}: outlier input channels ${s.outlierCols.length}, output channels ${s.outlierRows.length} (k = ${s.outlierK})`;
  }
}

reflect(QlNf4Placement, { src: text(), tensor: text(), block: int(0) });
reflect(QlOutliers, { src: text(), tensor: text(), k: num(6) });
