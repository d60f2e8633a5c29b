// attention.wgsl — causal multi-head attention of step.n query rows against one layer's KV cache
// (decode: n = 1; prefill: n rows at positions step.pos0 .. step.pos0 + n − 1). Query row r at
// position p = pos0 + r attends to cache positions 0..=p; query head h reads kv head
// h / (N_HEADS / N_KV_HEADS) (grouped-query attention). Per (row, head):
//   s_t = (q · k_t) / sqrt(HEAD_DIM);  a = softmax(s) (max subtracted);  out = Σ_t a_t · v_t.
// The cache (one u32 buffer per layer: keys, values, int8 scales) is read in its KV_FORMAT; see
// kv_cache.wgsl for the layout.
//
// Bindings (group 0):
//   @binding(0) step    : uniform Step                   — pos0, n
//   @binding(1) q       : storage, read array<f32>       — [n, N_HEADS·HEAD_DIM] queries (after RoPE)
//   @binding(2) cache   : storage, read array<u32>       — the layer's KV cache (kv_write.wgsl)
//   @binding(3) scores  : storage, read_write array<f32> — [n, N_HEADS, CAPACITY] scratch: the
//                          scores, then the unnormalised weights exp(s_t − max)
//   @binding(4) out     : storage, read_write array<f32> — [n, N_HEADS·HEAD_DIM]
// Override constants: N_HEADS, and those of kv_cache.wgsl (N_KV_HEADS, HEAD_DIM, CAPACITY, KV_FORMAT).
// Dispatch: (N_HEADS, n, 1) workgroups of 64 threads: threads split the positions for the scores
//   and the head's dimensions for the weighted sum; max and sum are reduced in workgroup memory.
// CPU twin: the attention loop of `model::forward` (`gpu::forward::kernels::attention_cpu`).
// Preamble (prepended by the host): shaders/forward_step.wgsl (Step at binding 0, WG), then
// shaders/kv_cache.wgsl (the layout's overrides, region_words, scales_offset).

override N_HEADS: u32;

@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> cache: array<u32>;
@group(0) @binding(3) var<storage, read_write> scores: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> red: array<f32, WG>;

// Key (or value) e = pos·KV_DIM + kv_head·HEAD_DIM + d, decoded to f32; scale_at = pos·N_KV_HEADS + kv_head.
fn cached(is_v: bool, e: u32, scale_at: u32) -> f32 {
    let region = select(0u, region_words(), is_v);
    if (KV_FORMAT == 0u) {
        return bitcast<f32>(cache[region + e]);
    }
    if (KV_FORMAT == 1u) {
        let pair = unpack2x16float(cache[region + e / 2u]);
        return select(pair.x, pair.y, (e & 1u) == 1u);
    }
    let word = cache[region + e / 4u];
    let code = bitcast<i32>(word << (24u - 8u * (e & 3u))) >> 24u;
    return f32(code) * bitcast<f32>(cache[scales_offset(is_v) + scale_at]);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let head = wid.x;
    let row = wid.y;
    if (row >= step.n) {
        return;
    }
    let kv_head = head / (N_HEADS / N_KV_HEADS);
    let len = step.pos0 + row + 1u;
    let q_at = row * N_HEADS * HEAD_DIM + head * HEAD_DIM;
    let s_at = (row * N_HEADS + head) * CAPACITY;
    let scale = 1.0 / sqrt(f32(HEAD_DIM));

    // Scores of this thread's positions, and their max.
    var local_max = -3.0e38;
    for (var t = lid.x; t < len; t += WG) {
        let base = t * KV_DIM + kv_head * HEAD_DIM;
        let scale_at = t * N_KV_HEADS + kv_head;
        var dot = 0.0;
        for (var d = 0u; d < HEAD_DIM; d++) {
            dot += q[q_at + d] * cached(false, base + d, scale_at);
        }
        let s = dot * scale;
        scores[s_at + t] = s;
        local_max = max(local_max, s);
    }
    red[lid.x] = local_max;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        if (lid.x < stride) {
            red[lid.x] = max(red[lid.x], red[lid.x + stride]);
        }
        workgroupBarrier();
    }
    let m = red[0];
    workgroupBarrier();

    // exp(s − max) in place (each thread its own positions), and the sum.
    var local_sum = 0.0;
    for (var t = lid.x; t < len; t += WG) {
        let e = exp(scores[s_at + t] - m);
        scores[s_at + t] = e;
        local_sum += e;
    }
    red[lid.x] = local_sum;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        if (lid.x < stride) {
            red[lid.x] += red[lid.x + stride];
        }
        workgroupBarrier();
    }
    let sum = red[0];
    // Every thread now reads weights other threads wrote.
    storageBarrier();

    for (var d = lid.x; d < HEAD_DIM; d += WG) {
        var acc = 0.0;
        for (var t = 0u; t < len; t++) {
            let a = scores[s_at + t] / sum;
            acc += a * cached(true, t * KV_DIM + kv_head * HEAD_DIM + d, t * N_KV_HEADS + kv_head);
        }
        out[q_at + d] = acc;
    }
}
