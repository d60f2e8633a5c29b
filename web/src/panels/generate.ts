// Panel 7: the same prompt and seed through the base and the chosen format, streamed, with
// tokens/s and the first token where the two differ highlighted.
import { firstDivergence } from '../analysis';
import { abortable } from '../api/calls';
import { ACTIVATION_PRECISIONS, type Activations, type Device, type DeviceChoice, type DeviceStatus, type GenerationSide, KV_CACHE_FORMATS, type KvCache } from '../messages';
import { getParam, pageState, setParam } from '../state';
import { $, el } from '../ui/dom';
import { isCancel, ProgressView } from '../ui/progress';
import { type App, panelError } from './app';
import { baseName } from '../ui/modelPanel';

export class GeneratePanel {
  private root = $('#generate-body');
  private prompt = el('textarea', undefined, { id: 'gen-prompt', rows: '3' });
  private seed = el('input', undefined, { id: 'gen-seed', type: 'number', min: '0', value: '42' });
  private maxTokens = el('input', undefined, { id: 'gen-max', type: 'number', min: '1', max: '512', value: '32' });
  private temperature = el('input', undefined, { id: 'gen-temp', type: 'number', min: '0', step: '0.1', value: '0' });
  private chat = el('input', undefined, { id: 'gen-chat', type: 'checkbox' });
  private device = el('select', undefined, { id: 'gen-device' });
  /** The WebGPU forward's KV cache format (the CPU path always keeps f32); kept in the URL as `kv`. */
  private kvCache = el('select', undefined, { id: 'gen-kv' });
  /** Says when the KV choice does not apply (the CPU path), and which format the last run used. */
  private kvNote = el('span', '', { id: 'gen-kv-note', class: 'caption' });
  /** What the WebGPU forward's matmuls compute in (f16 needs shader-f16); kept in the URL as `act`. */
  private activations = el('select', undefined, { id: 'gen-act' });
  /** Which precision the last run used, and why f16 fell back to f32 when it did. */
  private actNote = el('span', '', { id: 'gen-act-note', class: 'caption' });
  /** Which backend ran the last generation and why (the probe's measurement, or a fallback notice). */
  private deviceNote = el('p', '', { id: 'gen-device-note', class: 'caption', 'aria-live': 'polite' });
  private button = el('button', 'Generate side by side', { type: 'button', id: 'gen-run' });
  private outputs = { base: el('div', undefined, { class: 'gen-text', id: 'gen-base', 'aria-live': 'polite' }), quantized: el('div', undefined, { class: 'gen-text', id: 'gen-quantized', 'aria-live': 'polite' }) };
  private headings = { base: el('h3', 'base'), quantized: el('h3', 'quantized') };
  private stats = { base: el('p', '', { class: 'caption', id: 'gen-base-stats' }), quantized: el('p', '', { class: 'caption', id: 'gen-quantized-stats' }) };
  private note = el('p', '', { id: 'gen-divergence', class: 'caption' });
  private progress: ProgressView;

  constructor(private app: App) {
    this.prompt.value = getParam('prompt') ?? 'The whale swam toward the ship and';
    const label = (text: string, input: HTMLElement) => {
      const l = el('label', text);
      l.append(input);
      return l;
    };
    for (const [value, text] of [['auto', 'auto (probe CPU vs WebGPU)'], ['cpu', 'CPU'], ['webgpu', 'WebGPU']]) this.device.append(el('option', text, { value }));
    this.device.value = 'auto';
    const kvLabels: Record<KvCache, string> = { f32: 'f32', f16: 'f16 (half the memory)', int8: 'int8 (absmax scale per position and head)' };
    for (const kv of KV_CACHE_FORMATS) this.kvCache.append(el('option', kvLabels[kv], { value: kv }));
    this.kvCache.value = pageState().getKvCache();
    this.kvCache.addEventListener('change', () => pageState().setKvCache(this.kvCache.value as KvCache));
    const actLabels: Record<Activations, string> = { f32: 'f32', f16: 'f16 (needs shader-f16)' };
    for (const a of ACTIVATION_PRECISIONS) this.activations.append(el('option', actLabels[a], { value: a }));
    this.activations.value = pageState().getActivations();
    this.activations.addEventListener('change', () => pageState().setActivations(this.activations.value as Activations));
    this.device.addEventListener('change', () => this.syncKv());
    this.syncKv();
    const controls = el('div', undefined, { class: 'controls' });
    controls.append(label('Device ', this.device), label('KV cache ', this.kvCache), this.kvNote, label('Activations ', this.activations), this.actNote, label('Seed ', this.seed), label('Max tokens ', this.maxTokens), label('Temperature (0 = greedy) ', this.temperature), label(' chat template', this.chat), this.button);
    const host = el('div');
    const columns = el('div', undefined, { class: 'gen-columns' });
    for (const k of ['base', 'quantized'] as const) {
      const col = el('div');
      col.append(this.headings[k], this.outputs[k], this.stats[k]);
      columns.append(col);
    }
    this.root.append(label('Prompt ', this.prompt), controls, host, this.deviceNote, this.note, columns);
    this.progress = new ProgressView(host, 'gen-progress');
    this.button.addEventListener('click', () => void this.run());
  }

