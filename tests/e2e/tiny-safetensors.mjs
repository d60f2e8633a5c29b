// Builds small safetensors files in memory, byte by byte from the format description
// (u64 LE header length, JSON header, data), so the browser tests do not depend on the Rust
// writer or reader they check.

/** IEEE half-precision bits of `v` (normal numbers and 0 only: enough for the test values). */
export function f16Bits(v) {
  if (v === 0) return Object.is(v, -0) ? 0x8000 : 0;
  const sign = v < 0 ? 0x8000 : 0;
  const a = Math.abs(v);
  const e = Math.floor(Math.log2(a));
  if (e < -14 || e > 15) throw new Error(`${v} is not a normal f16`);
  const m = Math.round((a / 2 ** e - 1) * 1024);
  if (m === 1024) throw new Error(`${v} rounds across an exponent`);
  return sign | ((e + 15) << 10) | m;
}

/** bfloat16 bits of `v` (truncated f32; the test uses values exact in bf16). */
export function bf16Bits(v) {
  const b = Buffer.alloc(4);
  b.writeFloatLE(v);
  return b.readUInt32LE() >>> 16;
}

const encoders = {
  F32: (vs) => { const b = Buffer.alloc(vs.length * 4); vs.forEach((v, i) => b.writeFloatLE(v, i * 4)); return b; },
  F16: (vs) => { const b = Buffer.alloc(vs.length * 2); vs.forEach((v, i) => b.writeUInt16LE(f16Bits(v), i * 2)); return b; },
  BF16: (vs) => { const b = Buffer.alloc(vs.length * 2); vs.forEach((v, i) => b.writeUInt16LE(bf16Bits(v), i * 2)); return b; },
  U8: (vs) => Buffer.from(vs),
};

/** `tensors`: [{name, dtype: F32|F16|BF16|U8, shape (PyTorch order), values}], `metadata`: string map. */
export function buildSafetensors({ tensors, metadata = {} }) {
  const header = { __metadata__: metadata };
  const datas = [];
  let offset = 0;
  for (const t of tensors) {
    const data = encoders[t.dtype](t.values);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + data.length] };
    datas.push(data);
    offset += data.length;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  // Pad the header with spaces to a multiple of 8, as the reference writer does.
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, ...datas]);
}
