// kv_write.wgsl — stores the keys and values of rows r < step.n at positions step.pos0 + r of one
// layer's KV cache. The cache is ONE u32 buffer per layer (so every kernel stays within the
// downlevel limit of 4 storage buffers per stage):
//   [keys: CAPACITY·KV_DIM/vpw words][values: same][int8 only: key scales CAPACITY·N_KV_HEADS f32]
//   [int8 only: value scales CAPACITY·N_KV_HEADS f32]   (vpw = values per word: 1, 2 or 4)
// Within the keys (or values), value e = pos·KV_DIM + kv_head·HEAD_DIM + d is stored by KV_FORMAT:
//   0 = f32:  word e = bits of value e (e = pos·KV_DIM + kv_head·HEAD_DIM + d);
//   1 = f16:  word e/2 = pack2x16float(value e&~1, value e|1) — no shader-f16 feature needed;
//   2 = int8: word e/4 holds value e in byte e%4 (little end first) as a signed code
//             q = round_half_even(x / scale) clamped to ±127, with one scale per (pos, kv_head):
//             scale = max|x| / 127 over the head's HEAD_DIM values (0 for an all-zero head).
//
// Bindings (group 0):
//   @binding(0) step    : uniform Step                   — pos0, n
//   @binding(1) k       : storage, read array<f32>       — [n, KV_DIM] this step's keys (after RoPE)
//   @binding(2) v       : storage, read array<f32>       — [n, KV_DIM] this step's values
//   @binding(3) cache   : storage, read_write array<u32> — the layer's cache, layout above
// Override constants: KV_DIM = N_KV_HEADS·HEAD_DIM, HEAD_DIM (multiple of 4 for int8, of 2 for f16),
//   N_KV_HEADS, CAPACITY (positions), KV_FORMAT (0, 1, 2 as above).
// Dispatch: one thread per (row, kv head, keys|values): 2·n·N_KV_HEADS threads in workgroups of 64.
// CPU twin: `quantlab::gpu::forward::kernels::kv_store_cpu` / `kv_load_cpu`.

override KV_DIM: u32;
override HEAD_DIM: u32;
override N_KV_HEADS: u32;
override CAPACITY: u32;
override KV_FORMAT: u32 = 0u;
const WG: u32 = 64u;

struct Step { pos0: u32, n: u32, top_k: u32, _pad: u32, temperature: f32, top_p: f32, u: f32, _pad2: f32 }

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> cache: array<u32>;

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

fn load(is_v: bool, i: u32) -> f32 {
    if (is_v) {
        return v[i];
    }
    return k[i];
}

fn store_word(is_v: bool, w: u32, bits: u32) {
    cache[select(0u, region_words(), is_v) + w] = bits;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= 2u * step.n * N_KV_HEADS) {
        return;
    }
    let is_v = i >= step.n * N_KV_HEADS;
    let j = i % (step.n * N_KV_HEADS);
    let row = j / N_KV_HEADS;
    let head = j % N_KV_HEADS;
    let src = row * KV_DIM + head * HEAD_DIM;
    let pos = step.pos0 + row;
    let dst = pos * KV_DIM + head * HEAD_DIM;
    if (KV_FORMAT == 0u) {
        for (var d = 0u; d < HEAD_DIM; d++) {
            store_word(is_v, dst + d, bitcast<u32>(load(is_v, src + d)));
        }
    } else if (KV_FORMAT == 1u) {
        for (var d = 0u; d < HEAD_DIM; d += 2u) {
            store_word(is_v, (dst + d) / 2u, pack2x16float(vec2<f32>(load(is_v, src + d), load(is_v, src + d + 1u))));
        }
    } else {
        var amax = 0.0;
        for (var d = 0u; d < HEAD_DIM; d++) {
            amax = max(amax, abs(load(is_v, src + d)));
        }
        let scale = amax / 127.0;
        var inv = 0.0;
        if (amax > 0.0) {
            inv = 1.0 / scale;
        }
        let scales = 2u * region_words() + select(0u, CAPACITY * N_KV_HEADS, is_v);
        cache[scales + pos * N_KV_HEADS + head] = bitcast<u32>(scale);
        for (var d = 0u; d < HEAD_DIM; d += 4u) {
            var word = 0u;
            for (var b = 0u; b < 4u; b++) {
                let code = i32(clamp(round(load(is_v, src + d + b) * inv), -127.0, 127.0));
                word |= (bitcast<u32>(code) & 0xffu) << (8u * b);
            }
            store_word(is_v, (dst + d) / 4u, word);
        }
    }
}
