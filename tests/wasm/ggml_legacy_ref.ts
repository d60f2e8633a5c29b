// An independent TypeScript port of llama.cpp's legacy reference quantizers
// (quantize_row_q4_0_ref … quantize_row_q8_0_ref in ggml-quants.c), used by formats.test.ts to
// check the wasm core's SIMD128 fast paths on many random blocks, beyond the golden files.
//
// f32 arithmetic is emulated with Math.fround after every operation: each f64 result of one
// +, -, *, / on f32 operands, rounded once to f32, equals the f32 operation (f64 has more than
// 2·24 + 2 bits, so this double rounding is innocuous). The f16 conversion of the scales is
// left to the caller (the wasm core's F16 encoder, itself checked against gguf-py's goldens).

const fr = Math.fround;
const FLT_MAX = 3.4028234663852886e38;

/** C's `(int8_t)y` as x86-64 compilers emit it: truncation; NaN and out-of-i32-range give 0. */
function cToI8(y: number): number {
  if (Number.isNaN(y) || y >= 2147483648 || y < -2147483648) return 0;
  return (Math.trunc(y) << 24) >> 24;
}

/** C's `roundf`: halves away from zero. */
function roundf(y: number): number {
  if (!Number.isFinite(y) || Math.abs(y) >= 2 ** 23) return y;
  return Math.sign(y) * Math.floor(Math.abs(y) + 0.5);
}

/** A quantized block before its f16 fields are encoded: scales as f32, then the packed quants. */
export interface RefBlock {
  scales: number[]; // d, then m for Q4_1 / Q5_1
  quants: Uint8Array; // qh (Q5_x, 4 bytes LE) then qs, as stored after the f16 fields
}

