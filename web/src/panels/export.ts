// Panel 8: download the model quantized in the chosen format (GGUF for ggml types, else
// safetensors), made by the same code path as `quantlab quantize`. One click: the file is
// offered to the browser as soon as it is made (the link stays for another copy). The button
// names a format only once the core has accepted the name; otherwise it says why it cannot.
import { abortable } from '../api/calls';
import type { HfLayout } from '../messages';
import { offerDownload } from '../results';
import { $, el } from '../ui/dom';
import { isCancel, ProgressView } from '../ui/progress';
import { type App, panelError } from './app';
import { fallbackText, formatStatus } from './formats';

export class ExportPanel {
  private root = $('#export-body');
  private button = el('button', 'Export', { type: 'button', id: 'export-run', disabled: '' });
  private reason = el('p', '', { id: 'export-reason', class: 'caption', 'aria-live': 'polite' });
  private result = el('div', undefined, { id: 'export-result', 'aria-live': 'polite' });
  /** What to write: quantlab's own file, or a Hugging Face checkpoint in a GPTQ/AWQ loader's layout. */
  private layout = el('select', undefined, { id: 'export-layout' });
  private progress: ProgressView;
  private running = false;
  private asked = 0;

  constructor(private app: App) {
    const host = el('div');
    const row = el('div', undefined, { class: 'controls' });
    for (const [value, text] of [
      ['file', 'GGUF or safetensors (quantlab)'],
      ['gptq', 'HF checkpoint, GPTQ layout'],
      ['awq', 'HF checkpoint, AWQ layout'],
    ] as const) this.layout.append(el('option', text, { value }));
    this.layout.title = "GGUF for ggml types, else quantlab's safetensors; or a Hugging Face checkpoint (model.safetensors + config.json) in AutoGPTQ's v1 layout (INT2/4/8 groups) or AutoAWQ's GEMM layout (INT4 groups)";
    const layoutLabel = el('label', 'File ');
    layoutLabel.append(this.layout);
    row.append(layoutLabel, this.button, this.reason);
    this.button.setAttribute('aria-describedby', 'export-reason');
    this.root.append(row, host, this.result);
    this.progress = new ProgressView(host, 'export-progress');
    this.button.addEventListener('click', () => void this.run());
    void this.update();
    document.addEventListener('lab:format', () => void this.update());
    document.addEventListener('lab:model', () => void this.update());
  }

  /** Labels the button with the chosen format once the core accepts it; disables it with the reason otherwise. */
  async update(): Promise<void> {
    const ticket = ++this.asked;
    const format = this.app.format;
    this.button.textContent = 'Export';
    this.button.disabled = true;
    this.button.dataset.state = 'checking';
    this.reason.textContent = `Checking the format name "${format}"…`;
    this.reason.classList.remove('bad');
    const status = await formatStatus(this.app, format);
    if (ticket !== this.asked) return;
    this.button.dataset.state = status.kind;
    if (status.kind === 'valid') {
      this.button.textContent = `Export as ${format}`;
      this.button.disabled = this.running;
      const fallbacks = status.fallbacks && fallbackText(status.fallbacks);
      this.reason.textContent = fallbacks ? `${fallbacks}.` : '';
      this.reason.classList.remove('bad');
    } else {
      this.reason.classList.add('bad');
      this.reason.textContent = status.kind === 'invalid' ? `Cannot export: "${format}" is not a format. ${status.reason}` : `Cannot export until the format is checked: ${status.reason}`;
    }
  }

  async run(): Promise<void> {
    const format = this.app.format;
    panelError($('#export-panel'), null);
    this.result.replaceChildren();
    const title = `Exporting ${format}`;
    this.running = true;
    this.button.disabled = true;
    try {
      const layout = this.layout.value;
      if (layout === 'gptq' || layout === 'awq') {
        await this.runHf(format, layout, title);
        return;
      }
      const out = await this.progress.track(title, abortable((signal) => this.app.lab.export(format, { signal, onProgress: this.progress.listener(title) })));
      const link = offerDownload(out.blob, out.fileName);
      link.id = 'export-link';
      link.dataset.extension = out.manifest.extension;
      link.textContent = `Download ${out.fileName} again`;
      const summary = el('pre', out.manifest.summary, { id: 'export-summary' });
      this.result.replaceChildren(el('p', `${out.fileName} was handed to your browser's downloads.`, { class: 'caption' }), summary, link);
      // The export itself was the click: the browser gets the file without a second one.
      link.click();
      link.focus();
    } catch (error) {
      panelError($('#export-panel'), isCancel(error) ? 'Export cancelled.' : error);
    } finally {
      this.running = false;
      this.button.disabled = this.button.dataset.state !== 'valid';
    }
  }

  /** The Hugging Face checkpoint: model.safetensors and config.json, both handed to the browser. */
  private async runHf(format: string, layout: HfLayout, title: string): Promise<void> {
    const out = await this.progress.track(title, abortable((signal) => this.app.lab.exportHfLayout(format, layout, { signal, onProgress: this.progress.listener(title) })));
    const model = offerDownload(out.safetensors, 'model.safetensors');
    model.id = 'export-link';
    model.dataset.extension = 'safetensors';
    model.textContent = 'Download model.safetensors again';
    const config = offerDownload(new Blob([out.config], { type: 'application/json' }), 'config.json');
    config.id = 'export-config-link';
    config.textContent = 'Download config.json again';
    const summary = el('pre', out.manifest.summary, { id: 'export-summary' });
    this.result.replaceChildren(el('p', 'model.safetensors and config.json were handed to your browser\'s downloads: put them in one directory with the tokenizer files.', { class: 'caption' }), summary, model, el('span', ' · '), config);
    model.click();
    config.click();
    model.focus();
  }
}
