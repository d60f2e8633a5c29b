// matmul_k_scales.wgsl — the super-block scales Q4_K and Q5_K share (ggml packs both alike: f16 d
// and dmin, then a 6-bit scale S_j and minimum M_j for each of the 8 sub-blocks of 32), repacked
// with the 6-bit packing undone. `Kernel::source()` appends it to matmul_q4_k.wgsl and
// matmul_q5_k.wgsl, which add the codes in w_q.
//
// Binding (group 0):
//   @binding(2) w_s : storage, read array<u32> — 5 words per super-block of 256: [d | dmin as an
//                     f16 pair (d in the low half), S_0..S_3, S_4..S_7, M_0..M_3, M_4..M_7 as
//                     bytes]. stride_s = 5 · cols / 256.

@group(0) @binding(2) var<storage, read> w_s: array<u32>;

// (d·S_j, dmin·M_j) of the sub-block of chunk c (chunks 4j..4j + 4 of its super-block are
// sub-block j): the CPU reference's d1 and m1, both exact in f32 (11 × 6 bits).
fn k_scale_min(row: u32, c: u32) -> vec2<f32> {
    let base = row * params.stride_s + 5u * (c / 32u);
    let j = (c % 32u) / 4u;
    let dm = unpack2x16float(w_s[base]);
    let sc = f32(extractBits(w_s[base + 1u + j / 4u], (j % 4u) * 8u, 8u));
    let mn = f32(extractBits(w_s[base + 3u + j / 4u], (j % 4u) * 8u, 8u));
    return vec2<f32>(dm.x * sc, dm.y * mn);
}