  async run(): Promise<void> {
    const format = this.app.format;
    const prompt = this.prompt.value;
    setParam('prompt', prompt);
    const device = this.device.value as Device;
    const kvCache = this.kvCache.value as KvCache;
    const activations = this.activations.value as Activations;
    this.deviceNote.textContent = device === 'cpu' ? '' : 'Choosing the device…';
    this.deviceNote.classList.remove('notice');
    panelError($('#generate-panel'), null);
    this.headings.base.textContent = baseName(this.app.model);
    this.headings.quantized.textContent = format;
    for (const k of ['base', 'quantized'] as const) {
      this.outputs[k].replaceChildren();
      this.stats[k].textContent = '';
    }
    this.note.textContent = '';
    // Test/diagnostic hook: `data-lose-device-after="N"` on #generate-body loses the WebGPU device after N base tokens.
    const loseDeviceAfter = Number(this.root.dataset.loseDeviceAfter) || undefined;
    const options = { format, seed: Number(this.seed.value) || 0, maxTokens: Math.max(1, Number(this.maxTokens.value) || 32), temperature: Math.max(0, Number(this.temperature.value) || 0), chat: this.chat.checked, device, kvCache, activations, loseDeviceAfter };
    const title = `Generating with the base and ${format}`;
    const onProgress = this.progress.listener(title);
    const onStatus = (note: DeviceStatus) => (this.deviceNote.textContent = `WebGPU: ${note.status}…`);
    this.button.disabled = true;
    const handle = abortable(async (signal) => {
      const tokens = this.app.lab.generate(prompt, { ...options, signal, onProgress, onStatus });
      for await (const t of tokens) this.outputs[t.side].append(el('span', t.piece, { 'data-token': String(t.tokenId) }));
      return tokens.result;
    });
    try {
      const r = await this.progress.track(title, handle);
      this.showDevice(r.device, r.base.decodeTokensPerSec, kvCache, activations);
      this.show('base', r.base);
      this.show('quantized', r.quantized);
      const at = firstDivergence(r.base.tokenIds, r.quantized.tokenIds);
      this.root.dataset.divergence = String(at);
      if (at < 0) this.note.textContent = `Identical: both produced the same ${r.base.tokenIds.length} tokens.`;
      else {
        for (const k of ['base', 'quantized'] as const) this.outputs[k].children[at]?.classList.add('diverge');
        const piece = (s: GenerationSide) => (s.pieces[at] === undefined ? '(end)' : JSON.stringify(s.pieces[at]));
        this.note.textContent = `First difference at generated token ${at + 1}: base ${piece(r.base)} vs ${format} ${piece(r.quantized)} (highlighted).`;
      }
    } catch (error) {
      panelError($('#generate-panel'), isCancel(error) ? 'Generation cancelled.' : error);
    } finally {
      this.button.disabled = false;
    }
  }

  /** The KV and activations selects only matter on WebGPU: disabled for the CPU, and the note says why. */
  private syncKv(): void {
    const cpu = this.device.value === 'cpu';
    this.kvCache.disabled = cpu;
    this.activations.disabled = cpu;
    this.actNote.textContent = cpu ? 'The CPU path computes f32 activations.' : '';
    this.kvNote.textContent = cpu ? 'The CPU path keeps an f32 KV cache: the KV choice applies to WebGPU only.' : this.device.value === 'auto' ? 'Used if auto picks WebGPU (the CPU keeps f32).' : '';
  }

  private showDevice(d: DeviceChoice, tokensPerSec: number, requestedKv: KvCache, requestedAct: Activations): void {
    const ran = d.used === 'webgpu' ? `Ran on WebGPU (adapter '${d.adapter}') at ${tokensPerSec.toFixed(2)} tok/s` : `Ran on the CPU at ${tokensPerSec.toFixed(1)} tok/s`;
    this.deviceNote.textContent = `${d.fallback ?? ''}${ran}. ${d.requested === 'auto' ? 'auto: ' : ''}${d.reason}`;
    this.deviceNote.classList.toggle('notice', d.fallback !== undefined);
    this.deviceNote.dataset.used = d.used;
    // Where a lost device handed over to the CPU (the notice above says it in words).
    if (d.deviceLost) this.deviceNote.dataset.deviceLost = `${d.deviceLost.side}:${d.deviceLost.afterTokens}`;
    else delete this.deviceNote.dataset.deviceLost;
    if (d.adapter) this.deviceNote.dataset.adapter = d.adapter;
    // The KV format the run used, next to the select (the CPU path ignores a non-f32 choice).
    const ignored = d.used === 'cpu' && requestedKv !== 'f32' ? ` (${requestedKv} ignored: the CPU path keeps f32)` : '';
    this.kvNote.textContent = `Last run: KV cache ${d.kvCache} on ${d.used === 'webgpu' ? 'WebGPU' : 'the CPU'}${ignored}.`;
    this.kvNote.dataset.kvCache = d.kvCache;
    const actIgnored = d.used === 'cpu' && requestedAct !== 'f32' ? ` (${requestedAct} ignored: the CPU path computes f32)` : '';
    this.actNote.textContent = `Last run: activations ${d.activations}${actIgnored}.${d.activationsNote ? ` ${d.activationsNote}` : ''}`;
    this.actNote.dataset.activations = d.activations;
  }

  private show(k: 'base' | 'quantized', s: GenerationSide): void {
    // Replace the streamed spans with the final pieces (same tokens; the stream may lag a message).
    this.outputs[k].replaceChildren(...s.pieces.map((p, i) => el('span', p, { 'data-token': String(s.tokenIds[i]) })));
    this.stats[k].textContent = `${s.tokenIds.length} tokens · prompt ${s.promptTokens} tokens at ${s.prefillTokensPerSec.toFixed(1)} tok/s · generation ${s.decodeTokensPerSec.toFixed(1)} tok/s · stopped: ${s.stopReason}`;
    this.stats[k].dataset.tokensPerSec = String(s.decodeTokensPerSec);
    // Which WGSL kernel each matrix used: a format without a dedicated kernel says "generic".
    if (s.gpuKernels) {
      this.stats[k].textContent += ` · WebGPU kernels: ${s.gpuKernels}`;
      this.stats[k].dataset.kernels = s.gpuKernels;
    } else delete this.stats[k].dataset.kernels;
  }
}
