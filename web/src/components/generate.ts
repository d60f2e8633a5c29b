// <ql-generate>: the same prompt through the base model and the model quantized to `format`,
// streamed side by side, the first differing token marked (as the lab's panel 7 does).
import { firstDivergence } from '../analysis';
import type { GenerationSide } from '../messages';
import { int, QlElement, reflect, text } from './base';

const CSS = `
[part~=columns] { display: grid; grid-template-columns: 1fr 1fr; gap: var(--ql-gap, 0.5em 1em); }
[part~=output] { white-space: pre-wrap; border: 1px solid var(--ql-border-color, #d5dae3); padding: 0.5em; min-height: 3em; }
[part~=output] .diverge { background: var(--ql-diverge-color, #ffe08a); }
label:has(textarea) { flex: 1 1 24em; }
textarea { display: block; width: 100%; box-sizing: border-box; }
`;

const SIDES = ['base', 'quantized'] as const;
type Side = (typeof SIDES)[number];

/**
 * `<ql-generate src prompt format max-tokens>`: runs when its Generate button is pressed (or
 * `run()` is called), not on every attribute change: a generation takes seconds. Changing an
 * attribute while it runs cancels it and starts again with the new values.
 */
export class QlGenerate extends QlElement {
  static observedAttributes = ['src', 'prompt', 'format', 'max-tokens'];
  declare src: string | null;
  declare prompt: string | null;
  declare format: string | null;
  declare maxTokens: number;
  protected readonly label: string = 'Base and quantized generation side by side';
  private input = document.createElement('textarea');
  private button = document.createElement('button');
  private outputs = { base: document.createElement('div'), quantized: document.createElement('div') };
  private headings = { base: document.createElement('h3'), quantized: document.createElement('h3') };
  private running = false;

  constructor() {
    super(CSS);
    const label = document.createElement('label');
    label.append('Prompt ', this.input);
    this.input.rows = 3;
    this.input.setAttribute('part', 'prompt-input');
    this.input.addEventListener('change', () => (this.prompt = this.input.value));
    this.button.type = 'button';
    this.button.textContent = 'Generate side by side';
    this.button.setAttribute('part', 'run-button');
    this.button.addEventListener('click', () => this.run());
    this.controls.append(label, this.button);
    const columns = document.createElement('div');
    columns.setAttribute('part', 'columns');
    for (const side of SIDES) {
      const column = document.createElement('div');
      this.outputs[side].setAttribute('part', `output ${side}`);
      this.outputs[side].setAttribute('aria-label', `${side} output`);
      column.append(this.headings[side], this.outputs[side]);
      columns.append(column);
    }
    this.chart.append(columns);
  }

  override connectedCallback(): void {
    super.connectedCallback();
    this.input.value = this.prompt ?? '';
  }

  override attributeChangedCallback(name: string, old: string | null, value: string | null): void {
    if (name === 'prompt' && this.input.value !== (value ?? '')) this.input.value = value ?? '';
    if (this.running) super.attributeChangedCallback(name, old, value);
  }

  /** The first render only says how to start; later ones (from `run()`) generate. */
  protected override schedule(): void {
    if (this.running) super.schedule();
    else this.say('Press Generate to run the prompt through both models.');
  }

  /** Generates with the current prompt (the text box's), cancelling a generation still running. */
  run(): void {
    if (this.input.value !== (this.prompt ?? '')) this.prompt = this.input.value;
    this.running = true;
    super.schedule();
  }

  protected async render(signal: AbortSignal): Promise<string> {
    try {
      return await this.generate(signal);
    } finally {
      if (!signal.aborted) this.running = false;
    }
  }

  private async generate(signal: AbortSignal): Promise<string> {
    const lab = await this.ready();
    const format = this.format ?? 'q4_0';
    const prompt = this.prompt ?? '';
    for (const side of SIDES) this.outputs[side].replaceChildren();
    this.headings.base.textContent = 'base';
    this.headings.quantized.textContent = format;
    this.say(`Generating with the base and ${format}…`);
    const tokens = lab.generate(prompt, { format, maxTokens: Math.max(1, this.maxTokens), signal });
    for await (const t of tokens) this.outputs[t.side].append(token(t.piece));
    const r = await tokens.result;
    for (const side of SIDES) this.show(side, r[side]);
    const at = firstDivergence(r.base.tokenIds, r.quantized.tokenIds);
    this.chart.dataset.divergence = String(at);
    if (at < 0) {
      this.caption.textContent = `Identical: both produced the same ${r.base.tokenIds.length} tokens.`;
      return 'Done: identical outputs';
    }
    for (const side of SIDES) this.outputs[side].children[at]?.classList.add('diverge');
    this.caption.textContent = `First difference at generated token ${at + 1} (highlighted).`;
    return `Done: the outputs differ from token ${at + 1}`;
  }

  private show(side: Side, s: GenerationSide): void {
    // The final pieces replace the streamed ones (the stream may lag a message behind).
    this.outputs[side].replaceChildren(...s.pieces.map(token));
    this.outputs[side].dataset.tokens = String(s.tokenIds.length);
  }
}

function token(piece: string): HTMLSpanElement {
  const span = document.createElement('span');
  span.textContent = piece;
  return span;
}

reflect(QlGenerate, { src: text(), prompt: text(), format: text('q4_0'), 'max-tokens': int(32) });
