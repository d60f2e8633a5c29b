//! The GPU forward's kernels (`quantlab::gpu::forward::kernels`), each against its CPU twin over
//! awkward shapes: RMSNorm, RoPE, SwiGLU and the residual add, the KV store and attention for every
//! KV format, and sampling. Whole models are in `gpu_forward`.
//!
//! The device is `gpu::gpu()` (one for the test binary): with `QUANTLAB_REQUIRE_GPU=1` a missing
//! adapter fails the tests instead of skipping them.
//!
//! Tolerances and why:
//! - element-wise kernels (residual add, SwiGLU) and the f32 KV store: exact or within 2 ulp
//!   (`exp` in WGSL is not correctly rounded);
//! - RMSNorm: the GPU sums squares in f32 in another order (the CPU in f64): relative 1e-5;
//! - RoPE: cos/sin come from the same f64 table, only a fused multiply-add may differ: 1e-6
//!   relative to the pair's magnitude;
//! - attention: dot products and sums in another order, `exp` not correctly rounded: 1e-5
//!   relative to the largest |value| in the output (plus 1e-6);
//! - f16 / int8 KV: the codes are compared (f16 exact; int8 exact except where x/scale lies
//!   within 1e-4 of a rounding boundary, where one step of difference is allowed).

use crate::gpu::gpu;
use quantlab::gpu::forward::kernels::{
    attention_cpu, groups, kv_load_cpu, kv_store_cpu, residual_add_cpu, run_once, swiglu_cpu, KvFormat, Pipelines,
    Shapes, Step,
};
use quantlab::gpu::forward::Pick;
use quantlab::model::sampler::argmax;
use quantlab::model::{rmsnorm, rope, Rng, Sampler, SamplerConfig};

/// Deterministic values in [-scale, scale) from the seeded PCG32.
pub(crate) fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..n).map(|_| (r.next_f32() * 2.0 - 1.0) * scale).collect()
}

fn floats(bytes: &[u8]) -> Vec<f32> {
    bytemuck::pod_collect_to_vec(bytes)
}

fn words(bytes: &[u8]) -> Vec<u32> {
    bytemuck::pod_collect_to_vec(bytes)
}

/// Awkward shapes: widths that are not multiples of the workgroup size, 3 query heads on 1 kv
/// head, RoPE on only part of each head, a capacity that is not a power of two.
pub(crate) fn shapes(kv: KvFormat) -> Shapes {
    Shapes {
        dim: 100,
        hidden_dim: 70,
        n_heads: 3,
        n_kv_heads: 1,
        head_dim: 12,
        rope_dim: 8,
        vocab: 301,
        capacity: 37,
        eps: 1e-5,
        kv,
    }
}

fn pipelines(s: &Shapes) -> Pipelines {
    pollster::block_on(Pipelines::new(gpu().unwrap(), s)).expect("pipelines compile")
}

fn run(p: &wgpu::ComputePipeline, step: Step, bufs: &[&[u8]], g: (u32, u32, u32)) -> Vec<Vec<u8>> {
    pollster::block_on(run_once(gpu().unwrap(), p, step, bufs, g)).expect("kernel runs")
}

fn assert_close(got: &[f32], want: &[f32], tol: impl Fn(usize, f32) -> f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol(i, *w), "{what}[{i}]: gpu {g} vs cpu {w}");
    }
}

#[test]
fn rmsnorm_matches_cpu() {
    let Some(_) = gpu() else { return };
    let s = shapes(KvFormat::F32);
    let p = pipelines(&s);
    for n in [1usize, 5] {
        let x = values(n * s.dim, 1, 3.0);
        let w = values(s.dim, 2, 1.5);
        let out = run(
            &p.rmsnorm,
            Step { n: n as u32, ..Step::default() },
            &[bytemuck::cast_slice(&x), bytemuck::cast_slice(&w), &vec![0u8; n * s.dim * 4]],
            groups::rmsnorm(n),
        );
        let mut want = vec![0f32; n * s.dim];
        for r in 0..n {
            rmsnorm(&mut want[r * s.dim..][..s.dim], &x[r * s.dim..][..s.dim], &w, s.eps);
        }
        assert_close(&floats(&out[2]), &want, |_, w| 1e-5 * w.abs() + 1e-7, "rmsnorm");
    }
}

