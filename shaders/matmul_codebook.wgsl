// matmul_codebook.wgsl — bitsandbytes NF4 / FP4 (formats/bnb): 4-bit codes into a 16-entry
// codebook, one absmax per block of BLOCK values; x = codebook[code] · absmax. Concatenated with
// matmul_common.wgsl (entry points gemv, gemm, gather_rows; bindings 0 and 4..7 and the override
// WG_SIZE are documented there).
//
// Bindings (group 0):
//   @binding(1) w_q : storage, read array<u32> — codes in row order, 8 per word (bitsandbytes puts
//                     the first value in the high nibble; the repack swaps). stride_q = cols / 8.
//   @binding(2) w_s : storage, read array<f32> — the f32 absmax of each block (double-quantized
//                     absmax decoded at upload). stride_s = cols / BLOCK.
//   @binding(3) table : the 16 codebook values (matmul_table16.wgsl, appended by the host,
//                     declares and documents it).
// Override constants: BLOCK (u32, values per absmax; a multiple of 8 dividing cols).
// Decoding is codebook[code] · absmax, the CPU reference's one rounding: gather_rows is bit-exact.

override BLOCK: u32 = 64u;
// The row-sharing GEMVs' dots (dot8_row, dot16_row, dot32_row) come from matmul_dot_decoded.wgsl
// and matmul_dot32.wgsl (appended by the host).

@group(0) @binding(1) var<storage, read> w_q: array<u32>;
@group(0) @binding(2) var<storage, read> w_s: array<f32>;

fn decode8(row: u32, c: u32) -> Chunk8 {
    let a = w_s[row * params.stride_s + (8u * c) / BLOCK];
    let v = table8(w_q[row * params.stride_q + c]);
    return Chunk8(v.lo * a, v.hi * a);
}
