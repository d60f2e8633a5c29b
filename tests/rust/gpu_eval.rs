//! `gpu::forward::evaluate_on_gpu` (the lockstep, awaiting evaluation the lab's Compare panel
//! runs on WebGPU) against `model::eval::evaluate` on the CPU: same plan, base + one compared
//! model, on lavapipe.
//!
//! Tolerances are derived from the logits' own difference, measured in the test: `ε` = the
//! largest |GPU logit − CPU logit| over every position run, for both models (the forward tests
//! hold it under 2e-3 for the default model's 30 layers; it is f32 products summed in another
//! order). From `|Δlogit| ≤ ε`:
//!
//! - each log-softmax moves by at most `2ε` (the logit by ε, the log-sum-exp by ε), so every
//!   token's NLL, hence the mean NLL, moves by at most `2ε`, and each perplexity by a factor
//!   within `e^{±2ε}`;
//! - with `d = log p − log q`, `KL = Σ p·d`; perturbed, `p' = p·e^a` with `|a| ≤ 2ε` and
//!   `d' = d + b` with `|b| ≤ 4ε`, so `|KL' − KL| ≤ (e^{2ε} − 1)·Σ p|d'| + 4ε ≤
//!   (e^{2ε} − 1)·(D + 4ε) + 4ε`, `D` the largest `Σ p|d|` of a position (from the CPU logits);
//! - a position's argmax can only change where its top two logits are within `2ε`, so top-1
//!   agreement moves by at most (such positions in either model) / scored.
//!
//! A real bug (a wrong row, a stale KV cache, a mis-scored position) moves logits by 0.1–10 and
//! fails the `ε` check itself.

use crate::gpu::gpu;
use crate::gpu_forward::{default_model, synthetic_model};
use quantlab::formats::QuantScheme;
use quantlab::gpu::forward::kernels::KvFormat;
use quantlab::gpu::forward::{evaluate_on_gpu, GpuModel};
use quantlab::gpu::matmul::ActivationPrecision;
use quantlab::model::eval::{
    evaluate, log_softmax, plan, EvalError, EvalHooks, EvalPlan, LogitSource, Metrics, ModelSource, Protocol,
};
use quantlab::model::{quantize_model, Model, TensorPolicy};

/// Every needed position's logits (`0 ..= ctx − 2`), window by window, in one flat list.
fn cpu_rows(model: &Model, plan: &EvalPlan) -> Vec<Vec<f32>> {
    let mut src = ModelSource::new(model, plan.ctx, 1);
    let mut rows = Vec::new();
    for w in &plan.windows {
        src.begin_window();
        src.lookahead(&w[..plan.ctx - 1]);
        for (pos, &t) in w[..plan.ctx - 1].iter().enumerate() {
            rows.push(src.logits(t, pos).unwrap().to_vec());
        }
    }
    rows
}

fn gpu_rows(g: &mut GpuModel, plan: &EvalPlan) -> Vec<Vec<f32>> {
    let mut rows = Vec::new();
    for w in &plan.windows {
        pollster::block_on(g.reset()).unwrap();
        g.announce_window(&w[..plan.ctx - 1]);
        for (pos, &t) in w[..plan.ctx - 1].iter().enumerate() {
            rows.push(pollster::block_on(g.window_logits(t, pos)).unwrap().to_vec());
        }
    }
    rows
}

fn max_abs(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    let mut m = 0f64;
    for (x, y) in a.iter().zip(b) {
        for (p, q) in x.iter().zip(y) {
            m = m.max(f64::from((p - q).abs()));
        }
    }
    m
}

/// Whether the top two logits are within `gap`.
fn near_tie(logits: &[f32], gap: f64) -> bool {
    let mut s: Vec<f32> = logits.to_vec();
    s.sort_by(|a, b| b.total_cmp(a));
    f64::from(s[0] - s[1]) <= gap
}

