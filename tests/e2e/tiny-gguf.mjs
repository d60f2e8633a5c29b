// Builds a tiny valid GGUF v3 file in memory (one F32 tensor), written here byte by byte from
// the GGUF spec so the browser tests do not depend on the Rust writer they help to check.
export function tinyGguf({ name = 'tiny', values = [0.5, -1, 2, 0.25, 1, -0.5, 0, 3] } = {}) {
  const parts = [];
  const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); parts.push(b); };
  const u64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); parts.push(b); };
  const str = (s) => { const b = Buffer.from(s, 'utf8'); u64(b.length); parts.push(b); };
  parts.push(Buffer.from('GGUF'));
  u32(3); // version
  u64(1); // tensors
  u64(2); // metadata pairs
  str('general.architecture'); u32(8); str('llama');
  str('general.name'); u32(8); str(name);
  str('weights'); u32(1); u64(values.length); u32(0); u64(0); // name, n_dims=1, dims, type F32, offset
  let header = Buffer.concat(parts);
  const pad = (32 - (header.length % 32)) % 32;
  const data = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => data.writeFloatLE(v, i * 4));
  return Buffer.concat([header, Buffer.alloc(pad), data]);
}
