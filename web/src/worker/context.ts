// What every worker handler gets: the open model, progress reporting and the cancel check.
import { CancelledError, LabError, ModelFormatError } from '../errors';
import type { Method, ModelHeader, Phase, Progress, TensorRow } from '../messages';
import type { ByteSource } from '../source';
import { dequantizeGgml } from '../pkg/quantlab.js';

export interface OpenModel {
  source: ByteSource;
  header: ModelHeader;
  /** The last decoded tensor, kept because the panels look at one tensor many times. */
  decoded?: { name: string; values: Float32Array };
}

/** The context of a call to method `M`: its progress carries `M`'s detail type. */
export interface Ctx<M extends Method = Method> {
  progress(phase: Phase, loaded: number, total: number, detail?: Progress<M>): void;
  /** True once the page asked to cancel this request. */
  cancelled(): boolean;
}

/** Throws CancelledError if the page cancelled. */
export function checkCancelled(ctx: Ctx, what: string): void {
  if (ctx.cancelled()) throw new CancelledError(`cancelled: ${what}`);
}

/** Lets queued messages (a cancel) in: async loops call this between steps. */
export function yieldToEvents(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

export const state: { open: OpenModel | null } = { open: null };

export function requireModel(): OpenModel {
  if (!state.open) throw new LabError('No model is open');
  return state.open;
}

export function findTensor(model: OpenModel, name: string): TensorRow {
  const row = model.header.tensors.find((t) => t.name === name);
  if (!row) throw new LabError(`No tensor named ${JSON.stringify(name)} in ${model.source.name}`);
  return row;
}

/** Whether the panels can decode the tensor's values (ggml types; F32/F16/BF16 in safetensors). */
export function decodable(row: TensorRow): boolean {
  return row.typeId >= 0;
}

/** The stored bytes of one tensor, checked for truncation and for a type the panels can decode. */
export async function tensorBytes(model: OpenModel, row: TensorRow): Promise<Uint8Array> {
  if (!decodable(row)) {
    throw new ModelFormatError(
      `${row.name} is stored as ${row.type} (raw codes, scales or shapes of a quantized safetensors tensor, not weight values); the lab decodes F32, F16 and BF16 safetensors tensors`,
    );
  }
  const bytes = await model.source.read(row.offset, row.nBytes);
  if (bytes.byteLength !== row.nBytes) {
    throw new ModelFormatError(`${model.source.name} is truncated: ${row.name} needs ${row.nBytes} bytes, got ${bytes.byteLength}`);
  }
  return bytes;
}

/** The tensor's values decoded to f32 (cached for the last tensor asked for). */
export async function decodedValues(model: OpenModel, row: TensorRow, ctx: Ctx): Promise<Float32Array> {
  if (model.decoded?.name === row.name) return model.decoded.values;
  ctx.progress('read', 0, row.nBytes);
  const bytes = await tensorBytes(model, row);
  ctx.progress('decode', 0, row.nElements);
  const values = dequantizeGgml(row.type, bytes, row.nElements);
  model.decoded = { name: row.name, values };
  return values;
}
