// Worker handlers for the weight panels: layer browser statistics, histogram with format levels,
// outlier channels and NF4 level placement. Each reads one tensor's bytes and calls the wasm core.
import { codebookMse, histogramOf, normalQuantileLevels, sortedLevels } from '../analysis';
import { FormatChoiceError, kindOf } from '../errors';
import type { ChannelStats, ErrorMetrics, Methods, Nf4Placement, TensorAnalysis, TensorRow, TensorView } from '../messages';
import { type QuantizeReport, quantizeTensor, tensorHistogram, weightStats } from '../pkg/quantlab.js';
import { checkCancelled, type Ctx, decodable, decodedValues, findTensor, requireModel, tensorBytes, yieldToEvents } from './context';

type Args<M extends keyof Methods> = Methods[M]['args'];

/** What the panels use of a quantization; `metrics` is null when the format could not be applied. */
type Quantized = Pick<QuantizeReport, 'format' | 'bitsPerWeight' | 'nGroups' | 'groupLen' | 'group' | 'levels' | 'occupancy'> & { metrics: ErrorMetrics | null };

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

function quantize(format: string, row: TensorRow, bytes: Uint8Array, group: number): QuantizeReport {
  try {
    return quantizeTensor(format, row.typeId, row.nElements, row.dims[0] ?? 1, bytes, group, 1);
  } catch (error) {
    throw new FormatChoiceError(`${format} on ${row.name}: ${messageOf(error)}`, kindOf(error));
  }
}

/** Every tensor's kurtosis, outlier channel counts and error under `format`, one tensor at a time. */
export async function analyzeTensors({ format, outlierK }: Args<'analyzeTensors'>, ctx: Ctx<'analyzeTensors'>): Promise<TensorAnalysis[]> {
  const model = requireModel();
  const tensors = model.header.tensors.filter(decodable);
  const out: TensorAnalysis[] = [];
  for (const [i, row] of tensors.entries()) {
    await yieldToEvents();
    checkCancelled(ctx, `analysis stopped after ${i} of ${tensors.length} tensors`);
    const bytes = await tensorBytes(model, row);
    const stats = weightStats(row.typeId, row.nElements, row.dims[0] ?? 1, bytes, outlierK);
    const result: TensorAnalysis = {
      name: row.name,
      elements: row.nElements,
      bytes: row.nBytes,
      kurtosis: stats.excessKurtosis,
      outlierRows: stats.outlierRows.length,
      outlierCols: stats.outlierCols.length,
      format,
    };
    try {
      const q = quantize(format, row, bytes, 0);
      result.bitsPerWeight = q.bitsPerWeight;
      result.metrics = q.metrics;
    } catch (error) {
      result.error = messageOf(error);
    }
    out.push(result);
    ctx.progress('analyze', i + 1, tensors.length, result);
  }
  return out;
}

/** The histogram of a tensor, row or group, with `format`'s levels for the selected group. */
export async function tensorView(args: Args<'tensorView'>, ctx: Ctx): Promise<TensorView> {
  const model = requireModel();
  const row = findTensor(model, args.tensor);
  ctx.progress('read', 0, row.nBytes);
  const bytes = await tensorBytes(model, row);
  ctx.progress('quantize', 0, 0);
  // The histogram is shown even when the format cannot take this tensor; the reason is reported.
  let q: Quantized;
  let formatError: string | undefined;
  try {
    q = quantize(args.format, row, bytes, Math.max(0, args.group));
  } catch (error) {
    formatError = messageOf(error);
    q = { format: args.format, bitsPerWeight: NaN, metrics: null, nGroups: 1, groupLen: row.nElements, group: 0, levels: [], occupancy: [] };
  }
  const cols = row.dims[0] ?? 1;
  const groupLen = q.groupLen || row.nElements;
  const group = q.group;
  const rowIndex = Math.floor((group * groupLen) / cols);
  let histogram;
  let start = 0;
  let length = row.nElements;
  if (args.scope === 'tensor') {
    ctx.progress('decode', 0, row.nElements);
    histogram = { tensor: row.name, ...tensorHistogram(row.typeId, row.nElements, cols, bytes, args.bins) };
  } else {
    const values = await decodedValues(model, row, ctx);
    [start, length] = args.scope === 'row' ? [rowIndex * cols, cols] : [group * groupLen, Math.min(groupLen, row.nElements - group * groupLen)];
    histogram = histogramOf(row.name, values.subarray(start, start + length), args.bins);
  }
  const levels = sortedLevels(q.levels);
  // Clipping is per group: values of the selected group outside its representable range.
  let clipped = 0;
  if (levels.length) {
    const values = await decodedValues(model, row, ctx);
    const [lo, hi] = [levels[0]!, levels[levels.length - 1]!];
    const end = Math.min(values.length, (group + 1) * groupLen);
    for (let i = group * groupLen; i < end; i++) if (values[i]! < lo || values[i]! > hi) clipped++;
  }
  return {
    tensor: row.name,
    format: q.format,
    scope: args.scope,
    histogram,
    start,
    length,
    row: rowIndex,
    group,
    nGroups: q.nGroups,
    groupLen,
    levels,
    clipped,
    occupancy: q.occupancy,
    bitsPerWeight: q.bitsPerWeight,
    metrics: q.metrics,
    formatError,
  };
}

export async function channelStats({ tensor, outlierK }: Args<'channelStats'>, ctx: Ctx): Promise<ChannelStats> {
  const model = requireModel();
  const row = findTensor(model, tensor);
  ctx.progress('read', 0, row.nBytes);
  const bytes = await tensorBytes(model, row);
  ctx.progress('decode', 0, row.nElements);
  return { ...weightStats(row.typeId, row.nElements, row.dims[0] ?? 1, bytes, outlierK), tensor };
}

const NF4_BLOCK = 64;

/** NF4, normal-quantile and INT4 codebooks on block `block` of 64 weights, and their tensor-wide MSE. */
export async function nf4Placement({ tensor, block }: Args<'nf4Placement'>, ctx: Ctx): Promise<Nf4Placement> {
  const model = requireModel();
  const row = findTensor(model, tensor);
  const bytes = await tensorBytes(model, row);
  ctx.progress('quantize', 0, 0);
  const nf4 = quantize(`nf4-b${NF4_BLOCK}`, row, bytes, Math.max(0, block));
  const int4 = quantize(`int4-sym-g${NF4_BLOCK}`, row, bytes, nf4.group);
  const values = await decodedValues(model, row, ctx);
  const b = nf4.group;
  const slice = values.subarray(b * NF4_BLOCK, Math.min(values.length, (b + 1) * NF4_BLOCK));
  const absmax = slice.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  // The levels of a block are absmax × codebook; dividing by the outermost level gives the codebook.
  const normalise = (levels: number[]) => {
    const s = sortedLevels(levels);
    const m = Math.max(...s.map(Math.abs));
    return m > 0 ? s.map((v) => v / m) : s;
  };
  const normalLevels = normalQuantileLevels(16);
  ctx.progress('analyze', 0, 0);
  return {
    tensor,
    block: b,
    nBlocks: nf4.nGroups,
    blockSize: NF4_BLOCK,
    normalised: Array.from(slice, (v) => (absmax > 0 ? v / absmax : 0)),
    absmax,
    nf4Levels: normalise(nf4.levels),
    int4Levels: normalise(int4.levels),
    normalLevels,
    mse: { nf4: nf4.metrics.mse, int4: int4.metrics.mse, normal: codebookMse(values, NF4_BLOCK, normalLevels) },
    signalPower: nf4.metrics.signalPower,
  };
}
