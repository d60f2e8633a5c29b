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

fn decode8(row: u32, c: u32) -> Chunk8 {
    let g = (8u * c) / GROUP_SIZE;
    let s = bitcast<f32>(w_s[row * params.stride_s + g]);
    var z = f32(1u << (BITS - 1u));
    if (ASYM) {
        let zeros = row * params.stride_s + params.cols / GROUP_SIZE;
        z = f32(extractBits(w_s[zeros + g / 4u], (g % 4u) * 8u, 8u));
    }
    let i = row * params.stride_q + c * BITS / 4u;
    if (BITS == 4u) {
        let q = nibbles(w_q[i]);
        return Chunk8(s * (q.lo - z), s * (q.hi - z));
    }
    return Chunk8(s * (bytes_u8(w_q[i]) - z), s * (bytes_u8(w_q[i + 1u]) - z));
}