/// CPU vs GPU evaluation of `base` + `quant` over `plan`, within the bounds of the module docs.
fn check(base: &Model, quant: &Model, plan: &EvalPlan, label: &str) -> Vec<Metrics> {
    let gpu = gpu().unwrap();
    let t = std::time::Instant::now();
    let (mut cb, mut cq) = (ModelSource::new(base, plan.ctx, 1), ModelSource::new(quant, plan.ctx, 1));
    let cpu = evaluate(plan, &mut [&mut cb as &mut dyn LogitSource, &mut cq], EvalHooks::default()).unwrap();
    let upload = |m: &Model| GpuModel::new_blocking(gpu, m, plan.ctx, KvFormat::F32, ActivationPrecision::F32).unwrap();
    let (mut gb, mut gq) = (upload(base), upload(quant));
    let mut windows_done = Vec::new();
    let mut progress = |done: usize, _total: usize| windows_done.push(done);
    let hooks = EvalHooks { progress: Some(&mut progress), ..EvalHooks::default() };
    let got = pollster::block_on(evaluate_on_gpu(plan, &mut [&mut gb, &mut gq], hooks)).unwrap();
    assert_eq!(windows_done, (1..=plan.windows.len()).collect::<Vec<_>>(), "{label}: window progress");

    let (rb, rq) = (cpu_rows(base, plan), cpu_rows(quant, plan));
    let eps = max_abs(&gpu_rows(&mut gb, plan), &rb).max(max_abs(&gpu_rows(&mut gq, plan), &rq));
    let scored: Vec<usize> = (0..plan.windows.len())
        .flat_map(|w| plan.scored_positions(w).map(move |(p, _)| w * (plan.ctx - 1) + p))
        .collect();
    let (mut lp, mut lq) = (Vec::new(), Vec::new());
    let mut d_max = 0f64;
    for &i in &scored {
        log_softmax(&rb[i], &mut lp);
        log_softmax(&rq[i], &mut lq);
        d_max = d_max.max(lp.iter().zip(&lq).map(|(a, b)| a.exp() * (a - b).abs()).sum());
    }
    let ties = scored.iter().filter(|&&i| near_tie(&rb[i], 2.0 * eps) || near_tie(&rq[i], 2.0 * eps)).count();
    let n = scored.len() as f64;
    let grow = (2.0 * eps).exp() - 1.0;
    let kl_tol = grow * (d_max + 4.0 * eps) + 4.0 * eps;
    eprintln!(
        "{label}: ε {eps:.2e}, D {d_max:.3}, near ties {ties}; ppl cpu {:.6}/{:.6} gpu {:.6}/{:.6}; KL cpu {:.3e} gpu {:.3e} (±{kl_tol:.1e}); {:.1} s",
        cpu[0].ppl,
        cpu[1].ppl,
        got[0].ppl,
        got[1].ppl,
        cpu[1].kl_mean.unwrap(),
        got[1].kl_mean.unwrap(),
        t.elapsed().as_secs_f64()
    );
    assert!(eps <= 2e-3, "{label}: GPU logits differ from the CPU's by {eps}");
    for (c, g) in cpu.iter().zip(&got) {
        assert_eq!((c.tokens_scored, c.tokens_run), (g.tokens_scored, g.tokens_run), "{label}: counts");
        assert!((c.mean_nll - g.mean_nll).abs() <= 2.0 * eps, "{label}: mean NLL {} vs {}", c.mean_nll, g.mean_nll);
        assert!((g.ppl / c.ppl - 1.0).abs() <= grow, "{label}: ppl {} vs {}", c.ppl, g.ppl);
    }
    let (c, g) = (&cpu[1], &got[1]);
    assert!(got[0].kl_mean.is_none() && got[0].paired.is_none(), "{label}: the base has no KL");
    assert!((c.kl_mean.unwrap() - g.kl_mean.unwrap()).abs() <= kl_tol, "{label}: KL {c:?} vs {g:?}");
    assert!((c.kl_max.unwrap() - g.kl_max.unwrap()).abs() <= kl_tol, "{label}: KL max {c:?} vs {g:?}");
    let agree = (c.top1_agreement.unwrap() - g.top1_agreement.unwrap()).abs() * n;
    assert!(agree <= ties as f64 + 1e-9, "{label}: top-1 {c:?} vs {g:?} with {ties} near ties");
    let (cp, gp) = (c.paired.as_ref().unwrap(), g.paired.as_ref().unwrap());
    let dppl_tol = grow * (c.ppl + cpu[0].ppl) * (1.0 + grow);
    assert!((cp.delta_ppl - gp.delta_ppl).abs() <= dppl_tol, "{label}: Δppl {cp:?} vs {gp:?}");
    got
}

