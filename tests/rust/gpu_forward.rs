//! The GPU forward (`quantlab::gpu::forward`) on whole models — a small synthetic one, and the
//! default SmolLM2 Q4_1 — against the CPU reference forward: logits and greedy tokens. The
//! kernels one by one are in `gpu_forward_kernels`.
//!
//! The device is `gpu::gpu()` (one for the test binary): with `QUANTLAB_REQUIRE_GPU=1` a missing
//! adapter fails the tests instead of skipping them.
//!
//! Tolerance: 30 layers of f32 products in another order: max |Δlogit| ≤ 2e-3 (logits up to
//! ~30; a real bug moves them by 0.1–10), and identical greedy tokens.

use crate::gguf::model_path;
use crate::gpu::gpu;
use crate::gpu_forward_kernels::{shapes, values};
use quantlab::formats::QuantScheme;
use quantlab::formats::TensorShape;
use quantlab::gguf::GgufFile;
use quantlab::gpu::forward::generate::generate_blocking;
use quantlab::gpu::forward::kernels::KvFormat;
use quantlab::gpu::forward::{GpuModel, DEFAULT_MAX_BATCH};
use quantlab::gpu::matmul::ActivationPrecision;
use quantlab::model::eval::{evaluate, plan, EvalHooks, LogitSource, ModelSource, Protocol};
use quantlab::model::generate::{continue_generation, generate};
use quantlab::model::weights::Layer;
use quantlab::model::{forward, Config, Matrix, Model, Sampler, SamplerConfig, State, Weights};
use quantlab::model::{quantize_model, TensorPolicy};
use quantlab::tokenizer::Tokenizer;
use std::sync::OnceLock;

/// A small random model with awkward shapes (as in `shapes`), f32 weights.
pub(crate) fn synthetic_model() -> Model {
    let s = shapes(KvFormat::F32);
    let config = Config {
        dim: s.dim,
        hidden_dim: s.hidden_dim,
        n_layers: 2,
        n_heads: s.n_heads,
        n_kv_heads: s.n_kv_heads,
        head_dim: s.head_dim,
        rope_dim: s.rope_dim,
        vocab_size: s.vocab,
        seq_len: 64,
        rope_theta: 10000.0,
        rms_eps: 1e-5,
        tied_embeddings: true,
    };
    let mut seed = 100;
    let mut m = |rows: usize, cols: usize| {
        seed += 1;
        Matrix::from_f32(values(rows * cols, seed, 1.0 / (cols as f32).sqrt() * 1.7), TensorShape::new(rows, cols))
            .unwrap()
    };
    let (d, h, q, kv) = (s.dim, s.hidden_dim, s.n_heads * s.head_dim, s.n_kv_heads * s.head_dim);
    let layers = (0..2)
        .map(|l| Layer {
            attn_norm: values(d, 200 + l, 1.0).iter().map(|v| 1.0 + 0.3 * v).collect(),
            wq: m(q, d),
            wk: m(kv, d),
            wv: m(kv, d),
            wo: m(d, q),
            ffn_norm: values(d, 210 + l, 1.0).iter().map(|v| 1.0 + 0.3 * v).collect(),
            w_gate: m(h, d),
            w_down: m(d, h),
            w_up: m(h, d),
        })
        .collect();
    let token_embd = m(s.vocab, d);
    Model { config, weights: Weights { token_embd, layers, output_norm: vec![1.0; d], output: None } }
}

fn cpu_logits(model: &Model, tokens: &[u32]) -> Vec<Vec<f32>> {
    let mut state = State::new(&model.config, tokens.len());
    tokens
        .iter()
        .enumerate()
        .map(|(pos, &t)| forward(&model.config, &model.weights, &mut state, t, pos).to_vec())
        .collect()
}

