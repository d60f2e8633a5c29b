// kv_cache.wgsl — the KV cache layout shared by kv_write.wgsl (which writes it) and
// attention.wgsl (which reads it); `Kernel::source()` puts it in front of both. One u32 buffer per
// layer (so every kernel stays within the downlevel limit of 4 storage buffers per stage):
//   [keys: CAPACITY·KV_DIM/vpw words][values: same][int8 only: key scales CAPACITY·N_KV_HEADS f32]
//   [int8 only: value scales CAPACITY·N_KV_HEADS f32]   (vpw = values per word: 1, 2 or 4)
// Within the keys (or values), value e = pos·KV_DIM + kv_head·HEAD_DIM + d is stored by KV_FORMAT:
//   0 = f32:  word e = bits of value e;
//   1 = f16:  word e/2 = pack2x16float(value e&~1, value e|1) — no shader-f16 feature needed;
//   2 = int8: word e/4 holds value e in byte e%4 (little end first) as a signed code
//             q = round_half_even(x / scale) clamped to ±127, with one scale per (pos, kv_head):
//             scale = max|x| / 127 over the head's HEAD_DIM values (0 for an all-zero head).
// Host twin: `gpu::forward::kernels::KvFormat` (region_words, layer_cache_bytes).
//
// Override constants: N_KV_HEADS, HEAD_DIM (multiple of 4 for int8, of 2 for f16), CAPACITY
//   (positions), KV_FORMAT (0, 1, 2 as above). KV_DIM = N_KV_HEADS·HEAD_DIM follows from them.

override N_KV_HEADS: u32;
override HEAD_DIM: u32;
override CAPACITY: u32;
override KV_FORMAT: u32 = 0u;
override KV_DIM: u32 = N_KV_HEADS * HEAD_DIM;

// Words of the keys region (= offset of the values region).
fn region_words() -> u32 {
    if (KV_FORMAT == 0u) {
        return CAPACITY * KV_DIM;
    }
    if (KV_FORMAT == 1u) {
        return CAPACITY * KV_DIM / 2u;
    }
    return CAPACITY * KV_DIM / 4u;
}

// Word offset of the int8 scales of the keys (or the values), one per (pos, kv_head).
fn scales_offset(is_v: bool) -> u32 {
    return 2u * region_words() + select(0u, CAPACITY * N_KV_HEADS, is_v);
}