function firstAbsMax(x: Float32Array): number {
  let amax = 0;
  let max = 0;
  for (const v of x) {
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  return max;
}

function minMax(x: Float32Array): [number, number] {
  let min = FLT_MAX;
  let max = -FLT_MAX;
  for (const v of x) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

/** Q4_0 / Q5_0: `d = max / -(2^(bits-1))`, `q = min(top, (int8)(x * id + top/2 + 0.5))`. */
function symmetric(x: Float32Array, bits: 4 | 5): RefBlock {
  const half = bits === 4 ? 8 : 16;
  const d = fr(firstAbsMax(x) / -half);
  const id = d !== 0 ? fr(1 / d) : 0;
  const q = Array.from(x, (v) => Math.min(2 * half - 1, cToI8(fr(fr(v * id) + half + 0.5))) & 0xff);
  return { scales: [d], quants: pack(q, bits) };
}

/** Q4_1 / Q5_1: `d = (max - min) / top`, `q = (int8)((x - min) * id + 0.5)` (clamped for Q4_1). */
function affine(x: Float32Array, bits: 4 | 5): RefBlock {
  const top = bits === 4 ? 15 : 31;
  const [min, max] = minMax(x);
  const d = fr(fr(max - min) / top);
  const id = d !== 0 ? fr(1 / d) : 0;
  const q = Array.from(x, (v) => {
    const xi = cToI8(fr(fr(fr(v - min) * id) + 0.5));
    return (bits === 4 ? Math.min(15, xi) : xi) & 0xff;
  });
  return { scales: [d, min], quants: pack(q, bits) };
}

function q8_0(x: Float32Array): RefBlock {
  let amax = 0;
  for (const v of x) amax = Math.max(amax, Math.abs(v));
  const d = fr(amax / 127);
  const id = d !== 0 ? fr(1 / d) : 0;
  return { scales: [d], quants: Uint8Array.from(x, (v) => cToI8(roundf(fr(v * id))) & 0xff) };
}

/** ggml's nibble packing (value j low, j + 16 high) with the fifth bits first for 5-bit types. */
function pack(q: number[], bits: 4 | 5): Uint8Array {
  const qs = Array.from({ length: 16 }, (_, j) => ((q[j] & 0x0f) | (q[j + 16] << 4)) & 0xff);
  if (bits === 4) return Uint8Array.from(qs);
  let qh = 0;
  for (let j = 0; j < 32; j++) qh |= ((q[j] & 0x10) >> 4) << j;
  return Uint8Array.from([qh & 0xff, (qh >>> 8) & 0xff, (qh >>> 16) & 0xff, qh >>> 24, ...qs]);
}

export const LEGACY_REFERENCES: Record<string, (x: Float32Array) => RefBlock> = {
  Q4_0: (x) => symmetric(x, 4),
  Q5_0: (x) => symmetric(x, 5),
  Q4_1: (x) => affine(x, 4),
  Q5_1: (x) => affine(x, 5),
  Q8_0: q8_0,
};

/**
 * Random blocks of many shapes, as tests/rust/fast_quant.rs draws them: Gaussian and uniform
 * at scales from 1e-38 to 1.5e38 (with offsets), exact half-step ties on power-of-two grids,
 * zeros of both signs, constant blocks, `+a`/`-a` magnitude ties, subnormals (the reciprocal
 * scale overflows), values near f32::MAX (the range overflows), sparse and heavy-tailed blocks.
 */
export function randomBlocks(count: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const u32 = () => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const unit = () => (u32() + 0.5) / 2 ** 32;
  const below = (n: number) => u32() % n;
  const normal = () => Math.sqrt(-2 * Math.log(unit())) * Math.cos(2 * Math.PI * unit());
  const pick = <T>(xs: T[]) => xs[below(xs.length)];
  const sign = () => (u32() & 1 ? -1 : 1);
  const scales = [1e-38, 1e-30, 1e-12, 1e-5, 1e-2, 1, 3.7, 1e3, 6.5e4, 1e12, 1e30, 1e37, 1.5e38];

  const out = new Float32Array(32 * count);
  for (let b = 0; b < count; b++) {
    const x = out.subarray(32 * b, 32 * b + 32);
    const kind = b % 12;
    const sc = pick(scales);
    if (kind <= 1) {
      const off = kind === 1 ? normal() * 4 * sc : 0;
      for (let j = 0; j < 32; j++) x[j] = normal() * sc + off;
    } else if (kind === 2) {
      for (let j = 0; j < 32; j++) x[j] = (unit() * 2 - 1) * sc;
    } else if (kind === 3 || kind === 4) {
      const step = 2 ** (below(60) - 30);
      const top = pick([8, 16, 15, 31, 127, 254]);
      for (let j = 0; j < 32; j++) x[j] = (below(2 * top + 1) - top) * 0.5 * step;
      x[below(32)] = sign() * top * step;
      if (kind === 4) {
        const m = below(20) * step;
        for (let j = 0; j < 32; j++) x[j] += m;
      }
    } else if (kind === 5) {
      for (let j = 0; j < 32; j++) x[j] = sign() * 0;
      for (let k = below(3); k > 0; k--) x[below(32)] = sign() * pick(scales);
    } else if (kind === 6) {
      x.fill(sign() * unit() * sc);
      if (u32() & 1) {
        x[below(32)] = 0;
        x[below(32)] = -0;
      }
    } else if (kind === 7) {
      for (let j = 0; j < 32; j++) x[j] = normal() * 0.3 * sc;
      x[below(32)] = sc;
      x[below(32)] = -sc;
    } else if (kind === 8) {
      const tiny = pick([1e-45, 1e-42, 1e-40, 1e-38, 5e-37, 2e-36]);
      for (let j = 0; j < 32; j++) x[j] = normal() * tiny;
    } else if (kind === 9) {
      for (let j = 0; j < 32; j++) x[j] = sign() * FLT_MAX * (0.5 + 0.5 * unit());
    } else if (kind === 10) {
      for (let j = 0; j < 32; j++) x[j] = below(4) === 0 ? normal() * sc : sign() * 0;
    } else {
      for (let j = 0; j < 32; j++) x[j] = (normal() / Math.max(Math.abs(normal()), 1e-3)) * sc;
    }
    // Large scales can overflow to infinity; keep them as the largest finite values.
    for (let j = 0; j < 32; j++) x[j] = Math.min(FLT_MAX, Math.max(-FLT_MAX, x[j]));
  }
  return out;
}