pub(crate) fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn synthetic_model_prefill_and_decode_match_cpu_logits() {
    let Some(gpu) = gpu() else { return };
    let model = synthetic_model();
    let tokens: Vec<u32> = (0..20).map(|i| (i * 37 + 5) % 301).collect();
    let want = cpu_logits(&model, &tokens);
    let mut g = GpuModel::new_blocking(gpu, &model, 64, KvFormat::F32, ActivationPrecision::F32).expect("upload");
    // Prefill 13 tokens in one batch (> 1 row: GEMM and causal attention), then decode one at a time.
    pollster::block_on(g.forward(&tokens[..13], 0)).unwrap();
    let got = pollster::block_on(g.read_logits()).unwrap().to_vec();
    let d = max_abs_diff(&got, &want[12]);
    assert!(d <= 1e-4, "prefill logits: max |Δ| {d}");
    for pos in 13..tokens.len() {
        let got = pollster::block_on(g.logits(tokens[pos], pos)).unwrap().to_vec();
        let d = max_abs_diff(&got, &want[pos]);
        assert!(d <= 1e-4, "decode at {pos}: max |Δ| {d}");
    }
    // Bad input is an error, not a panic.
    assert!(pollster::block_on(g.forward(&[301], 0)).unwrap_err().to_string().contains("out of range"));
    assert!(pollster::block_on(g.forward(&[1], 64)).unwrap_err().to_string().contains("capacity"));
}

/// Generation on the GPU (GPU sampling) gives the CPU loop's tokens: greedy, and seeded top-k /
/// top-p (same PCG32 draws); `top_k = 0` takes the logits-readback path with the CPU sampler.
/// Continued on the CPU from part-way (`continue_generation`), it still gives them.
#[test]
fn synthetic_model_generation_matches_cpu_generate() {
    let Some(gpu) = gpu() else { return };
    let model = synthetic_model();
    let prompt = [3u32, 200, 41, 7];
    let mut g = GpuModel::new_blocking(gpu, &model, 40, KvFormat::F32, ActivationPrecision::F32).expect("upload");
    for cfg in [
        SamplerConfig::default(),
        SamplerConfig { temperature: 1.5, top_k: 20, top_p: 0.95, seed: 5 },
        SamplerConfig { temperature: 2.0, top_k: 0, top_p: 1.0, seed: 6 },
    ] {
        let mut state = State::new(&model.config, 40);
        let (want, _) =
            generate(&model, &mut state, &prompt, 30, &mut Sampler::new(cfg), |_| false, || 0.0, |_| true).unwrap();
        let mut streamed = Vec::new();
        let (got, stats) = generate_blocking(
            &mut g,
            &prompt,
            30,
            cfg,
            |_| false,
            || 0.0,
            |t| {
                streamed.push(t);
                true
            },
        )
        .unwrap();
        assert_eq!(got, want, "{cfg:?}");
        assert_eq!(streamed, got);
        assert_eq!((stats.prompt_tokens, stats.generated, stats.decode_forwards), (4, 30, 29));
        // The GPU's first k tokens finished on the CPU (what a lost device does): the same tokens,
        // the sampler's stream picked up where the GPU left it.
        for k in [1, 7] {
            let mut state = State::new(&model.config, 40);
            let mut rest = Vec::new();
            let (all, stats) = continue_generation(
                &model,
                &mut state,
                &prompt,
                &got[..k],
                30,
                cfg,
                |_| false,
                || 0.0,
                |t| {
                    rest.push(t);
                    true
                },
            )
            .unwrap();
            assert_eq!((&all, &rest[..], stats.generated), (&want, &want[k..], 30), "{cfg:?}, continued after {k}");
        }
    }
    // More tokens already generated than the budget is an error, not a panic.
    let mut state = State::new(&model.config, 40);
    let cfg = SamplerConfig::default();
    assert!(continue_generation(&model, &mut state, &prompt, &[1; 31], 30, cfg, |_| false, || 0.0, |_| true).is_err());
    // The callback stops generation; an end-of-generation token is not emitted.
    let (got, _) =
        generate_blocking(&mut g, &prompt, 30, SamplerConfig::default(), |_| false, || 0.0, |_| false).unwrap();
    assert_eq!(got.len(), 1);
    let first = got[0];
    let (got, stats) =
        generate_blocking(&mut g, &prompt, 30, SamplerConfig::default(), |t| t == first, || 0.0, |_| true).unwrap();
    assert!(got.is_empty() && format!("{:?}", stats.stop).contains("Eog"));
    assert!(generate_blocking(&mut g, &prompt, 40, SamplerConfig::default(), |_| false, || 0.0, |_| true).is_err());
}

