// Builds tiny valid GGUF v3 files in memory (F32 tensors, string metadata), written here byte by
// byte from the GGUF spec so the browser tests do not depend on the Rust writer they help to check.

/** One F32 tensor named "weights" holding `values` (the first browser tests' fixture). */
export function tinyGguf({ name = 'tiny', values = [0.5, -1, 2, 0.25, 1, -0.5, 0, 3] } = {}) {
  return buildGguf({ metadata: { 'general.name': name }, tensors: [{ name: 'weights', dims: [values.length], values }] });
}

/**
 * A GGUF with string metadata (general.architecture = llama is always added first) and F32
 * tensors `{name, dims (ggml order: row length first), values}`.
 */
export function buildGguf({ metadata = {}, tensors = [] }) {
  const parts = [];
  const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); parts.push(b); };
  const u64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); parts.push(b); };
  const str = (s) => { const b = Buffer.from(s, 'utf8'); u64(b.length); parts.push(b); };
  const entries = Object.entries({ 'general.architecture': 'llama', ...metadata });
  parts.push(Buffer.from('GGUF'));
  u32(3); // version
  u64(tensors.length);
  u64(entries.length);
  for (const [key, value] of entries) { str(key); u32(8); str(value); } // type 8 = string
  let offset = 0;
  const datas = [];
  for (const t of tensors) {
    str(t.name);
    u32(t.dims.length);
    for (const d of t.dims) u64(d);
    u32(0); // F32
    u64(offset);
    const data = Buffer.alloc(t.values.length * 4);
    t.values.forEach((v, i) => data.writeFloatLE(v, i * 4));
    const padded = Buffer.concat([data, Buffer.alloc((32 - (data.length % 32)) % 32)]);
    datas.push(padded);
    offset += padded.length;
  }
  const header = Buffer.concat(parts);
  const pad = (32 - (header.length % 32)) % 32;
  return Buffer.concat([header, Buffer.alloc(pad), ...datas]);
}
