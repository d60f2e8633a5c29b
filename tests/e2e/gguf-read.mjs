// A small GGUF reader and Q4_1 decoder written from the GGUF spec and ggml's block layout, so the
// browser tests can check the numbers the lab shows against an implementation that is not the
// Rust core's.

const GGUF_TYPE_NAMES = { 0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 6: 'Q5_0', 7: 'Q5_1', 8: 'Q8_0', 10: 'Q2_K', 11: 'Q3_K', 12: 'Q4_K', 13: 'Q5_K', 14: 'Q6_K', 30: 'BF16' };

/** Reads the header of a GGUF file: version, metadata (scalars and strings; arrays skipped) and tensor infos. */
export function readGgufHeader(buf) {
  let p = 0;
  const u32 = () => { const v = buf.readUInt32LE(p); p += 4; return v; };
  const u64 = () => { const v = Number(buf.readBigUInt64LE(p)); p += 8; return v; };
  const str = () => { const n = u64(); const s = buf.toString('utf8', p, p + n); p += n; return s; };
  const sizes = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const value = (type) => {
    switch (type) {
      case 4: return u32();
      case 5: { const v = buf.readInt32LE(p); p += 4; return v; }
      case 6: { const v = buf.readFloatLE(p); p += 4; return v; }
      case 7: return buf[p++] !== 0;
      case 8: return str();
      case 10: return u64();
      case 9: {
        const inner = u32();
        const n = u64();
        if (inner === 8) for (let i = 0; i < n; i++) str();
        else p += n * sizes[inner];
        return `[array of ${n}]`;
      }
      default: { const v = buf.readUIntLE(p, sizes[type]); p += sizes[type]; return v; }
    }
  };
  if (buf.toString('latin1', 0, 4) !== 'GGUF') throw new Error('not a GGUF file (bad magic)');
  p = 4;
  const version = u32();
  const nTensors = u64();
  const nMeta = u64();
  const metadata = {};
  for (let i = 0; i < nMeta; i++) {
    const key = str();
    metadata[key] = value(u32());
  }
  const tensors = [];
  for (let i = 0; i < nTensors; i++) {
    const name = str();
    const nd = u32();
    const dims = Array.from({ length: nd }, u64);
    const type = u32();
    tensors.push({ name, dims, type, typeName: GGUF_TYPE_NAMES[type] ?? `type ${type}`, offset: u64() });
  }
  const alignment = metadata['general.alignment'] ?? 32;
  const dataOffset = Math.ceil(p / alignment) * alignment;
  for (const t of tensors) t.offset += dataOffset;
  return { version, metadata, tensors };
}

export function f16(bits) {
  const s = bits & 0x8000 ? -1 : 1;
  const e = (bits >> 10) & 0x1f;
  const m = bits & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** ggml Q4_1: blocks of 32 = f16 d, f16 m, 16 bytes of nibbles (low nibbles are values 0..15). */
export function decodeQ4_1(bytes, n) {
  const out = new Float32Array(n);
  for (let b = 0; b < n / 32; b++) {
    const o = b * 20;
    const d = f16(bytes.readUInt16LE(o));
    const m = f16(bytes.readUInt16LE(o + 2));
    for (let j = 0; j < 16; j++) {
      const q = bytes[o + 4 + j];
      out[b * 32 + j] = d * (q & 0xf) + m;
      out[b * 32 + j + 16] = d * (q >> 4) + m;
    }
  }
  return out;
}

/** The values of tensor `name` of a Q4_1 GGUF, with its [rows, cols]. */
export function q4_1Tensor(file, name) {
  const { tensors } = readGgufHeader(file);
  const t = tensors.find((x) => x.name === name);
  if (!t || t.typeName !== 'Q4_1') throw new Error(`${name} is not a Q4_1 tensor`);
  const n = t.dims.reduce((a, b) => a * b, 1);
  return { values: decodeQ4_1(file.subarray(t.offset, t.offset + (n / 32) * 20), n), cols: t.dims[0], rows: n / t.dims[0] };
}
