// sample.wgsl — picks the next token from one row of logits on the GPU, so decode reads back
// 4 bytes instead of VOCAB floats. One workgroup of SAMPLE_WG = 256 threads.
//
//   step.top_k == 1: greedy — the largest logit, the lowest id on ties, NaN never wins (id 0 when
//     every logit is NaN), exactly `model::sampler::argmax`.
//   1 < step.top_k ≤ MAX_K: top-k sampling like `model::Sampler::sample` — the top_k candidates
//     in the order (logit descending, id ascending) are selected in top_k rounds of a workgroup
//     argmax over the logits after the previous pick; thread 0 then takes softmax(logit / T)
//     over them (f32, max subtracted), keeps the shortest prefix whose probability reaches
//     step.top_p (all if top_p ≥ 1), and returns the first candidate whose cumulative
//     probability exceeds step.u · total (the last one if rounding leaves none). step.u is the
//     host's uniform draw from the same PCG32 stream the CPU sampler uses.
//
// Bindings (group 0):
//   @binding(0) step   : uniform Step                   — top_k, temperature, top_p, u
//   @binding(1) logits : storage, read array<f32>       — [VOCAB] (starting at element 0)
//   @binding(2) result : storage, read_write array<u32> — [1] the chosen token id
// Override constants: VOCAB (u32).
// Dispatch: (1, 1, 1).
// CPU twin: `quantlab::model::sampler::{argmax, Sampler::sample}` (`kernels::sample_cpu`).
// Preamble (shaders/forward_step.wgsl, prepended by the host): the Step uniform at binding 0 and WG.

override VOCAB: u32;
const SAMPLE_WG: u32 = 256u;
const MAX_K: u32 = 64u;
const NONE: u32 = 0xffffffffu;

@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> result: array<u32>;

var<workgroup> red_v: array<f32, SAMPLE_WG>;
var<workgroup> red_i: array<u32, SAMPLE_WG>;
var<workgroup> cand_v: array<f32, MAX_K>;
var<workgroup> cand_i: array<u32, MAX_K>;

// Compilers may assume floats are never NaN; test the bits instead.
fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// (va, ia) comes before (vb, ib) in the order logit descending, id ascending; NONE comes last.
fn before(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
    if (ia == NONE) {
        return false;
    }
    if (ib == NONE) {
        return true;
    }
    return va > vb || (va == vb && ia < ib);
}

@compute @workgroup_size(SAMPLE_WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
    let rounds = max(1u, min(step.top_k, MAX_K));
    // The previous pick: candidates must come after it in the order (none yet).
    var prev_v = 0.0;
    var prev_i = NONE;
    var count = 0u;
    for (var r = 0u; r < rounds; r++) {
        var best_v = 0.0;
        var best_i = NONE;
        for (var i = lid.x; i < VOCAB; i += SAMPLE_WG) {
            let v = logits[i];
            let after_prev = prev_i == NONE || before(prev_v, prev_i, v, i);
            if (!is_nan(v) && after_prev && before(v, i, best_v, best_i)) {
                best_v = v;
                best_i = i;
            }
        }
        red_v[lid.x] = best_v;
        red_i[lid.x] = best_i;
        workgroupBarrier();
        for (var stride = SAMPLE_WG / 2u; stride > 0u; stride /= 2u) {
            if (lid.x < stride && before(red_v[lid.x + stride], red_i[lid.x + stride], red_v[lid.x], red_i[lid.x])) {
                red_v[lid.x] = red_v[lid.x + stride];
                red_i[lid.x] = red_i[lid.x + stride];
            }
            workgroupBarrier();
        }
        prev_v = red_v[0];
        prev_i = red_i[0];
        if (lid.x == 0u) {
            cand_v[r] = prev_v;
            cand_i[r] = prev_i;
        }
        workgroupBarrier();
    }
    if (lid.x != 0u) {
        return;
    }
    for (var r = 0u; r < rounds; r++) {
        if (cand_i[r] != NONE) {
            count = r + 1u;
        }
    }
    if (count == 0u) {
        result[0] = 0u;
        return;
    }
    if (rounds == 1u || count == 1u) {
        result[0] = cand_i[0];
        return;
    }
    var probs: array<f32, MAX_K>;
    var sum = 0.0;
    for (var r = 0u; r < count; r++) {
        probs[r] = exp((cand_v[r] - cand_v[0]) / step.temperature);
        sum += probs[r];
    }
    var keep = count;
    if (step.top_p < 1.0) {
        var cum = 0.0;
        for (var r = 0u; r < count; r++) {
            probs[r] /= sum;
            cum += probs[r];
            if (cum >= step.top_p) {
                keep = r + 1u;
                break;
            }
        }
        sum = 1.0;
    }
    var total = 0.0;
    for (var r = 0u; r < keep; r++) {
        total += probs[r] / sum;
    }
    let threshold = step.u * total;
    var cum = 0.0;
    for (var r = 0u; r < keep; r++) {
        cum += probs[r] / sum;
        if (threshold < cum) {
            result[0] = cand_i[r];
            return;
        }
    }
    result[0] = cand_i[keep - 1u];
}
