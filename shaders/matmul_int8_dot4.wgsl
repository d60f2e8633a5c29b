// matmul_int8_dot4.wgsl — W8A8 with integer dot products: int8 weights (int8-sym-channel, one f32
// scale per row) times per-token int8 activation codes (one f32 scale per token), summed exactly
// in i32 four products at a time (`idot4`, from shaders/int8_dot4_packed.wgsl or
// shaders/int8_dot4_unpacked.wgsl, one of which is prepended), then scaled once per output:
// y[t, r] = f32(Σ_k qa[t,k]·qw[r,k]) · (sa[t] · sw[r]), the CPU integer path's operations in its
// order (model/int_path.rs `token_tile`). Integer sums are exact, so they equal the CPU's in any
// order; see crate/src/gpu/int8_dot4.rs for why the float parts are bit-exact too.
//
// Bindings (group 0; each entry point's automatic layout keeps what it uses, at most 3 storage
// buffers, within WebGPU's downlevel limit of 4):
//   @binding(0) params : uniform Int8Params (below)
//   @binding(1) w      : storage, read        array<u32> — rows × words code words (byte j of word i
//                        of row r = code 4i + j, two's complement, zero past cols), then rows f32
//                        scales (bits) at w_scales                          (gemv, gemm)
//   @binding(2) x      : storage, read        array<f32> — n × cols activations   (quantize_tokens)
//   @binding(3) acts   : storage, read_write  array<u32> — n × words code words in the layout of w,
//                        then n f32 token scales (bits) at a_scales; written by quantize_tokens,
//                        read by gemv and gemm (`acts_in`, same binding)
//   @binding(4) y      : storage, read_write  array<f32> — y[t·rows + r]         (gemv, gemm)
// Override constants:
//   ROW_THREADS (u32, power of two ≤ 64, default 1) — gemv threads sharing one row (their i32
//     partial sums added in workgroup memory; 1 on CPU adapters: no barrier).
//   GEMV_ROWS (u32, 1..=4, default 1; > 1 only with ROW_THREADS = 1) — consecutive rows one gemv
//     invocation computes, each activation word loaded once for all of them (CPU adapters).
// Entry points (dispatch):
//   quantize_tokens — one workgroup of 64 per token, (n, 1, 1): the CPU's per-token rule
//                     (TokenCodes::per_token): s = max|x| / 127, q = clamp(round_half_even(x ·
//                     (1/s)), ±127); both divisions correctly rounded by `div_rn` (WGSL's `/` may
//                     be 2.5 ulp off); s = 0 gives zero codes.
//   gemv            — n = 1: 64 · GEMV_ROWS / ROW_THREADS rows per workgroup,
//                     (ceil(rows · ROW_THREADS / (64 · GEMV_ROWS)), 1, 1).
//   gemm            — n ≥ 1: one row × TOKENS tokens per invocation (each weight word loaded once
//                     for them), (ceil(rows/64), ceil(n/TOKENS), 1).

struct Int8Params {
    rows: u32,
    cols: u32,
    n: u32,
    words: u32,     // ceil(cols / 4): code words per row (weights and activations)
    w_scales: u32,  // rows · words: index of the first weight scale in w
    a_scales: u32,  // n · words: index of the first token scale in acts
    _pad0: u32,
    _pad1: u32,
}

const WG: u32 = 64u;
const TOKENS: u32 = 4u;

override ROW_THREADS: u32 = 1u;
override GEMV_ROWS: u32 = 1u;

@group(0) @binding(0) var<uniform> params: Int8Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> acts: array<u32>;
@group(0) @binding(3) var<storage, read> acts_in: array<u32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

var<workgroup> amax_part: array<f32, WG>;
var<workgroup> sum_part: array<i32, WG>;

// a / b rounded to nearest, ties to even, for positive normal a and b whose quotient is normal:
// the 24-bit mantissa quotient by restoring division, rounded with the remainder. The CPU twin
// (`int8_dot4::div_rn`) is tested equal to IEEE division.
fn div_rn(a: f32, b: f32) -> f32 {
    let ab = bitcast<u32>(a);
    let bb = bitcast<u32>(b);
    var e = i32(ab >> 23u) - i32(bb >> 23u);
    var r = (ab & 0x7FFFFFu) | 0x800000u;
    let mb = (bb & 0x7FFFFFu) | 0x800000u;
    if (r < mb) {
        r = r << 1u;
        e = e - 1;
    }
    var q = 0u;
    for (var i = 0u; i < 24u; i = i + 1u) {
        q = q << 1u;
        if (r >= mb) {
            r = r - mb;
            q = q | 1u;
        }
        r = r << 1u;
    }
    // r is twice the remainder: above mb, more than half an ulp; equal, a tie.
    if (r > mb || (r == mb && (q & 1u) == 1u)) {
        q = q + 1u;
    }
    if (q == 0x1000000u) {
        q = 0x800000u;
        e = e + 1;
    }
    return bitcast<f32>((u32(e + 127) << 23u) | (q & 0x7FFFFFu));
}

