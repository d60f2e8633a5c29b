// kv_write.wgsl — stores the keys and values of rows r < step.n at positions step.pos0 + r of one
// layer's KV cache, in the layout and KV_FORMAT of kv_cache.wgsl (one u32 buffer per layer).
//
// Bindings (group 0):
//   @binding(0) step    : uniform Step                   — pos0, n
//   @binding(1) k       : storage, read array<f32>       — [n, KV_DIM] this step's keys (after RoPE)
//   @binding(2) v       : storage, read array<f32>       — [n, KV_DIM] this step's values
//   @binding(3) cache   : storage, read_write array<u32> — the layer's cache (kv_cache.wgsl)
// Override constants: those of kv_cache.wgsl (N_KV_HEADS, HEAD_DIM, CAPACITY, KV_FORMAT).
// Dispatch: one thread per (row, kv head, keys|values): 2·n·N_KV_HEADS threads in workgroups of 64.
// CPU twin: `quantlab::gpu::forward::kernels::kv_store_cpu` / `kv_load_cpu`.
// Preamble (prepended by the host): shaders/forward_step.wgsl (Step at binding 0, WG), then
// shaders/kv_cache.wgsl (the layout's overrides, region_words, scales_offset).

@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> cache: array<u32>;

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
        cache[scales_offset(is_v) + pos * N_KV_HEADS + head] = bitcast<u32>(scale);
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
