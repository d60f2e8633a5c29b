// matmul_f16_scales.wgsl — one f16 scale per block of 32, the scale array of Q8_0, Q4_0, Q5_0 and
// IQ4_NL. `Kernel::source()` appends it to their format files.
//
// Binding (group 0):
//   @binding(2) w_s : storage, read array<u32> — the f16 block scales, two per word (block b of a
//                     row in half b % 2 of word b / 2). stride_s = ceil(cols / 64).

@group(0) @binding(2) var<storage, read> w_s: array<u32>;

// The scale d of the block holding chunk c (8-weight chunks, 4 per block).
fn block_scale(row: u32, c: u32) -> f32 {
    let b = c / 4u;
    return unpack2x16float(w_s[row * params.stride_s + b / 2u])[b % 2u];
}