// 127 · 2^-126 (bits 0x03FE0000): a smaller max|x| has a subnormal max|x| / 127, which div_rn
// does not produce (module docs of crate/src/gpu/int8_dot4.rs).
const TINY_AMAX: f32 = 1.4928778e-36;

@compute @workgroup_size(WG)
fn quantize_tokens(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = wid.x;
    let base = t * params.cols;
    var m = 0.0;
    for (var k = lid; k < params.cols; k = k + WG) {
        m = max(m, abs(x[base + k]));
    }
    amax_part[lid] = m;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            amax_part[lid] = max(amax_part[lid], amax_part[lid + s]);
        }
        workgroupBarrier();
    }
    let amax = amax_part[0];
    var scale = 0.0;
    var inv = 0.0;
    if (amax >= TINY_AMAX) {
        scale = div_rn(amax, 127.0);
        inv = div_rn(1.0, scale);
    } else if (amax > 0.0) {
        scale = amax / 127.0;
        inv = 1.0 / scale;
    }
    for (var i = lid; i < params.words; i = i + WG) {
        var word = 0u;
        for (var j = 0u; j < 4u; j = j + 1u) {
            let k = 4u * i + j;
            if (k < params.cols) {
                let q = i32(clamp(round(x[base + k] * inv), -127.0, 127.0));
                word = word | ((bitcast<u32>(q) & 0xFFu) << (8u * j));
            }
        }
        acts[t * params.words + i] = word;
    }
    if (lid == 0u) {
        acts[params.a_scales + t] = bitcast<u32>(scale);
    }
}

// The epilogue shared by gemv and gemm: the CPU's `sumi as f32 * (s_x * s_w)`.
fn store(t: u32, r: u32, sum: i32) {
    let sa = bitcast<f32>(acts_in[params.a_scales + t]);
    let sw = bitcast<f32>(w[params.w_scales + r]);
    y[t * params.rows + r] = f32(sum) * (sa * sw);
}

@compute @workgroup_size(WG)
fn gemv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    if (GEMV_ROWS > 1u) {
        gemv_row_run((wid.x * WG + lid) * GEMV_ROWS);
        return;
    }
    let r = wid.x * (WG / ROW_THREADS) + lid / ROW_THREADS;
    let lane = lid % ROW_THREADS;
    let words = params.words;
    var acc = 0;
    if (r < params.rows) {
        let row = r * words;
        for (var i = lane; i < words; i = i + ROW_THREADS) {
            acc = acc + idot4(w[row + i], acts_in[i]);
        }
    }
    if (ROW_THREADS > 1u) {
        sum_part[lid] = acc;
        workgroupBarrier();
        for (var s = ROW_THREADS / 2u; s > 0u; s = s >> 1u) {
            if (lane < s) {
                sum_part[lid] = sum_part[lid] + sum_part[lid + s];
            }
            workgroupBarrier();
        }
        acc = sum_part[lid];
    }
    if (r < params.rows && lane == 0u) {
        store(0u, r, acc);
    }
}

@compute @workgroup_size(WG)
fn gemm(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    let t0 = gid.y * TOKENS;
    if (r >= params.rows) {
        return;
    }
    let words = params.words;
    let count = min(TOKENS, params.n - t0);
    var acc = vec4<i32>(0);
    for (var i = 0u; i < words; i = i + 1u) {
        let wv = w[r * words + i];
        for (var j = 0u; j < count; j = j + 1u) {
            acc[j] = acc[j] + idot4(wv, acts_in[(t0 + j) * words + i]);
        }
    }
    for (var j = 0u; j < count; j = j + 1u) {
        store(t0 + j, r, acc[j]);
    }
}

// GEMV_ROWS consecutive rows from r0 (rows past the end read clamped, never written).
fn gemv_row_run(r0: u32) {
    let words = params.words;
    let last = params.rows - 1u;
    var acc = vec4<i32>(0);
    for (var i = 0u; i < words; i = i + 1u) {
        let a = acts_in[i];
        for (var j = 0u; j < GEMV_ROWS; j = j + 1u) {
            acc[j] = acc[j] + idot4(w[min(r0 + j, last) * words + i], a);
        }
    }
    for (var j = 0u; j < GEMV_ROWS; j = j + 1u) {
        if (r0 + j < params.rows) {
            store(0u, r0 + j, acc[j]);
        }
    }
}
