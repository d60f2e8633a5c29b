// Worker handlers of the Sensitivity panel: the scan (LabModel.sensitivity, the code path of
// `quantlab sensitivity`), the recommended recipe (LabSensitivity.recommend, as `--target-…
// --recipe-out`) and a recipe quantized and evaluated against the base (LabModel.quantizeRecipe,
// as `quantlab eval --recipe`), a Compare row marked as a recipe. The last scan is kept here,
// with the runtime it belongs to, until the next scan or model.
import { LabError } from '../errors';
import type { Methods, QuantManifest, RecipeRun } from '../messages';
import { type LabSensitivity, parseTarget } from '../pkg/quantlab.js';
import { type Ctx } from './context';
import { calibText, sha256 } from './methods';
import { cachedResult, getRuntime, loadEvalText, measure, reporter, type Runtime, wasmCall } from './runtime';

type Args<M extends keyof Methods> = Methods[M]['args'];

let last: { owner: Runtime; scan: LabSensitivity } | null = null;

export async function sensitivity({ format, unit, tokens, units, calib, dataUrl }: Args<'sensitivity'>, ctx: Ctx<'sensitivity'>) {
  const rt = await getRuntime(ctx);
  const text = await calibText(calib, tokens, dataUrl, ctx);
  last?.scan.free();
  last = null;
  const opts = { tokens, unit, ...(units ? { units } : {}) };
  const scan = wasmCall(`sensitivity to ${format}`, () => rt.base.sensitivity(format, text.text, opts, reporter(ctx, 'evaluate')));
  last = { owner: rt, scan };
  return scan.report();
}

export async function recommendRecipe({ highFormat, budget }: Args<'recommendRecipe'>, ctx: Ctx<'recommendRecipe'>) {
  const rt = await getRuntime(ctx);
  if (last && last.owner !== rt) {
    // A scan of a model no longer open (it holds that model's weights) is freed.
    last.scan.free();
    last = null;
  }
  if (!last) throw new LabError('Run a sensitivity scan of this model first: a recipe is built from its rows.');
  const scan = last.scan;
  return wasmCall('recommending a recipe', () => scan.recommend({ highFormat, ...budget }));
}

/** What a recipe file says about itself, for its Compare row (the core checks it when it quantizes). */
function recipeRun(json: string, sha: string): RecipeRun {
  let recipe: { name?: string; default?: { format?: string }; tensors?: { format?: string }[] };
  try {
    recipe = JSON.parse(json) as typeof recipe;
  } catch (error) {
    throw new LabError(`recipe.json is not JSON: ${(error as Error).message}`);
  }
  const base = recipe.default?.format ?? '?';
  const tensors = recipe.tensors ?? [];
  const formats = [base, ...new Set(tensors.map((t) => t.format ?? '?').filter((f) => f !== base))];
  return { name: recipe.name ?? `recipe ${sha.slice(0, 8)}`, sha256: sha, formats, tensors: tensors.length };
}

export async function evaluateRecipe(args: Args<'evaluateRecipe'>, ctx: Ctx<'evaluateRecipe'>): Promise<QuantManifest> {
  const { recipeJson, dataUrl, saved } = args;
  const rt = await getRuntime(ctx);
  const recipe = recipeRun(recipeJson, await sha256(recipeJson));
  const label = recipe.name;
  const text = await loadEvalText(dataUrl, ctx);
  const steps = 2;
  const hit = cachedResult(saved, rt.sha256, label, args.ctx, args.maxWindows, (m) => m.result.recipe?.sha256 === recipe.sha256);
  if (hit) {
    ctx.progress('evaluate', 1, 1, { step: 1, steps, label: `${label}: saved result`, manifest: hit, cached: true });
    return hit;
  }
  const quantizeStep = { step: 0, steps, label: `Quantize ${label}` };
  ctx.progress('quantize', 0, 0, quantizeStep);
  // Listed tensors take their own format; unlisted ones the default's one type (as `--pure`).
  const model = wasmCall(`quantizing by ${label}`, () => rt.base.quantizeRecipe(recipeJson, 'pure', reporter(ctx, 'quantize', quantizeStep)));
  try {
    const scheme = wasmCall(`format ${recipe.formats[0]}`, () => parseTarget(recipe.formats[0]!)).scheme;
    const evalStep = { step: 1, steps, label: `Evaluate ${label} against the base` };
    const manifest = measure(rt, model, { label, scheme, mix: 'pure' }, text, { ctx: args.ctx, maxWindows: args.maxWindows }, ctx, evalStep);
    const withRecipe = { ...manifest, result: { ...manifest.result, recipe } };
    ctx.progress('evaluate', 1, 1, { ...evalStep, manifest: withRecipe });
    return withRecipe;
  } finally {
    model.free();
  }
}
