// Panel 8: download the model quantized in the chosen format (GGUF for ggml types, else
// safetensors), made by the same code path as `quantlab quantize`.
import { abortable } from '../api/calls';
import { offerDownload } from '../results';
import { $, el } from '../ui/dom';
import { isCancel, ProgressView } from '../ui/progress';
import { type App, panelError } from './app';

export class ExportPanel {
  private root = $('#export-body');
  private button = el('button', 'Export', { type: 'button', id: 'export-run' });
  private result = el('div', undefined, { id: 'export-result', 'aria-live': 'polite' });
  private progress: ProgressView;

  constructor(private app: App) {
    const host = el('div');
    const row = el('div', undefined, { class: 'controls' });
    row.append(this.button);
    this.root.append(row, host, this.result);
    this.progress = new ProgressView(host, 'export-progress');
    this.button.addEventListener('click', () => void this.run());
    this.update();
    document.addEventListener('lab:format', () => this.update());
  }

  update(): void {
    this.button.textContent = `Export as ${this.app.format}`;
  }

  async run(): Promise<void> {
    const format = this.app.format;
    panelError($('#export-panel'), null);
    this.result.replaceChildren();
    const title = `Exporting ${format}`;
    this.button.disabled = true;
    try {
      const out = await this.progress.track(title, abortable((signal) => this.app.lab.export(format, { signal, onProgress: this.progress.listener(title) })));
      const link = offerDownload(out.blob, out.fileName);
      link.id = 'export-link';
      link.dataset.extension = out.manifest.extension;
      this.result.replaceChildren(el('p', out.manifest.summary, { class: 'caption', id: 'export-summary' }), link);
      link.focus();
    } catch (error) {
      panelError($('#export-panel'), isCancel(error) ? 'Export cancelled.' : error);
    } finally {
      this.button.disabled = false;
    }
  }
}
