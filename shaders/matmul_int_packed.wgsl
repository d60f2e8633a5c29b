// matmul_int_packed.wgsl — quantlab INT2/3/5/6/7 (formats/int.rs), symmetric or asymmetric, one scale
// (and zero point) per group of GROUP_SIZE values along a row (per channel: GROUP_SIZE = cols). The
// codes are read as stored, BITS bits each, crossing u32 word boundaries (INT4/INT8, whose codes
// never straddle a word, have matmul_int.wgsl). Concatenated with matmul_dot32.wgsl and
// matmul_common.wgsl (entry points gemv, gemm, gather_rows; bindings 0 and 4..7 and the override
// WG_SIZE are documented there).
//
// Bindings (group 0):
//   @binding(1) w_q : storage, read array<u32> — each row's codes as the format stores them: the
//                     row's cols·BITS/8 bytes of the little-endian bit stream (weight k at bits
//                     BITS·k.. of the row, least significant first), as words, the last one
//                     zero-padded. stride_q = ceil(cols · BITS / 32). INT3, 32 codes in 3 words:
//                       word 0 = | c10 low 2 | c9 | ... | c1 | c0 |          (msb ... lsb)
//                       word 1 = | c21 low 1 | c20 | ... | c11 | c10 high 1 |
//                       word 2 = | c31 | ... | c22 | c21 high 2 |
//   @binding(2) w_s : storage, read array<u32> — per row: the group scales, f16, two per word (group
//                     g in half g % 2 of word g / 2; one f32 word instead when the row is one group:
//                     per-channel scales are f32), then, asymmetric only, the zero points, ZB bits
//                     each (ZB = 2 for INT2, 4 for INT3, 8 above), 32 / ZB per word.
//                     stride_s = scale words + ceil(groups · ZB / 32) (asym), groups = cols / GROUP_SIZE;
//                     per tensor: one row's words, stride_s = 0 (every row reads them).
//                     Symmetric codes are offset binary: zero = 2^(BITS−1).
// Override constants:
//   BITS (u32, 2, 3, 5, 6 or 7), GROUP_SIZE (u32, a multiple of 8 dividing cols), ASYM (bool).
// Decoding is scale · f32(code − zero), exact like the CPU reference: gather_rows is bit-exact.

override BITS: u32 = 3u;
override GROUP_SIZE: u32 = 64u;
override ASYM: bool = false;

@group(0) @binding(1) var<storage, read> w_q: array<u32>;
@group(0) @binding(2) var<storage, read> w_s: array<u32>;

// Bits of one stored zero point.
fn zero_bits() -> u32 {
    if (BITS == 2u) {
        return 2u;
    }
    return select(8u, 4u, BITS <= 4u);
}

// (scale, zero point) of the group holding chunk c of a row.
fn scale_zero(row: u32, c: u32) -> vec2<f32> {
    let g = (8u * c) / GROUP_SIZE;
    let groups = params.cols / GROUP_SIZE;
    let base = row * params.stride_s;
    var s = bitcast<f32>(w_s[base]);
    var scale_words = 1u;
    if (groups > 1u) {
        s = unpack2x16float(w_s[base + g / 2u])[g % 2u];
        scale_words = (groups + 1u) / 2u;
    }
    var z = f32(1u << (BITS - 1u));
    if (ASYM) {
        let zb = zero_bits();
        let per = 32u / zb;
        z = f32(extractBits(w_s[base + scale_words + g / per], (g % per) * zb, zb));
    }
    return vec2<f32>(s, z);
}

// Bits o..o+32 of the 64-bit value b:a (o < 32).
fn funnel(a: u32, b: u32, o: u32) -> u32 {
    if (o == 0u) {
        return a;
    }
    return (a >> o) | (b << (32u - o));
}

// The BITS-bit code at bit q (< 64 − BITS) of the 64-bit value hi:lo.
fn code_at(lo: u32, hi: u32, q: u32) -> f32 {
    if (q >= 32u) {
        return f32(extractBits(hi, q - 32u, BITS));
    }
    var v = extractBits(lo, q, BITS); // WGSL clamps the count to the bits left in lo
    if (q + BITS > 32u) {
        v |= extractBits(hi, 0u, q + BITS - 32u) << (32u - q);
    }
    return f32(v);
}

// The 8 codes of chunk c of a row: 8·BITS bits from bit 8·BITS·c, spanning up to 3 words (a word is
// read only when the chunk reaches into it, so nothing past the row's last word is read).
fn codes8(row: u32, c: u32) -> Chunk8 {
    let start = 8u * BITS * c;
    let i = row * params.stride_q + start / 32u;
    let o = start % 32u;
    let w0 = w_q[i];
    var w1 = 0u;
    var w2 = 0u;
    if (o + 8u * BITS > 32u) {
        w1 = w_q[i + 1u];
    }
    if (o + 8u * BITS > 64u) {
        w2 = w_q[i + 2u];
    }
    let lo = funnel(w0, w1, o);
    let hi = funnel(w1, w2, o);
    let b = BITS;
    return Chunk8(
        vec4<f32>(code_at(lo, hi, 0u), code_at(lo, hi, b), code_at(lo, hi, 2u * b), code_at(lo, hi, 3u * b)),
        vec4<f32>(code_at(lo, hi, 4u * b), code_at(lo, hi, 5u * b), code_at(lo, hi, 6u * b), code_at(lo, hi, 7u * b)),
    );
}

fn decode8(row: u32, c: u32) -> Chunk8 {
    let sz = scale_zero(row, c);
    let q = codes8(row, c);
    return Chunk8(sz.x * (q.lo - sz.y), sz.x * (q.hi - sz.y));
}

// Row-sharing GEMVs only (gemv_rows, gemv_subgroup): row[8c..8c+8] · a.v factored as
// s·(Σ q·v − z·Σ v) (Σ v shared by the rows); dot16_row: chunks c, c + 1 (c even) with one scale
// (and zero) load when they share a group (GROUP_SIZE a multiple of 16). dot32_row comes from
// matmul_dot32.wgsl.
fn dot8_row(row: u32, c: u32, a: Act8) -> f32 {
    let sz = scale_zero(row, c);
    return sz.x * (dot8(codes8(row, c), a.v) - sz.y * a.sum);
}

fn dot16_row(row: u32, c: u32, a0: Act8, a1: Act8) -> f32 {
    if (GROUP_SIZE % 16u != 0u) {
        return dot8_row(row, c, a0) + dot8_row(row, c + 1u, a1);
    }
    let sz = scale_zero(row, c);
    let q = dot8(codes8(row, c), a0.v) + dot8(codes8(row, c + 1u), a1.v);
    return sz.x * (q - sz.y * (a0.sum + a1.sum));
}
