// Worker handler of the per-layer output error view (Methods panel, lesson 5): RTN vs GPTQ vs AWQ
// on each block matrix, the core's LabModel.layerErrors (the computation of `quantlab
// layer-error`), on the calibration text the Methods panel uses.
import { type Methods } from '../messages';
import { type Ctx } from './context';
import { calibText } from './methods';
import { getRuntime, reporter, wasmCall } from './runtime';

export async function layerErrors(args: Methods['layerErrors']['args'], ctx: Ctx<'layerErrors'>): Promise<Methods['layerErrors']['result']> {
  const { target, calib, tokens, tensors, methods, actOrder, dataUrl } = args;
  const rt = await getRuntime(ctx);
  const text = await calibText(calib, tokens, dataUrl, ctx);
  const started = performance.now();
  const out = wasmCall(`per-layer output error at ${target}`, () => rt.base.layerErrors(target, text.text, { tokens, actOrder, ...(tensors ? { tensors } : {}), ...(methods ? { methods } : {}) }, reporter(ctx, 'calibrate')));
  return { ...out, text: text.label, seconds: (performance.now() - started) / 1000 };
}