#[test]
fn rope_matches_cpu_at_each_rows_position() {
    let Some(_) = gpu() else { return };
    let s = shapes(KvFormat::F32);
    let p = pipelines(&s);
    let theta = 10000.0;
    let table = quantlab::gpu::forward::kernels::rope_table(s.capacity, s.rope_dim, theta);
    let (n, pos0) = (4usize, 31usize);
    let (q_dim, kv_dim) = (s.n_heads * s.head_dim, s.n_kv_heads * s.head_dim);
    let q = values(n * q_dim, 3, 2.0);
    let k = values(n * kv_dim, 4, 2.0);
    let step = Step { pos0: pos0 as u32, n: n as u32, ..Step::default() };
    let out = run(
        &p.rope,
        step,
        &[bytemuck::cast_slice(&q), bytemuck::cast_slice(&k), bytemuck::cast_slice(&table)],
        groups::rope(&s, n),
    );
    let (mut wq, mut wk) = (q.clone(), k.clone());
    for r in 0..n {
        rope(&mut wq[r * q_dim..][..q_dim], s.head_dim, s.rope_dim, pos0 + r, theta);
        rope(&mut wk[r * kv_dim..][..kv_dim], s.head_dim, s.rope_dim, pos0 + r, theta);
    }
    assert_close(&floats(&out[0]), &wq, |_, _| 4e-6, "rope q");
    assert_close(&floats(&out[1]), &wk, |_, _| 4e-6, "rope k");
    // Dimensions past rope_dim are untouched.
    assert_eq!(floats(&out[0])[s.rope_dim..s.head_dim], q[s.rope_dim..s.head_dim]);
}

#[test]
fn swiglu_and_residual_add_match_cpu() {
    let Some(_) = gpu() else { return };
    let s = shapes(KvFormat::F32);
    let p = pipelines(&s);
    let n = 3;
    let gate = values(n * s.hidden_dim, 5, 6.0);
    let up = values(n * s.hidden_dim, 6, 2.0);
    let step = Step { n: n as u32, ..Step::default() };
    let out = run(
        &p.swiglu,
        step,
        &[bytemuck::cast_slice(&gate), bytemuck::cast_slice(&up)],
        groups::elementwise(s.hidden_dim, n),
    );
    let mut want = gate.clone();
    swiglu_cpu(&mut want, &up);
    assert_close(&floats(&out[0]), &want, |_, w| 4.0 * f32::EPSILON * w.abs() + 1e-7, "swiglu");

    let x = values(n * s.dim, 7, 5.0);
    let d = values(n * s.dim, 8, 5.0);
    let out = run(
        &p.residual_add,
        step,
        &[bytemuck::cast_slice(&x), bytemuck::cast_slice(&d)],
        groups::elementwise(s.dim, n),
    );
    let mut want = x.clone();
    residual_add_cpu(&mut want, &d);
    assert_eq!(floats(&out[0]), want, "one correctly rounded add per element");
}

