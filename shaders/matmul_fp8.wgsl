// matmul_fp8.wgsl — quantlab FP8 (formats/fp8.rs): E4M3 ("fn", no infinities) or E5M2 codes, one
// byte per weight, times one f32 scale per tensor or per output channel (row).
// Concatenated with matmul_common.wgsl (entry points gemv, gemv_rows, gemm, gather_rows; bindings
// 0 and 4..7 and the override WG_SIZE are documented there) and matmul_gemv_subgroup.wgsl.
//
// Bindings (group 0):
//   @binding(1) w_q : storage, read array<u32> — the codes as stored, 4 per word, weight k of a row
//                     in byte k % 4 of word k / 4 (chunk c = words 2c, 2c + 1). stride_q = cols / 4
//                     rounded up to a multiple of 4 (zero codes, +0.0, pad each row to whole
//                     16-byte vec4s: the row-sharing GEMVs read the same buffer as w_q4).
//   @binding(2) w_s : storage, read array<u32> — f32 scale bits: per channel one word per row
//                     (stride_s = 1); per tensor one word for the whole matrix (stride_s = 0, so
//                     every row reads word 0).
// Override constants:
//   MANT_BITS (u32, 3 = E4M3, 2 = E5M2) — mantissa bits; the exponent bias follows
//     (7 = 2^(7 − 3 − 1) − 1, 15 = 2^(7 − 2 − 1) − 1).
// Decoding is fp8(code) · s, fp8 exact (built from the code's bits below), one f32 multiply like the
// CPU reference: gather_rows is bit-exact. Codes that are not finite (E4M3 S.1111.111, E5M2
// S.11111.xx) never reach this kernel: the quantizer refuses non-finite inputs, and gpu/repack
// sends a tensor holding one to the generic path.

override MANT_BITS: u32 = 3u;

@group(0) @binding(1) var<storage, read> w_q: array<u32>;
@group(0) @binding(2) var<storage, read> w_s: array<u32>;
// The same codes seen as vec4 words, for the row-sharing GEMVs only (an entry point may use only
// one of w_q, w_q4), as matmul_int.wgsl: one 4-word load costs lavapipe far less than four.
@group(0) @binding(1) var<storage, read> w_q4: array<vec4<u32>>;

// The 4 codes of one word (byte j: weight j) as exact f32 values. A normal code's exponent field is
// rebased from the FP8 bias to f32's 127 by one integer add, its mantissa shifted into place; a
// subnormal one (exponent field 0) is mantissa · 2^(1 − bias − MANT_BITS), an exact product
// (no f32 subnormal on the way: the smallest is 2^−16). ±0 keep their sign, as on the CPU.
fn fp8x4(w: u32) -> vec4<f32> {
    let code = (vec4<u32>(w) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(0xFFu);
    let mag = code & vec4<u32>(0x7Fu);
    let bias = (1u << (6u - MANT_BITS)) - 1u;
    let normal = bitcast<vec4<f32>>((mag << vec4<u32>(23u - MANT_BITS)) + vec4<u32>((127u - bias) << 23u));
    let subnormal = vec4<f32>(mag) * bitcast<f32>((128u - bias - MANT_BITS) << 23u);
    let v = select(normal, subnormal, mag < vec4<u32>(1u << MANT_BITS));
    return bitcast<vec4<f32>>(bitcast<vec4<u32>>(v) | ((code & vec4<u32>(0x80u)) << vec4<u32>(24u)));
}

fn fp8_scale(row: u32) -> f32 {
    return bitcast<f32>(w_s[row * params.stride_s]);
}

fn decode8(row: u32, c: u32) -> Chunk8 {
    let s = fp8_scale(row);
    let i = row * params.stride_q + 2u * c;
    return Chunk8(fp8x4(w_q[i]) * s, fp8x4(w_q[i + 1u]) * s);
}

// Row-sharing GEMVs only (gemv_rows, gemv_subgroup), which read the codes through w_q4 only:
// row[8c..8c+8] · a.v factored as s·Σ fp8(q)·v, the scale loaded and applied once per call.
fn fp8_dot16(w: vec4<u32>, a0: Act8, a1: Act8) -> f32 {
    return (dot(fp8x4(w.x), a0.v.lo) + dot(fp8x4(w.y), a0.v.hi)) + (dot(fp8x4(w.z), a1.v.lo) + dot(fp8x4(w.w), a1.v.hi));
}

fn dot8_row(row: u32, c: u32, a: Act8) -> f32 {
    let i = row * params.stride_q + 2u * c;
    let w = w_q4[i / 4u];
    let pair = select(w.xy, w.zw, i % 4u != 0u);
    return fp8_scale(row) * (dot(fp8x4(pair.x), a.v.lo) + dot(fp8x4(pair.y), a.v.hi));
}

// Chunks c, c + 1 (c even): one aligned vec4 load of their 4 words.
fn dot16_row(row: u32, c: u32, a0: Act8, a1: Act8) -> f32 {
    let i = (row * params.stride_q + 2u * c) / 4u;
    return fp8_scale(row) * fp8_dot16(w_q4[i], a0, a1);
}

// Chunks c..c + 3 (c a multiple of 4): two vec4 loads, one scale.
fn dot32_row(row: u32, c: u32, a0: Act8, a1: Act8, a2: Act8, a3: Act8) -> f32 {
    let i = (row * params.stride_q + 2u * c) / 4u;
    return fp8_scale(row) * (fp8_dot16(w_q4[i], a0, a1) + fp8_dot16(w_q4[i + 1u], a2, a3));
}
