// Compare's evaluation on WebGPU: the base and a row's model uploaded to the GPU (the copies
// Generate uses, f32 KV cache and activations) and run window by window in lockstep by the core's
// GpuLabEval (batched prefill with the classifier on every row, one readback per block). Same
// protocol and scoring as LabEval.run, so the numbers equal the CPU's within the forward's f32
// reordering. WebGPU missing, lost or over its limits hands the row (and the rest of the run) to
// the CPU, and the step's note says why.
import { CancelledError, kindOf, RuntimeError } from '../errors';
import type { EvalDevice, EvalKvCache, QuantManifest, StepEvent } from '../messages';
import { GpuLabEval, GpuLabModel, type LabModel } from '../pkg/quantlab.js';
import type { Ctx } from './context';
import { browserAdapterName, errorText, freeGpu, gpuCopy, manifestFrom, measure, type ProtocolOpts, reporter, type RowIdentity, runOpts, type Runtime } from './runtime';

/** The device of one Compare run: where rows evaluate now, and why the CPU took over if it did. */
export interface DeviceState {
  used: EvalDevice;
  /** Why WebGPU was not (or no longer) used, once it was asked for. */
  note?: string;
  /** Diagnostic: destroy the device after this many positions of the next GPU row (0: before it). */
  loseDeviceAfter?: number;
}

/** Error kinds of a WebGPU failure the CPU can take over from (anything else is the request's own fault). */
const FALLBACK_KINDS = new Set(['noGpu', 'deviceLost', 'limitExceeded', 'gpu', 'missingFeature', 'unsupported']);

/** The run's device: WebGPU evaluates the f32 KV cache only (a quantized cache needs its f32 reference beside it). */
export function evalDevice(requested: EvalDevice, kvCache: EvalKvCache, loseDeviceAfter?: number): DeviceState {
  if (requested === 'webgpu' && kvCache !== 'f32') {
    return { used: 'cpu', note: `WebGPU evaluates with the f32 KV cache only; the ${kvCache} KV cache ran on the CPU.` };
  }
  return { used: requested, loseDeviceAfter };
}

/**
 * `model` against the base on WebGPU: the manifest of one Compare row (`protocol.device`
 * `webgpu`, the adapter named). A WebGPU failure measures the row on the CPU instead, switches
 * `device` to the CPU for the rest of the run and reports the reason as the step's note.
 */
export async function measureOnGpu(device: DeviceState, rt: Runtime, model: LabModel, row: RowIdentity, text: string, protocolOpts: ProtocolOpts, ctx: Ctx<'compareFormats'>, evalStep: StepEvent): Promise<QuantManifest> {
  ctx.progress('evaluate', 0, 0, evalStep);
  let positions = 0;
  try {
    const adapter = await browserAdapterName();
    const base = await gpuCopy(rt, rt.base, null, 'f32', 'f32', protocolOpts.ctx);
    const quantized = await gpuCopy(rt, model, row.label, 'f32', 'f32', protocolOpts.ctx);
    const lose = device.loseDeviceAfter;
    if (lose === 0) GpuLabModel.destroyDevice();
    const report = reporter(ctx, 'evaluate', evalStep);
    const evaluation = new GpuLabEval(base);
    try {
      evaluation.add(quantized);
      const run = await evaluation.run(text, runOpts(protocolOpts), (done: number, total: number) => {
        positions = done;
        if (done === lose) GpuLabModel.destroyDevice();
        return report(done, total);
      });
      return manifestFrom(rt, model, row, run, adapter);
    } finally {
      evaluation.free();
    }
  } catch (error) {
    const kind = kindOf(error);
    if (kind?.kind === 'cancelled' || ctx.cancelled()) throw new CancelledError(errorText(error), kind);
    if (!FALLBACK_KINDS.has(kind?.kind ?? 'gpu') && kind !== undefined) throw new RuntimeError(`evaluating ${row.label} on WebGPU: ${errorText(error)}`, kind);
    // A failed device or upload is dropped, so a later run acquires and uploads afresh.
    freeGpu(rt);
    const where = positions > 0 ? ` after ${positions} evaluated positions` : '';
    const why = `WebGPU failed while evaluating ${row.label}${where} (${errorText(error)}); ${row.label} and the rows after it were evaluated on the CPU.`;
    device.note = device.note ? `${device.note} ${why}` : why;
    device.used = 'cpu';
    ctx.progress('evaluate', 0, 0, { ...evalStep, deviceNote: device.note });
    return measure(rt, model, row, text, protocolOpts, ctx, evalStep);
  }
}
