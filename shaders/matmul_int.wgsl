// matmul_int.wgsl — quantlab INT4/INT8 (formats/int.rs), symmetric or asymmetric, one f32 scale
// (and zero point) per group of GROUP_SIZE values along a row (per channel: GROUP_SIZE = cols).
// Concatenated with matmul_common.wgsl (entry points gemv, gemm, gather_rows; bindings 0 and 4..7
// and the override WG_SIZE are documented there).
//
// Bindings (group 0):
//   @binding(1) w_q : storage, read array<u32> — the codes as stored (a little-endian bit stream,
//                     BITS bits each, weight k of a row at bits BITS·k of the row's words).
//                     stride_q = cols · BITS / 32.
//   @binding(2) w_s : storage, read array<u32> — per row: one f32 scale per group (bits; already
//                     f16-rounded for group schemes), then, asymmetric only, the zero points,
//                     4 bytes per word (group g in byte g % 4 of word groups + g / 4).
//                     stride_s = groups (+ ceil(groups / 4) asym), groups = cols / GROUP_SIZE.
//                     Symmetric codes are offset binary: zero = 2^(BITS−1).
// Override constants:
//   BITS (u32, 4 or 8), GROUP_SIZE (u32, a multiple of 8 dividing cols), ASYM (bool).
// Decoding is scale · f32(code − zero), exact like the CPU reference: gather_rows is bit-exact.

override BITS: u32 = 4u;
override GROUP_SIZE: u32 = 128u;
override ASYM: bool = false;

@group(0) @binding(1) var<storage, read> w_q: array<u32>;
@group(0) @binding(2) var<storage, read> w_s: array<u32>;

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

// Subgroup GEMV only (matmul_gemv_subgroup.wgsl): row[8c..8c+8] · a.v factored as
// s·(Σ q·v − z·Σ v) (Σ v shared by the subgroup's rows); dot16_row: chunks c, c + 1 (c even)
// with one scale (and zero) load when they share a group (GROUP_SIZE a multiple of 16).
fn int_dot(row: u32, c: u32, q: f32, vsum: f32) -> f32 {
    let sz = scale_zero(row, c);
    return sz.x * (q - sz.y * vsum);
}

// Σ q·v over chunk c's 8 codes.
fn int_codes_dot(row: u32, c: u32, a: Act8) -> f32 {
    let i = row * params.stride_q + c * BITS / 4u;
    if (BITS == 4u) {
        return nibble_dot(w_q[i], a);
    }
    return dot(bytes_u8(w_q[i]), a.v.lo) + dot(bytes_u8(w_q[i + 1u]), a.v.hi);
}

fn dot8_row(row: u32, c: u32, a: Act8) -> f32 {
    return int_dot(row, c, int_codes_dot(row, c, a), a.sum);
}

fn dot16_row(row: u32, c: u32, a0: Act8, a1: Act8) -> f32 {
    if (GROUP_SIZE % 16u != 0u) {
        return dot8_row(row, c, a0) + dot8_row(row, c + 1u, a1);
    }
    let q = int_codes_dot(row, c, a0) + int_codes_dot(row, c + 1u, a1);
    return int_dot(row, c, q, a0.sum + a1.sum);
}