/// `model::eval::evaluate` with the GPU model as a source: the same metrics as the CPU source.
#[test]
fn synthetic_model_evaluates_on_the_gpu_like_on_the_cpu() {
    let Some(gpu) = gpu() else { return };
    let model = synthetic_model();
    let tokens: Vec<u32> = (0..50).map(|i| (i * 131 + 17) % 301).collect();
    let plan = plan(&tokens, 16, Protocol::Default, false, None, None).unwrap();
    let mut cpu = ModelSource::new(&model, 16, 1);
    let mut g = GpuModel::new_blocking(gpu, &model, 16, KvFormat::F32, ActivationPrecision::F32).expect("upload");
    let mut sources: Vec<&mut dyn LogitSource> = vec![&mut cpu, &mut g];
    let m = evaluate(&plan, &mut sources, EvalHooks::default()).unwrap();
    assert_eq!(m[1].tokens_scored, 45);
    assert!((m[0].ppl - m[1].ppl).abs() <= 1e-4 * m[0].ppl, "{} vs {}", m[0].ppl, m[1].ppl);
    assert!(m[1].kl_mean.unwrap() < 1e-8 && m[1].top1_agreement == Some(1.0), "{:?}", m[1]);
}

/// Block evaluation (an announced window run in blocks of `max_batch` positions, the classifier
/// on every row) gives every position the CPU's logits, across a block boundary, and so does
/// the same window one position at a time; a call off the window falls back to one position.
#[test]
fn gpu_block_evaluation_matches_the_cpu_across_blocks() {
    let Some(gpu) = gpu() else { return };
    let mut model = synthetic_model();
    let n = DEFAULT_MAX_BATCH + 9;
    model.config.seq_len = n;
    let tokens: Vec<u32> = (0..n as u32).map(|i| (i * 53 + 11) % 301).collect();
    let want = cpu_logits(&model, &tokens);
    let mut g = GpuModel::new_blocking(gpu, &model, n, KvFormat::F32, ActivationPrecision::F32).expect("upload");
    assert!(g.max_batch < n, "the window must span two blocks");
    for announced in [true, false] {
        pollster::block_on(g.reset()).unwrap();
        if announced {
            g.announce_window(&tokens);
        }
        for (pos, &t) in tokens.iter().enumerate() {
            let got = pollster::block_on(g.window_logits(t, pos)).unwrap();
            let d = max_abs_diff(got, &want[pos]);
            assert!(d <= 1e-4, "announced {announced}, position {pos}: max |Δ| {d}");
        }
    }
    // Off the announced window (another token at position 0): one position at a time, correct.
    pollster::block_on(g.reset()).unwrap();
    g.announce_window(&tokens);
    let other = (tokens[0] + 1) % 301;
    let got = pollster::block_on(g.window_logits(other, 0)).unwrap().to_vec();
    let d = max_abs_diff(&got, &cpu_logits(&model, &[other])[0]);
    assert!(d <= 1e-4, "off-window position: max |Δ| {d}");
}

pub(crate) struct DefaultModel {
    pub(crate) model: Model,
    pub(crate) prompt: Vec<u32>,
    pub(crate) tokenizer: Tokenizer,
}

/// The default model, its tokenizer and a short prompt, loaded once (shared with `gpu_kv_cache`).
pub(crate) fn default_model() -> Option<&'static DefaultModel> {
    static MODEL: OnceLock<Option<DefaultModel>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let bytes = std::fs::read(model_path()?).expect("read the model");
            let gguf = GgufFile::parse(&bytes, bytes.len() as u64).unwrap();
            let tok = Tokenizer::from_gguf(&gguf).unwrap();
            let prompt = tok.encode("The old sailor looked at the sea and said", tok.add_bos_default(), false);
            let model = Model::from_gguf(&gguf, &bytes).expect("the default model loads");
            Some(DefaultModel { model, prompt, tokenizer: tok })
        })
        .as_ref()
}

