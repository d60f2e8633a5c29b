// matmul_int.wgsl — quantlab INT4/INT8 (formats/int.rs), symmetric or asymmetric, one f32 scale
// (and zero point) per group of GROUP_SIZE values along a row (per channel and per tensor:
// GROUP_SIZE = cols).
// Concatenated with matmul_common.wgsl (entry points gemv, gemm, gather_rows; bindings 0 and 4..7
// and the override WG_SIZE are documented there).
//
// Bindings (group 0):
//   @binding(1) w_q : storage, read array<u32> — the codes as stored (a little-endian bit stream,
//                     BITS bits each, weight k of a row at bits BITS·k of the row's words).
//                     stride_q = cols · BITS / 32 rounded up to a multiple of 4 (zero words
//                     pad each row to whole 16-byte vec4s: the subgroup GEMV reads the same
//                     buffer as w_q4: array<vec4<u32>>, aligned loads of 4 words).
//   @binding(2) w_s : storage, read array<u32> — per row: one f32 scale per group (bits; already
//                     f16-rounded for group schemes), then, asymmetric only, the zero points,
//                     4 bytes per word (group g in byte g % 4 of word groups + g / 4).
//                     stride_s = groups (+ ceil(groups / 4) asym), groups = cols / GROUP_SIZE;
//                     per tensor (GROUP_SIZE = cols) the one scale (and zero) is stored once and
//                     stride_s = 0: every row reads words 0 (and 1).
//                     Symmetric codes are offset binary: zero = 2^(BITS−1).
// Override constants:
//   BITS (u32, 4 or 8), GROUP_SIZE (u32, a multiple of 8 dividing cols), ASYM (bool).
// Decoding is scale · f32(code − zero), exact like the CPU reference: gather_rows is bit-exact.

override BITS: u32 = 4u;
override GROUP_SIZE: u32 = 128u;
override ASYM: bool = false;

@group(0) @binding(1) var<storage, read> w_q: array<u32>;
@group(0) @binding(2) var<storage, read> w_s: array<u32>;
// The same codes seen as vec4 words, for the row-sharing GEMVs only (an entry point may use only one
// of w_q, w_q4): one 4-word load costs lavapipe far less than four 1-word loads.
@group(0) @binding(1) var<storage, read> w_q4: array<vec4<u32>>;

// (scale, zero point) of the group holding chunk c of a row.
fn scale_zero(row: u32, c: u32) -> vec2<f32> {
    let g = (8u * c) / GROUP_SIZE;
    let s = bitcast<f32>(w_s[row * params.stride_s + g]);
    var z = f32(1u << (BITS - 1u));
    if (ASYM) {
        let zeros = row * params.stride_s + params.cols / GROUP_SIZE;
        z = f32(extractBits(w_s[zeros + g / 4u], (g % 4u) * 8u, 8u));
    }
    return vec2<f32>(s, z);
}

fn decode8(row: u32, c: u32) -> Chunk8 {
    let sz = scale_zero(row, c);
    let s = sz.x;
    let z = sz.y;
    let i = row * params.stride_q + c * BITS / 4u;
    if (BITS == 4u) {
        let q = nibbles(w_q[i]);
        return Chunk8(s * (q.lo - z), s * (q.hi - z));
    }
    return Chunk8(s * (bytes_u8(w_q[i]) - z), s * (bytes_u8(w_q[i + 1u]) - z));
}

// Row-sharing GEMVs only (gemv_rows, gemv_subgroup), which read the codes through w_q4 only:
// row[8c..8c+8] · a.v factored as s·(Σ q·v − z·Σ v) (Σ v shared by the rows);
// dot16_row: chunks c, c + 1 (c even) with one scale (and zero) load when they share a group
// (GROUP_SIZE a multiple of 16); dot32_row: 4 chunks, below.
fn int_dot(row: u32, c: u32, q: f32, vsum: f32) -> f32 {
    let sz = scale_zero(row, c);
    return sz.x * (q - sz.y * vsum);
}

// Word i of the codes through w_q4 (rows are padded to whole vec4s, see the layout).
fn code_word(i: u32) -> u32 {
    return w_q4[i / 4u][i % 4u];
}

// Σ q·v over chunk c's 8 codes.
fn int_codes_dot(row: u32, c: u32, a: Act8) -> f32 {
    let i = row * params.stride_q + c * BITS / 4u;
    if (BITS == 4u) {
        return nibble_dot(code_word(i), a);
    }
    return dot(bytes_u8(code_word(i)), a.v.lo) + dot(bytes_u8(code_word(i + 1u)), a.v.hi);
}

fn dot8_row(row: u32, c: u32, a: Act8) -> f32 {
    return int_dot(row, c, int_codes_dot(row, c, a), a.sum);
}

fn dot16_row(row: u32, c: u32, a0: Act8, a1: Act8) -> f32 {
    if (GROUP_SIZE % 16u != 0u) {
        return dot8_row(row, c, a0) + dot8_row(row, c + 1u, a1);
    }
    // Both chunks' codes from one vec4 load (c even: 2 of its words for 4-bit, all 4 for 8-bit).
    let i = row * params.stride_q + c * BITS / 4u;
    let w = w_q4[i / 4u];
    var q: f32;
    if (BITS == 4u) {
        let pair = select(w.xy, w.zw, i % 4u != 0u);
        q = nibble_dot(pair.x, a0) + nibble_dot(pair.y, a1);
    } else {
        q = bytes_dot16(w, a0, a1);
    }
    return int_dot(row, c, q, a0.sum + a1.sum);
}

// Σ q·v over two chunks of 8-bit codes (4 words).
fn bytes_dot16(w: vec4<u32>, a0: Act8, a1: Act8) -> f32 {
    return (dot(bytes_u8(w.x), a0.v.lo) + dot(bytes_u8(w.y), a0.v.hi)) + (dot(bytes_u8(w.z), a1.v.lo) + dot(bytes_u8(w.w), a1.v.hi));
}

// Chunks c..c + 3 (c a multiple of 4): the 4-bit codes are one aligned vec4 load, the 8-bit ones
// two; one scale (and zero) load when the chunks share a group (GROUP_SIZE a multiple of 32).
fn dot32_row(row: u32, c: u32, a0: Act8, a1: Act8, a2: Act8, a3: Act8) -> f32 {
    if (GROUP_SIZE % 32u != 0u) {
        return dot16_row(row, c, a0, a1) + dot16_row(row, c + 2u, a2, a3);
    }
    let i = (row * params.stride_q + c * BITS / 4u) / 4u;
    var q: f32;
    if (BITS == 4u) {
        let w = w_q4[i];
        q = (nibble_dot(w.x, a0) + nibble_dot(w.y, a1)) + (nibble_dot(w.z, a2) + nibble_dot(w.w, a3));
    } else {
        q = bytes_dot16(w_q4[i], a0, a1) + bytes_dot16(w_q4[i + 1u], a2, a3);
    }
    return int_dot(row, c, q, (a0.sum + a1.sum) + (a2.sum + a3.sum));
}