/// The synthetic model (f32 weights, awkward shapes) against a perturbed copy: three windows of
/// 16, every position but each window's first scored; then the `positions` hook's cancel.
#[test]
fn synthetic_gpu_evaluation_equals_the_cpu_evaluation() {
    let Some(gpu) = gpu() else { return };
    let base = synthetic_model();
    let mut quant = base.clone();
    // A compared model that differs measurably from the base (KL ~1e-2): the first layer's
    // query projection with every weight scaled by 1.3 (f32, so no format's rounding decides it).
    let wq = &quant.weights.layers[0].wq;
    let scaled: Vec<f32> = wq.to_f32().iter().map(|w| w * 1.3).collect();
    quant.weights.layers[0].wq = quantlab::model::Matrix::from_f32(scaled, wq.shape()).unwrap();
    let tokens: Vec<u32> = (0..50).map(|i| (i * 131 + 17) % 301).collect();
    let p = plan(&tokens, 16, Protocol::Default, false, None, None).unwrap();
    let m = check(&base, &quant, &p, "synthetic, 3 windows of 16");
    assert!(m[1].kl_mean.unwrap() > 1e-4, "the compared model must differ: {:?}", m[1]);

    // Cancelling after 5 positions stops with the CPU's error.
    let mut g = GpuModel::new_blocking(gpu, &base, 16, KvFormat::F32, ActivationPrecision::F32).unwrap();
    let mut positions = |done: usize, _: usize| done < 5;
    let hooks = EvalHooks { positions: Some(&mut positions), ..EvalHooks::default() };
    let e = pollster::block_on(evaluate_on_gpu(&p, &mut [&mut g], hooks)).unwrap_err();
    assert_eq!(e, EvalError::Cancelled { positions_done: 5, positions_total: 45 });
    assert_eq!(
        pollster::block_on(evaluate_on_gpu(&p, &mut [], EvalHooks::default())).unwrap_err(),
        EvalError::NoSource
    );
}

/// The default model (the Q4_1 checkpoint as the base) and q8_0 re-quantized from it: one window
/// of 32, the lab's Compare on WebGPU in small. Its cost is four lavapipe passes of one 31-row
/// block through 30 layers and the classifier (the evaluation, then each model's logits for `ε`):
/// the smallest run of the real model that exercises every layer kernel the evaluation uses.
#[test]
fn default_model_gpu_evaluation_equals_the_cpu_evaluation() {
    let Some(_) = gpu() else { return };
    let Some(d) = default_model() else { return };
    let text = "Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse, and nothing particular to interest me on shore, I thought I would sail about a little and see the watery part of the world.";
    let tokens = d.tokenizer.encode(text, false, false);
    let p = plan(&tokens, 32, Protocol::Default, false, None, Some(1)).unwrap();
    let (q8, _) = quantize_model(&d.model, &QuantScheme::parse("q8_0").unwrap(), &TensorPolicy::default()).unwrap();
    check(&d.model, &q8, &p, "default model Q4_1 + q8_0, 1 window of 32");
}