/// Greedy tokens compared for the model as stored; each re-quantized format compares fewer
/// (every decode step runs the same kernels, and lavapipe takes seconds per step on the widest
/// formats: `npm test`'s time budget).
const GREEDY_STEPS: usize = 32;
const FORMAT_GREEDY_STEPS: usize = 8;

/// Logits after the prompt (max |Δ|) and `steps` greedy tokens, GPU vs CPU, for `model`;
/// each of `kernels` must be among the GPU kernels used (e.g. "Q4_K (dedicated)").
pub(crate) fn check_against_cpu(model: &Model, prompt: &[u32], steps: usize, label: &str, kernels: &[&str]) {
    let gpu = gpu().unwrap();
    let t = std::time::Instant::now();
    let cap = prompt.len() + steps;
    let mut state = State::new(&model.config, cap);
    let mut cpu_logits = Vec::new();
    for (pos, &tok) in prompt.iter().enumerate() {
        cpu_logits = forward(&model.config, &model.weights, &mut state, tok, pos).to_vec();
    }
    let mut state = State::new(&model.config, cap);
    let cfg = SamplerConfig::default();
    let (want, _) =
        generate(model, &mut state, prompt, steps, &mut Sampler::new(cfg), |_| false, || 0.0, |_| true).unwrap();

    let mut g = GpuModel::new_blocking(gpu, model, cap, KvFormat::F32, ActivationPrecision::F32).expect("upload");
    pollster::block_on(g.forward(prompt, 0)).unwrap();
    let got = pollster::block_on(g.read_logits()).unwrap().to_vec();
    let d = max_abs_diff(&got, &cpu_logits);
    let (got_tokens, _) = generate_blocking(&mut g, prompt, steps, cfg, |_| false, || 0.0, |_| true).unwrap();
    eprintln!(
        "{label}: kernels {}; logits max |Δ| {d:.2e}; {} greedy tokens; {:.1} s",
        g.kernel_summary(),
        got_tokens.len(),
        t.elapsed().as_secs_f64()
    );
    let summary = g.kernel_summary();
    for kernel in kernels {
        assert!(summary.contains(kernel), "{label}: expected {kernel} in {summary}");
    }
    // Matrices of a format without a dedicated kernel run on f16 weights (the generic path):
    // each weight rounded by up to 2^-11 relative, which moves logits of ~30 by up to ~1e-2
    // after 30 layers (measured 9.2e-3 when q4_k's 576-wide rows, stored as Q5_0, took it).
    let tol = if summary.contains("generic") { 2e-2 } else { 2e-3 };
    assert!(d <= tol, "{label}: logits max |Δ| {d} > {tol}");
    assert_eq!(got_tokens, want, "{label}: greedy tokens");
}

#[test]
fn default_model_matches_cpu_logits_and_greedy_tokens() {
    let Some(_) = gpu() else { return };
    let Some(d) = default_model() else { return };
    check_against_cpu(&d.model, &d.prompt, GREEDY_STEPS, "Q4_1 checkpoint as stored", &["Q4_1 (dedicated)"]);
}

/// The default model re-quantized in memory to `format` (from the Q4_1 checkpoint dequantized):
/// GPU (the format's dedicated kernel) vs CPU on the same quantized weights. A 3-token prompt
/// keeps the lavapipe time to one prefill and a few decode steps per format.
fn check_format(format: &str, kernels: &[&str]) {
    let Some(_) = gpu() else { return };
    let Some(d) = default_model() else { return };
    let scheme = QuantScheme::parse(format).unwrap();
    let (q, _) = quantize_model(&d.model, &scheme, &TensorPolicy::default()).unwrap();
    check_against_cpu(
        &q,
        &d.prompt[..3],
        FORMAT_GREEDY_STEPS,
        &format!("{format} (re-quantized from the Q4_1 checkpoint)"),
        kernels,
    );
}

