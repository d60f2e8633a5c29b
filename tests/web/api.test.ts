// The package's client API (web/src/api) over a fake worker: which worker requests each call
// sends, how results, streamed tokens and typed errors come back, and that an AbortSignal or an
// early exit from a token loop cancels the call.
import { describe, expect, test } from 'vitest';
import { CancelledError, createLab, FormatChoiceError, LabError, ModelFormatError, type Lab } from '../../web/src/api';

interface Request {
  id: number;
  method: string;
  args: Record<string, unknown>;
}

/** Answers the page's requests with `respond`; records everything posted to it. */
class FakeWorker extends EventTarget {
  posted: unknown[] = [];
  constructor(private respond: (request: Request, worker: FakeWorker) => void) {
    super();
  }
  postMessage(message: unknown): void {
    this.posted.push(message);
    if (typeof message === 'object' && message !== null && 'method' in message) queueMicrotask(() => this.respond(message as Request, this));
  }
  terminate(): void {}
  reply(data: unknown): void {
    this.dispatchEvent(new MessageEvent('message', { data }));
  }
  requests(): Request[] {
    return this.posted.filter((m): m is Request => typeof m === 'object' && m !== null && 'method' in m);
  }
}

const INIT = { coreVersion: '9.9.9', formats: 'q4_0', formatList: [], presetList: [], methodList: [], threads: 1, note: 'one thread: test' };
const HEADER = { container: 'gguf', tensors: [{ name: 'blk.0.attn_q.weight' }, { name: 'output_norm.weight' }] };

/** A worker that answers init, opens any model and echoes other calls' arguments as results. */
function echo(request: Request, worker: FakeWorker): void {
  const value = request.method === 'init' ? INIT : request.method.startsWith('open') ? { source: 'm.gguf', header: HEADER } : { echoed: request.method, args: request.args };
  worker.reply({ kind: 'result', id: request.id, value });
}

async function labWith(respond: (request: Request, worker: FakeWorker) => void = echo, hardCancelMs = 1_000): Promise<{ lab: Lab; worker: FakeWorker; workers: FakeWorker[] }> {
  const workers: FakeWorker[] = [];
  const lab = await createLab({
    threads: 1,
    wasmUrl: 'https://example.test/core/quantlab_bg.wasm',
    createWorker: () => {
      workers.push(new FakeWorker(respond));
      return workers.at(-1) as unknown as Worker;
    },
    hardCancelMs,
  });
  return { lab, worker: workers[0]!, workers };
}

describe('createLab', () => {
  test('starts the core with the chosen threads and wasm URL, then resolves with its info', async () => {
    const { lab, worker } = await labWith();
    expect(worker.posted[0]).toEqual({ start: { threads: 1, wasmUrl: 'https://example.test/core/quantlab_bg.wasm' } });
    expect(worker.requests()[0]!.method).toBe('init');
    expect(lab.core.coreVersion).toBe('9.9.9');
  });

  test('a core that fails to start rejects with its typed error', async () => {
    const failing = (r: Request, w: FakeWorker) => w.reply({ kind: 'error', id: r.id, error: { name: 'WorkerCrashError', message: 'no wasm', kind: { kind: 'missingFeature', feature: 'simd128' } } });
    const error = await labWith(failing).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LabError);
    expect((error as LabError).name).toBe('WorkerCrashError');
    expect((error as LabError).kind).toEqual({ kind: 'missingFeature', feature: 'simd128' });
  });
});

