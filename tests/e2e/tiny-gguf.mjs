// Builds tiny valid GGUF v3 files in memory (F32 tensors; string, u32, f32 and string-array
// metadata), written here byte by byte from the GGUF spec so the browser tests do not depend on
// the Rust writer they help to check.

/** One F32 tensor named "weights" holding `values` (the first browser tests' fixture). */
export function tinyGguf({ name = 'tiny', values = [0.5, -1, 2, 0.25, 1, -0.5, 0, 3] } = {}) {
  return buildGguf({ metadata: { 'general.name': name }, tensors: [{ name: 'weights', dims: [values.length], values }] });
}

/**
 * A GGUF with metadata (general.architecture = llama is always added first; a value is a string,
 * `{u32}`, `{f32}` or `{strings: [...]}`) and F32 tensors `{name, dims (ggml order: row length
 * first), values}`.
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
  for (const [key, value] of entries) {
    str(key);
    if (typeof value === 'string') { u32(8); str(value); } // type 8 = string
    else if ('u32' in value) { u32(4); u32(value.u32); }
    else if ('f32' in value) { u32(6); const b = Buffer.alloc(4); b.writeFloatLE(value.f32); parts.push(b); }
    else { u32(9); u32(8); u64(value.strings.length); value.strings.forEach(str); } // array (9) of strings
  }
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

/** GPT-2's byte-level alphabet (`bytes_to_unicode`): the 256 single-byte tokens, by byte value. */
function byteChars() {
  const printable = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const table = new Map(printable.map((b) => [b, b]));
  let n = 0;
  for (let b = 0; b < 256; b++) if (!table.has(b)) table.set(b, 256 + n++);
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(table.get(b)));
}

/**
 * A small random llama the runtime can load, quantize and evaluate: `layers` blocks of width
 * `dim` (2 heads, FFN `ff`), tied embeddings, a byte-level gpt2 tokenizer (256 tokens, no merges:
 * every byte is a token), F32 weights from a fixed LCG.
 */
export function tinyLlama({ dim = 128, ff = 256, layers = 2, ctx = 128 } = {}) {
  let x = 12345;
  const values = (n, around = 0, scale = 1 / Math.sqrt(dim)) =>
    Array.from({ length: n }, () => {
      x = (Math.imul(1664525, x) + 1013904223) >>> 0;
      return around + (x / 2 ** 31 - 1) * scale;
    });
  const tensors = [{ name: 'token_embd.weight', dims: [dim, 256], values: values(dim * 256, 0, 1) }, { name: 'output_norm.weight', dims: [dim], values: values(dim, 1, 0.1) }];
  for (let l = 0; l < layers; l++) {
    const t = (name, dims, around, scale) => tensors.push({ name: `blk.${l}.${name}.weight`, dims, values: values(dims.reduce((a, b) => a * b), around, scale) });
    t('attn_norm', [dim], 1, 0.1);
    for (const n of ['attn_q', 'attn_k', 'attn_v', 'attn_output']) t(n, [dim, dim]);
    t('ffn_norm', [dim], 1, 0.1);
    t('ffn_gate', [dim, ff]);
    t('ffn_up', [dim, ff]);
    t('ffn_down', [ff, dim], 0, 1 / Math.sqrt(ff));
  }
  const metadata = {
    'general.name': 'tiny llama',
    'llama.block_count': { u32: layers },
    'llama.context_length': { u32: ctx },
    'llama.embedding_length': { u32: dim },
    'llama.feed_forward_length': { u32: ff },
    'llama.attention.head_count': { u32: 2 },
    'llama.attention.layer_norm_rms_epsilon': { f32: 1e-5 },
    'tokenizer.ggml.model': 'gpt2',
    'tokenizer.ggml.pre': 'gpt2',
    'tokenizer.ggml.tokens': { strings: byteChars() },
    'tokenizer.ggml.merges': { strings: [] },
  };
  return buildGguf({ metadata, tensors });
}