macro_rules! format_tests {
    ($($name:ident => $format:literal, $($kernel:literal),+);* $(;)?) => {
        $(
            #[test]
            fn $name() {
                check_format($format, &[$($kernel),+]);
            }
        )*
    };
}

format_tests! {
    default_model_as_f32_matches_cpu => "f32", "F32 (dedicated)";
    default_model_as_f16_matches_cpu => "f16", "F16 (dedicated)";
    default_model_as_q8_0_matches_cpu => "q8_0", "Q8_0 (dedicated)";
    default_model_as_q4_0_matches_cpu => "q4_0", "Q4_0 (dedicated)";
    // The 576-wide rows K-quants can't split fall back to Q5_0 (llama.cpp's rule), run by its kernel.
    default_model_as_q4_k_matches_cpu => "q4_k", "Q4_K (dedicated)", "Q5_0 (dedicated)";
    default_model_as_q6_k_matches_cpu => "q6_k", "Q6_K (dedicated)";
    default_model_as_int8_channel_matches_cpu => "int8-sym-channel", "int8-sym-channel (dedicated)";
    default_model_as_int4_asym_g64_matches_cpu => "int4-asym-g64", "int4-asym-g64 (dedicated)";
    // Codes across word boundaries (matmul_int_packed.wgsl).
    default_model_as_int3_asym_g64_matches_cpu => "int3-asym-g64", "int3-asym-g64 (dedicated)";
    default_model_as_int2_asym_g32_matches_cpu => "int2-asym-g32", "int2-asym-g32 (dedicated)";
    default_model_as_nf4_matches_cpu => "nf4", "nf4-b64 (dedicated)";
    default_model_as_fp8_e4m3_matches_cpu => "fp8-e4m3-channel", "fp8-e4m3-channel (dedicated)";
    default_model_as_fp8_e5m2_matches_cpu => "fp8-e5m2-tensor", "fp8-e5m2-tensor (dedicated)";
}

fn quantlab(args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_quantlab")).args(args).output().expect("run quantlab");
    assert!(out.status.success(), "quantlab {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// `--device cpu|gpu|auto`: the same greedy text everywhere, the adapter and the choice on stderr.
#[test]
fn cli_generate_and_eval_on_each_device() {
    let Some(gpu) = gpu() else { return };
    let Some(path) = model_path() else { return };
    let path = path.to_str().unwrap();
    let generate = |device| quantlab(&["generate", path, "-p", "The sea", "-n", "4", "--device", device]);
    let (cpu, on_gpu, auto) = (generate("cpu"), generate("gpu"), generate("auto"));
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).to_string();
    assert!(stderr(&cpu).contains("device: cpu (--device cpu)"), "{}", stderr(&cpu));
    assert!(
        stderr(&on_gpu).contains(&gpu.adapter.name) && stderr(&on_gpu).contains("device: gpu"),
        "{}",
        stderr(&on_gpu)
    );
    assert!(
        stderr(&auto).contains(&gpu.adapter.name)
            && stderr(&auto).contains("tok/s")
            && stderr(&auto).contains("→ using the"),
        "{}",
        stderr(&auto)
    );
    assert!(!cpu.stdout.is_empty());
    assert_eq!(on_gpu.stdout, cpu.stdout, "greedy text on the GPU");
    assert_eq!(auto.stdout, cpu.stdout, "greedy text with --device auto");

    let eval = |device| {
        let out = quantlab(&["eval", path, "--ctx", "8", "--max-windows", "1", "--json", "--device", device]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let (c, g) = (eval("cpu"), eval("gpu"));
    assert_eq!(c["device"], "cpu");
    assert_eq!(g["device"].as_str().unwrap(), format!("gpu ({})", gpu.adapter.name));
    let (pc, pg) = (c["rows"][0]["ppl"].as_f64().unwrap(), g["rows"][0]["ppl"].as_f64().unwrap());
    assert!((pc - pg).abs() <= 1e-4 * pc, "ppl cpu {pc} vs gpu {pg}");
}