describe('Lab', () => {
  test('load takes bytes, a Blob or a URL; tensors() lists the open model', async () => {
    const { lab, worker } = await labWith();
    expect(() => lab.tensors()).toThrow(LabError);
    await lab.load(new Uint8Array([71, 71, 85, 70]).buffer, { name: 'tiny.gguf' });
    const open = worker.requests().at(-1)!;
    expect(open.method).toBe('openFile');
    const file = open.args.file as File;
    expect(file.name).toBe('tiny.gguf');
    expect(new Uint8Array(await file.arrayBuffer())).toEqual(new Uint8Array([71, 71, 85, 70]));
    await lab.load(new Blob([new Uint8Array(8)]));
    expect((worker.requests().at(-1)!.args.file as File).size).toBe(8);
    await lab.load('https://example.test/models/m.gguf');
    expect(worker.requests().at(-1)).toMatchObject({ method: 'openUrl', args: { url: 'https://example.test/models/m.gguf' } });
    expect(lab.tensors().map((t) => t.name)).toEqual(['blk.0.attn_q.weight', 'output_norm.weight']);
  });

  test('histogram without a format is the plain histogram; with one, the tensor view with defaults', async () => {
    const { lab, worker } = await labWith();
    await lab.histogram('blk.0.attn_q.weight', { bins: 32 });
    expect(worker.requests().at(-1)).toMatchObject({ method: 'histogram', args: { tensor: 'blk.0.attn_q.weight', bins: 32 } });
    await lab.histogram('blk.0.attn_q.weight', { format: 'nf4' });
    expect(worker.requests().at(-1)).toMatchObject({ method: 'tensorView', args: { tensor: 'blk.0.attn_q.weight', format: 'nf4', bins: 128, scope: 'tensor', group: 0 } });
  });

  test('worker errors arrive as their classes with the core kind', async () => {
    const { lab } = await labWith((r, w) => (r.method === 'init' ? echo(r, w) : w.reply({ kind: 'error', id: r.id, error: { name: 'ModelFormatError', message: 'bad magic', kind: { kind: 'invalidInput' } } })));
    const error = await lab.load(new Blob([new Uint8Array(4)])).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelFormatError);
    expect((error as ModelFormatError).kind).toEqual({ kind: 'invalidInput' });
  });

  test('aborting a signal cancels the call; an aborted signal sends nothing', async () => {
    // The worker stops a call when it sees the cancel, as the real one does.
    const { lab, worker } = await labWith((r, w) => {
      if (r.method === 'init') echo(r, w);
      else w.reply({ kind: 'progress', id: r.id, phase: 'quantize', loaded: 1, total: 10 });
    });
    const controller = new AbortController();
    const phases: string[] = [];
    const call = lab.quantize('q4_0', { signal: controller.signal, onProgress: (phase) => phases.push(phase) });
    await new Promise((r) => setTimeout(r, 0));
    const { id } = worker.requests().at(-1)!;
    controller.abort();
    expect(worker.posted.at(-1)).toEqual({ cancel: id });
    worker.reply({ kind: 'error', id, error: { name: 'CancelledError', message: 'cancelled: quantize' } });
    await expect(call).rejects.toBeInstanceOf(CancelledError);
    expect(phases).toEqual(['quantize']);
    const before = worker.posted.length;
    await expect(lab.export('q8_0', { signal: controller.signal })).rejects.toBeInstanceOf(CancelledError);
    expect(worker.posted.length).toBe(before);
  });

  test('a worker restarted to stop a call that ignored its cancel gets the start message and the model again', async () => {
    // This worker never answers quantize, cancelled or not.
    const { lab, workers } = await labWith((r, w) => (r.method === 'quantize' ? undefined : echo(r, w)), 30);
    await lab.load(new Blob([new Uint8Array(8)]), { name: 'a.gguf' });
    const controller = new AbortController();
    const call = lab.quantize('q4_0', { signal: controller.signal });
    controller.abort();
    await expect(call).rejects.toBeInstanceOf(CancelledError);
    expect(workers).toHaveLength(2);
    await new Promise((r) => setTimeout(r, 0));
    const fresh = workers[1]!;
    expect(fresh.posted[0]).toEqual({ start: { threads: 1, wasmUrl: 'https://example.test/core/quantlab_bg.wasm' } });
    const reopen = fresh.requests()[0]!;
    expect(reopen.method).toBe('openFile');
    expect((reopen.args.file as File).name).toBe('a.gguf');
  });

  test('quantize sends a format or a preset recipe; a calibrating method is refused with a typed error', async () => {
    const { lab, worker } = await labWith();
    await lab.quantize('q4_0');
    expect(worker.requests().at(-1)).toMatchObject({ method: 'quantize', args: { target: 'q4_0', mix: 'pure' } });
    await lab.quantize({ target: 'q4_k_m', mix: 'llama.cpp' });
    expect(worker.requests().at(-1)).toMatchObject({ method: 'quantize', args: { target: 'q4_k_m', mix: 'llama.cpp' } });
    await expect(lab.quantize({ target: 'int4', method: 'gptq' })).rejects.toBeInstanceOf(FormatChoiceError);
  });

  test('evaluate runs formats and presets in one comparison, method recipes after, and answers in the given order', async () => {
    const { lab, worker } = await labWith((r, w) => {
      if (r.method === 'compareFormats') {
        const args = r.args as { formats: string[]; presets: string[] };
        w.reply({ kind: 'result', id: r.id, value: [...args.formats, ...args.presets].map((f) => ({ result: { format: f } })) });
      } else if (r.method === 'runMethod') w.reply({ kind: 'result', id: r.id, value: { result: { format: `${r.args.target as string}+${r.args.method as string}` } } });
      else echo(r, w);
    });
    const rows = await lab.evaluate({ formats: [{ target: 'q4_k_m', mix: 'llama.cpp' }, { target: 'int4-sym-g64', method: 'gptq' }, 'q8_0'], protocol: { ctx: 128, windows: 2, dataUrl: 'https://example.test/data/' } });
    expect(rows.map((m) => m.result.format)).toEqual(['q4_k_m', 'int4-sym-g64+gptq', 'q8_0']);
    const [compare, method] = worker.requests().slice(-2);
    expect(compare).toMatchObject({ method: 'compareFormats', args: { formats: ['q8_0'], presets: ['q4_k_m'], ctx: 128, maxWindows: 2, dataUrl: 'https://example.test/data/' } });
    expect(method).toMatchObject({ method: 'runMethod', args: { target: 'int4-sym-g64', mix: 'pure', method: 'gptq', calib: { kind: 'default' }, ctx: 128 } });
  });

  test('evaluate passes a KV cache type to the comparison (absent by default) and refuses it with a calibrating method', async () => {
    const { lab, worker } = await labWith((r, w) => (r.method === 'compareFormats' ? w.reply({ kind: 'result', id: r.id, value: [{ result: { format: 'f32' } }] }) : echo(r, w)));
    const protocol = { dataUrl: 'https://example.test/data/' };
    await lab.evaluate({ formats: ['f32'], protocol, kvCache: 'int4' });
    expect(worker.requests().at(-1)).toMatchObject({ method: 'compareFormats', args: { formats: ['f32'], kvCache: 'int4' } });
    await lab.evaluate({ formats: ['f32'], protocol });
    expect(worker.requests().at(-1)!.args).not.toHaveProperty('kvCache');
    const sent = worker.requests().length;
    await expect(lab.evaluate({ formats: ['q8_0', { target: 'int4-sym-g64', method: 'gptq' }], protocol, kvCache: 'int8' })).rejects.toBeInstanceOf(FormatChoiceError);
    expect(worker.requests().length).toBe(sent);
  });

  test('evaluate passes the device (and the device-loss hook) to the comparison, absent by default', async () => {
    const { lab, worker } = await labWith((r, w) => (r.method === 'compareFormats' ? w.reply({ kind: 'result', id: r.id, value: [{ result: { format: 'q8_0' } }] }) : echo(r, w)));
    const protocol = { dataUrl: 'https://example.test/data/' };
    await lab.evaluate({ formats: ['q8_0'], protocol, device: 'webgpu', loseDeviceAfter: 0 });
    expect(worker.requests().at(-1)).toMatchObject({ method: 'compareFormats', args: { formats: ['q8_0'], device: 'webgpu', loseDeviceAfter: 0 } });
    await lab.evaluate({ formats: ['q8_0'], protocol });
    expect(worker.requests().at(-1)!.args).not.toHaveProperty('device');
    expect(worker.requests().at(-1)!.args).not.toHaveProperty('loseDeviceAfter');
  });

  test('evaluate with activations: each format answered by its weights-only row then its activation row; method recipes refused', async () => {
    // The worker's compareFormats answers two rows per format when asked for activations (worker/runtime.ts).
    const { lab, worker } = await labWith((r, w) => {
      if (r.method !== 'compareFormats') return echo(r, w);
      const args = r.args as { formats: string[]; presets: string[]; activations?: { quant: string } };
      const rows = [...args.formats, ...args.presets].flatMap((f) => [f, ...(args.activations ? [`${f}, act ${args.activations.quant}`] : [])]);
      w.reply({ kind: 'result', id: r.id, value: rows.map((f) => ({ result: { format: f } })) });
    });
    const protocol = { dataUrl: 'https://example.test/data/' };
    const activations = { quant: 'int8-token', smoothquant: 0.5, calibTokens: 128 };
    const rows = await lab.evaluate({ formats: ['int8-sym-channel', { target: 'q4_k_m', mix: 'llama.cpp' }, 'q8_0'], protocol, activations });
    expect(rows.map((m) => m.result.format)).toEqual(['int8-sym-channel', 'int8-sym-channel, act int8-token', 'q4_k_m', 'q4_k_m, act int8-token', 'q8_0', 'q8_0, act int8-token']);
    expect(worker.requests().at(-1)).toMatchObject({ method: 'compareFormats', args: { formats: ['int8-sym-channel', 'q8_0'], presets: ['q4_k_m'], activations } });
    await lab.evaluate({ formats: ['q8_0'], protocol });
    expect(worker.requests().at(-1)!.args).not.toHaveProperty('activations');
    const sent = worker.requests().length;
    await expect(lab.evaluate({ formats: ['q8_0', { target: 'int4-sym-g64', method: 'gptq' }], protocol, activations })).rejects.toBeInstanceOf(FormatChoiceError);
    expect(worker.requests().length).toBe(sent);
  });

  test("exportHfLayout: a format alone is round to nearest's; a recipe sends its method and calibration", async () => {
    const { lab, worker } = await labWith();
    await lab.exportHfLayout('int4-sym-g64', 'gptq');
    await lab.exportHfLayout({ target: 'int4-sym-g64', method: 'awq', calibrationTokens: 512 }, 'awq', { dataUrl: 'https://example.test/data/' });
    const [plain, awq] = worker.requests().slice(-2);
    expect(plain).toMatchObject({ method: 'exportHfLayout', args: { format: 'int4-sym-g64', layout: 'gptq' } });
    expect(plain!.args).not.toHaveProperty('method');
    expect(awq).toMatchObject({ method: 'exportHfLayout', args: { format: 'int4-sym-g64', layout: 'awq', method: 'awq', calib: { kind: 'default' }, tokens: 512, dataUrl: 'https://example.test/data/' } });
  });

  test('evaluate with tasks asks the comparison for the built-in suite or a suite file; calibrated methods are refused', async () => {
    const { lab, worker } = await labWith((r, w) => {
      if (r.method === 'compareFormats') w.reply({ kind: 'result', id: r.id, value: (r.args.formats as string[]).map((f) => ({ result: { format: f } })) });
      else echo(r, w);
    });
    const P = { dataUrl: 'https://example.test/data/' };
    await lab.evaluate({ formats: ['q8_0'], protocol: P });
    expect(worker.requests().at(-1)).toMatchObject({ method: 'compareFormats', args: { tasks: null } });
    await lab.evaluate({ formats: ['q8_0'], protocol: P, tasks: true });
    expect(worker.requests().at(-1)).toMatchObject({ method: 'compareFormats', args: { tasks: { kind: 'default' } } });
    await lab.evaluate({ formats: ['q8_0'], protocol: P, tasks: { json: '{"tasks": []}', label: 'mine.json' } });
    expect(worker.requests().at(-1)).toMatchObject({ method: 'compareFormats', args: { tasks: { kind: 'file', json: '{"tasks": []}', label: 'mine.json' } } });
    const sent = worker.requests().length;
    await expect(lab.evaluate({ formats: [{ target: 'q4_0', method: 'gptq' }], protocol: P, tasks: true })).rejects.toBeInstanceOf(FormatChoiceError);
    expect(worker.requests()).toHaveLength(sent);
  });

  test('generate streams tokens to for-await, then the result; leaving early cancels', async () => {
    const tokens = [
      { side: 'base', piece: 'Call', tokenId: 1 },
      { side: 'base', piece: ' me', tokenId: 2 },
      { side: 'quantized', piece: 'Call', tokenId: 1 },
    ];
    let held: Request | null = null;
    const { lab, worker } = await labWith((r, w) => {
      if (r.method !== 'generate') return echo(r, w);
      w.reply({ kind: 'progress', id: r.id, phase: 'generate', loaded: 0, total: 0, detail: { status: 'probing' } });
      tokens.forEach((detail, i) => w.reply({ kind: 'progress', id: r.id, phase: 'generate', loaded: i + 1, total: 3, detail }));
      if (r.args.maxTokens === 3) w.reply({ kind: 'result', id: r.id, value: { device: { used: 'cpu' } } });
      else held = r;
    });
    const notes: string[] = [];
    const stream = lab.generate('Call me', { format: 'q4_0', maxTokens: 3, onStatus: (n) => notes.push(n.status) });
    const seen = [];
    for await (const token of stream) seen.push(token);
    expect(seen).toEqual(tokens);
    expect(notes).toEqual(['probing']);
    await expect(stream.result).resolves.toEqual({ device: { used: 'cpu' } });
    expect(worker.requests().at(-1)!.args).toMatchObject({ prompt: 'Call me', format: 'q4_0', device: 'cpu', maxTokens: 3, seed: 0, temperature: 0, chat: false });

    for await (const token of lab.generate('Call me', { format: 'q4_0', maxTokens: 8 })) {
      expect(token.piece).toBe('Call');
      break;
    }
    expect(worker.posted.at(-1)).toEqual({ cancel: held!.id });
  });
});