/// KV store on the GPU vs `kv_store_cpu`, then attention over that cache vs `attention_cpu` on
/// the decoded values: decode (1 row at the last position) and prefill (5 causal rows).
#[test]
fn kv_cache_and_attention_match_cpu_for_every_kv_format() {
    let Some(_) = gpu() else { return };
    for kv in [KvFormat::F32, KvFormat::F16, KvFormat::Int8] {
        let s = shapes(kv);
        let p = pipelines(&s);
        let kv_dim = s.n_kv_heads * s.head_dim;
        let q_dim = s.n_heads * s.head_dim;
        let vpw = kv.values_per_word();
        // Fill the whole cache through kv_write in batches of up to 9 rows (as prefill would).
        let keys = values(s.capacity * kv_dim, 10, 3.0);
        let vals = values(s.capacity * kv_dim, 11, 3.0);
        let mut cache = vec![0u8; kv.layer_cache_bytes(s.capacity, s.n_kv_heads, s.head_dim) as usize];
        let mut pos = 0;
        while pos < s.capacity {
            let n = 9.min(s.capacity - pos);
            let step = Step { pos0: pos as u32, n: n as u32, ..Step::default() };
            let k = bytemuck::cast_slice(&keys[pos * kv_dim..(pos + n) * kv_dim]);
            let v = bytemuck::cast_slice(&vals[pos * kv_dim..(pos + n) * kv_dim]);
            cache = run(&p.kv_write, step, &[k, v, &cache], groups::kv_write(&s, n)).swap_remove(2);
            pos += n;
        }
        // Codes vs the CPU twin, head by head; decoded values for the attention reference.
        let all = words(&cache);
        let region = kv.region_words(s.capacity, kv_dim);
        let heads = s.capacity * s.n_kv_heads;
        let mut decoded = [Vec::new(), Vec::new()];
        for (which, src) in [&keys, &vals].into_iter().enumerate() {
            let gw = &all[which * region..][..region];
            for h in 0..heads {
                let vals = &src[h * s.head_dim..][..s.head_dim];
                let (want, want_scale) = kv_store_cpu(kv, vals);
                let got = &gw[h * s.head_dim / vpw..][..s.head_dim / vpw];
                let scale =
                    if kv == KvFormat::Int8 { f32::from_bits(all[2 * region + which * heads + h]) } else { 1.0 };
                match kv {
                    KvFormat::Int8 => {
                        assert!((scale - want_scale).abs() <= 1e-6 * want_scale, "{kv:?} scale {h}");
                        let (g, w) = (kv_load_cpu(kv, got, 1.0), kv_load_cpu(kv, &want, 1.0));
                        for (i, (a, b)) in g.iter().zip(&w).enumerate() {
                            let frac = (vals[i] / want_scale).abs().fract();
                            let near_tie = (frac - 0.5).abs() < 1e-4;
                            assert!(
                                a == b || (near_tie && (a - b).abs() == 1.0),
                                "{kv:?} head {h} code {i}: {a} vs {b}"
                            );
                        }
                    }
                    _ => assert_eq!(got, &want[..], "{kv:?} head {h}"),
                }
                decoded[which].extend(kv_load_cpu(kv, got, scale));
            }
        }
        for (n, pos0) in [(1usize, s.capacity - 1), (5, 7)] {
            let q = values(n * q_dim, 12 + n as u64, 2.0);
            let scores = vec![0u8; n * s.n_heads * s.capacity * 4];
            let step = Step { pos0: pos0 as u32, n: n as u32, ..Step::default() };
            let out = run(
                &p.attention,
                step,
                &[bytemuck::cast_slice(&q), &cache, &scores, &vec![0u8; n * q_dim * 4]],
                groups::attention(&s, n),
            );
            let want = attention_cpu(&q, &decoded[0], &decoded[1], n, pos0, s.n_heads, s.n_kv_heads, s.head_dim);
            let amax = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert_close(&floats(&out[3]), &want, |_, _| 1e-5 * amax + 1e-6, &format!("attention {kv:?} n={n}"));
        }
    }
}

#[test]
fn gpu_sampling_matches_the_cpu_sampler() {
    let Some(_) = gpu() else { return };
    let s = shapes(KvFormat::F32);
    let p = pipelines(&s);
    let sample = |logits: &[f32], pick: Pick| {
        let step =
            Step { top_k: pick.top_k, temperature: pick.temperature, top_p: pick.top_p, u: pick.u, ..Step::default() };
        words(&run(&p.sample, step, &[bytemuck::cast_slice(logits), &[0u8; 4]], (1, 1, 1))[1])[0]
    };
    // Greedy: ties go to the lowest id, NaN never wins, all-NaN gives 0.
    let mut l = values(s.vocab, 20, 4.0);
    assert_eq!(sample(&l, Pick::GREEDY), argmax(&l));
    l[17] = 9.0;
    l[250] = 9.0;
    l[3] = f32::NAN;
    assert_eq!(sample(&l, Pick::GREEDY), 17);
    assert_eq!(sample(&vec![f32::NAN; s.vocab], Pick::GREEDY), 0);
    // Top-k / top-p: the same token as the CPU sampler for the same draws.
    let logits = values(s.vocab, 21, 3.0);
    for (top_k, temperature, top_p) in [(2usize, 1.0f32, 1.0f32), (5, 0.7, 1.0), (40, 1.3, 0.9), (64, 2.0, 0.5)] {
        let cfg = SamplerConfig { temperature, top_k, top_p, seed: 99 };
        let mut cpu = Sampler::new(cfg);
        let mut rng = Rng::new(99);
        let mut distinct = std::collections::BTreeSet::new();
        for draw in 0..40 {
            let want = cpu.sample(&logits);
            let pick = Pick { top_k: top_k as u32, temperature, top_p, u: rng.next_f32() };
            assert_eq!(sample(&logits, pick), want, "top-k {top_k} T {temperature} top-p {top_p} draw {draw}");
            distinct.insert(want);
        }
        assert!(distinct.len() > 1, "the draws exercise more than one candidate");
    }
}
