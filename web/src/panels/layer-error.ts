// The Methods panel's "Per-layer output error" view: for the format chosen in the panel, each
// block matrix's relative output error ‖WX − ŴX‖² / ‖WX‖² on calibration inputs, RTN vs GPTQ vs
// AWQ (the core's layerErrors, `quantlab layer-error`), for the first N layers, on the Methods
// panel's calibration text, GPTQ optionally with act-order (`--act-order`).
import type { CalibSource } from '../messages';
import type { LayerErrorRow } from '../pkg/quantlab.js';
import { $, el } from '../ui/dom';
import { renderLayerErrors } from '../ui/layer-error';
import { isCancel, ProgressView } from '../ui/progress';
import { type App, panelError } from './app';

/** A block's matrices, in the core's order (Layer::matrices). */
const KINDS = ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_down', 'ffn_up'];
const TOKEN_CHOICES = [4096, 2048, 1024, 512, 256, 128];

export class LayerErrorView {
  readonly root = el('section', undefined, { id: 'layer-error' });
  private layers = el('input', undefined, { type: 'number', id: 'layer-error-layers', min: '1', value: '2', size: '3' });
  private tokens = el('select', undefined, { id: 'layer-error-tokens' });
  private kind = el('select', undefined, { id: 'layer-error-kind' });
  private actOrder = el('input', undefined, { type: 'checkbox', id: 'layer-error-act-order' });
  private runButton = el('button', 'Measure output error per layer', { type: 'button', id: 'layer-error-run' });
  private out = el('div', undefined, { id: 'layer-error-out', 'aria-live': 'polite' });
  private caption = el('p', '', { id: 'layer-error-caption', class: 'caption' });
  private progress: ProgressView;
  private rows: LayerErrorRow[] = [];

  constructor(
    private app: App,
    private target: () => string | undefined,
    private calib: () => CalibSource,
  ) {
    for (const n of TOKEN_CHOICES) this.tokens.append(el('option', `${n} tokens`, n === 512 ? { value: String(n), selected: '' } : { value: String(n) }));
    for (const k of ['all', ...KINDS]) this.kind.append(el('option', k === 'all' ? 'every matrix' : k, { value: k }));
    this.kind.addEventListener('change', () => this.draw());
    this.runButton.addEventListener('click', () => void this.run());
    const label = (text: string, control: HTMLElement) => {
      const l = el('label', text);
      l.append(control);
      return l;
    };
    const controls = el('div', undefined, { class: 'controls' });
    controls.append(label('First layers ', this.layers), label('Calibration ', this.tokens), label('GPTQ act-order ', this.actOrder), label('Show ', this.kind), this.runButton);
    const host = el('div');
    this.root.append(
      el('h3', 'Per-layer output error'),
      el('p', 'For the format chosen above: each matrix W of the first layers is quantized by round to nearest, GPTQ and AWQ (each calibrated layer by layer as when quantizing the model), and judged by its relative output error ‖WX − ŴX‖² / ‖WX‖² on the same inputs X — what the float model hands that matrix on the calibration text chosen above (Moby-Dick chapters 4+ by default).', { class: 'hint' }),
      controls,
      host,
      this.caption,
      this.out,
    );
    this.progress = new ProgressView(host, 'layer-error-progress');
  }

  private draw(): void {
    if (this.rows.length) renderLayerErrors(this.out, this.rows, this.kind.value);
  }

  async run(): Promise<void> {
    const target = this.target();
    if (!target || !this.app.model) return;
    panelError($('#methods-panel'), null);
    const n = Math.max(1, Math.floor(Number(this.layers.value) || 1));
    const tensors = Array.from({ length: n }, (_, l) => KINDS.map((k) => `blk.${l}.${k}.weight`)).flat();
    const gptq = await this.app.client.call('methodSupport', { target });
    const args = { target, calib: this.calib(), tokens: Number(this.tokens.value), tensors, methods: gptq.gptq ? null : (['awq'] as const).slice(), actOrder: this.actOrder.checked, dataUrl: new URL('data/moby-dick/', location.href).href };
    const title = `Per-layer output error at ${target}`;
    const listener = this.progress.listener(title);
    this.runButton.disabled = true;
    this.caption.textContent = '';
    try {
      const out = await this.progress.track(title, this.app.client.startCall('layerErrors', args, listener));
      this.rows = out.rows;
      this.caption.textContent = `${target}: ${out.rows.length} matrices, ${out.tokens} calibration tokens of ${out.text}${args.actOrder ? ', GPTQ with act-order' : ''}; ${out.seconds.toFixed(1)} s.`;
      this.draw();
      this.root.dataset.done = String(Date.now());
    } catch (error) {
      panelError($('#methods-panel'), isCancel(error) ? 'Per-layer output error cancelled.' : error);
      this.root.dataset.cancelled = String(isCancel(error));
    } finally {
      this.runButton.disabled = false;
    }
  }
}
