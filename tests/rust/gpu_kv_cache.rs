//! The GPU forward with an f16 or int8 KV cache (`--kv-cache`, `KvFormat`) on the default model
//! (SmolLM2-135M Q4_1 as stored) against the CPU reference forward, whose cache is f32.
//! The kernel-level tests (codes of `kv_write.wgsl` vs `kv_store_cpu`) are in `gpu_forward`;
//! these check what a user sees: logits, greedy text, perplexity, and the CLI flag.
//!
//! Skipped without an adapter (or the model) unless `QUANTLAB_REQUIRE_GPU=1`, as in `gpu_forward`.
//!
//! Measured on lavapipe (this model; prompt + the CPU's greedy continuation, 32 positions one
//! token at a time; eval: Moby-Dick chapters 1-3, one window of 64 tokens run as one block,
//! `gpu::forward`'s block evaluation):
//!
//! | KV cache | logits max abs Δ vs CPU f32 | argmax flips / 32 | greedy (32) vs CPU | ppl vs f32 |
//! |---|---|---|---|---|
//! | f16  | 1.0e-2 | 0 | identical | — |
//! | int8 | 0.55   | 3 | first difference at token 5 | +1.60 % (KL 9.3e-4, top-1 98.4 %) |
//!
//! The bounds below are those measurements with a 2–3x margin: far from what a layout, scale or
//! indexing bug does (logits off by several units, perplexity doubled).

use crate::gguf::model_path;
use crate::gpu::gpu;
use crate::gpu_forward::{default_model, max_abs_diff};
use quantlab::cli::eval::default_text;
use quantlab::gpu::forward::generate::generate_blocking;
use quantlab::gpu::forward::{GpuModel, KvFormat};
use quantlab::gpu::matmul::ActivationPrecision;
use quantlab::model::eval::{evaluate, plan, EvalHooks, LogitSource, ModelSource, Protocol};
use quantlab::model::generate::generate;
use quantlab::model::sampler::argmax;
use quantlab::model::{forward, Model, Sampler, SamplerConfig, State};

/// Positions compared logit by logit (prompt then the CPU's greedy continuation), and greedy steps.
pub(crate) const POSITIONS: usize = 32;
pub(crate) const GREEDY_STEPS: usize = 32;

/// The CPU reference: the prompt's greedy continuation and the logits at each of the first
/// [`POSITIONS`] positions of prompt + continuation.
pub(crate) struct Reference {
    pub greedy: Vec<u32>,
    sequence: Vec<u32>,
    logits: Vec<Vec<f32>>,
}

pub(crate) fn reference(model: &Model, prompt: &[u32]) -> Reference {
    let cap = prompt.len() + GREEDY_STEPS;
    let mut state = State::new(&model.config, cap);
    let cfg = SamplerConfig::default();
    let (greedy, _) =
        generate(model, &mut state, prompt, GREEDY_STEPS, &mut Sampler::new(cfg), |_| false, || 0.0, |_| true).unwrap();
    assert_eq!(greedy.len(), GREEDY_STEPS, "the CPU stopped early");
    let sequence: Vec<u32> = prompt.iter().chain(&greedy).copied().collect();
    let mut state = State::new(&model.config, POSITIONS);
    let logits = (0..POSITIONS)
        .map(|pos| forward(&model.config, &model.weights, &mut state, sequence[pos], pos).to_vec())
        .collect();
    Reference { greedy, sequence, logits }
}

/// What the GPU forward with `kv` gives against the reference.
pub(crate) struct Outcome {
    /// Largest |Δlogit| over all positions and the vocabulary.
    pub max_abs: f32,
    /// Positions whose argmax differs from the CPU's.
    pub argmax_flips: usize,
    /// Greedy tokens generated on the GPU (GPU sampling) from the prompt.
    pub greedy: Vec<u32>,
}

/// The CPU reference and the GPU outcome with `kv` on the default model (`None`: skipped).
fn compare(kv: KvFormat) -> Option<(Reference, Outcome)> {
    let (_, d) = (gpu()?, default_model()?);
    let r = reference(&d.model, &d.prompt);
    let o = run_gpu(&d.model, &d.prompt, &r, kv, ActivationPrecision::F32);
    Some((r, o))
}

/// The GPU forward with `kv` and `activations` against the reference `r`.
pub(crate) fn run_gpu(
    model: &Model,
    prompt: &[u32],
    r: &Reference,
    kv: KvFormat,
    activations: ActivationPrecision,
) -> Outcome {
    let gpu = gpu().unwrap();
    let t = std::time::Instant::now();
    let mut g = GpuModel::new_blocking(gpu, model, prompt.len() + GREEDY_STEPS, kv, activations).expect("upload");
    assert_eq!((g.kv_format, g.activations), (kv, activations));
    // One token at a time: every position's logits, each attending over the cache as stored.
    let (mut max_abs, mut argmax_flips) = (0f32, 0);
    for pos in 0..POSITIONS {
        let got = pollster::block_on(g.logits(r.sequence[pos], pos)).unwrap();
        max_abs = max_abs.max(max_abs_diff(got, &r.logits[pos]));
        argmax_flips += usize::from(argmax(got) != argmax(&r.logits[pos]));
    }
    let (greedy, _) =
        generate_blocking(&mut g, prompt, GREEDY_STEPS, SamplerConfig::default(), |_| false, || 0.0, |_| true).unwrap();
    let first_diff = greedy.iter().zip(&r.greedy).position(|(a, b)| a != b);
    eprintln!(
        "KV {}, activations {}: logits max |Δ| {max_abs:.3e} over {POSITIONS} positions, {argmax_flips} argmax \
         flip(s); greedy first difference {first_diff:?}; {:.1} s",
        kv.name(),
        activations.name(),
        t.elapsed().as_secs_f64()
    );
    Outcome { max_abs, argmax_flips, greedy }
}

/// f16 keeps 11 significant bits: keys and values move by ≤ 2^-12 relative, which moved the
/// logits (up to ~30 in magnitude) by at most 1.0e-2 over the 32 positions (measured); 3x margin.
const F16_TOL: f32 = 3e-2;

#[test]
fn default_model_f16_kv_matches_cpu_logits_and_greedy_tokens() {
    let Some((r, o)) = compare(KvFormat::F16) else { return };
    assert!(o.max_abs <= F16_TOL, "f16 KV: logits max |Δ| {} > {F16_TOL}", o.max_abs);
    assert_eq!(o.argmax_flips, 0, "f16 KV: argmax differs from the CPU's");
    assert_eq!(o.greedy, r.greedy, "f16 KV: greedy tokens");
}

/// int8 rounds each value to a step of absmax/127 over its head's 64 values: up to 0.4% of the
/// head's largest value, coarse for the small values of a head with a few large channels — far
/// more than f16's error. Measured max |Δlogit| 0.55 over 32 positions; bound 1.0.
const INT8_TOL: f32 = 1.0;
/// Positions (of 32) where int8 may change the argmax: 3 measured (an error of ~0.5 logit
/// reorders near ties). Greedy decoding then follows another path (the 5th token differed),
/// which is why int8 is not held to the CPU's greedy text.
const INT8_MAX_FLIPS: usize = 8;

#[test]
fn default_model_int8_kv_logits_close_to_cpu() {
    let Some((r, o)) = compare(KvFormat::Int8) else { return };
    assert!(o.max_abs <= INT8_TOL, "int8 KV: logits max |Δ| {} > {INT8_TOL}", o.max_abs);
    // The logits differ measurably from the f32 cache's (this is not silently an f32 cache).
    assert!(o.max_abs > 1e-3, "int8 KV: logits max |Δ| {} — suspiciously exact", o.max_abs);
    assert!(o.argmax_flips <= INT8_MAX_FLIPS, "int8 KV: {} argmax flips over {POSITIONS} positions", o.argmax_flips);
    // The first generated tokens (before any near-tie) still agree with the CPU's.
    assert_eq!(o.greedy[..3], r.greedy[..3], "int8 KV: first greedy tokens");
}

/// Perplexity over one window of the held-out eval text: int8 KV (GPU) vs the f32 cache (CPU
/// reference forward; the GPU's f32 cache matches it to 1e-4, see `gpu_forward`). Measured:
/// +1.60%, KL 9.3e-4 nats, top-1 98.4% (one position at a time before block evaluation: +1.67%,
/// KL 8.5e-4, top-1 96.8%). Bounds: |Δppl| ≤ 4% relative, KL ≤ 4e-3, top-1 ≥ 90%,
/// and Δppl ≠ 0 (an int8 cache that silently stayed f32 would give exactly the CPU's numbers).
#[test]
fn default_model_int8_kv_perplexity_close_to_f32() {
    let Some(_) = gpu() else { return };
    let Some(e) = eval_window(KvFormat::Int8, ActivationPrecision::F32) else { return };
    let (rel, kl, top1) = (e.rel, e.kl, e.top1);
    assert!(rel.abs() <= 0.04 && rel.abs() > 1e-5, "int8 KV: ppl {} vs {} ({:+.3}%)", e.ppl, e.cpu_ppl, 100.0 * rel);
    assert!(kl <= 4e-3 && top1 >= 0.90, "int8 KV: KL {kl}, top-1 {top1}");
}

/// Perplexity, KL and top-1 agreement of the GPU forward (`kv`, `activations`) against the
/// CPU reference forward (f32) over one window of 64 tokens of the held-out eval text.
pub(crate) struct EvalWindow {
    pub ppl: f64,
    pub cpu_ppl: f64,
    /// (ppl − cpu_ppl) / cpu_ppl.
    pub rel: f64,
    pub kl: f64,
    pub top1: f64,
}

pub(crate) fn eval_window(kv: KvFormat, activations: ActivationPrecision) -> Option<EvalWindow> {
    let gpu = gpu()?;
    let d = default_model()?;
    let (text, _) = default_text().expect("the eval text (scripts/setup.sh writes data/moby-dick)");
    let tokens = d.tokenizer.encode(&text, false, false);
    let ctx = 64;
    let plan = plan(&tokens, ctx, Protocol::Default, false, None, Some(1)).unwrap();
    let mut cpu = ModelSource::new(&d.model, ctx, 1);
    let mut g = GpuModel::new_blocking(gpu, &d.model, ctx, kv, activations).expect("upload");
    let mut sources: Vec<&mut dyn LogitSource> = vec![&mut cpu, &mut g];
    let m = evaluate(&plan, &mut sources, EvalHooks::default()).unwrap();
    assert_eq!(m[1].tokens_scored, ctx - 1);
    let e = EvalWindow {
        ppl: m[1].ppl,
        cpu_ppl: m[0].ppl,
        rel: (m[1].ppl - m[0].ppl) / m[0].ppl,
        kl: m[1].kl_mean.unwrap(),
        top1: m[1].top1_agreement.unwrap(),
    };
    eprintln!(
        "KV {}, activations {}: perplexity over {} tokens {:.4} vs f32 (CPU) {:.4}: {:+.4}%; KL {:.2e}; top-1 {:.2}%",
        kv.name(),
        activations.name(),
        m[1].tokens_scored,
        e.ppl,
        e.cpu_ppl,
        100.0 * e.rel,
        e.kl,
        100.0 * e.top1
    );
    Some(e)
}

fn quantlab(args: &[&str]) -> (String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_quantlab")).args(args).output().expect("run quantlab");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "quantlab {args:?}: {stderr}");
    (stdout, stderr)
}

/// `--kv-cache` end to end: the device line names the format; f16 on the GPU gives the CPU's
/// greedy text; `auto` with int8 probes as with f32 (the CPU stores int8 too); eval reports the
/// format, its first row the f32-cache reference.
#[test]
fn cli_kv_cache_on_the_gpu() {
    let Some(_) = gpu() else { return };
    let Some(path) = model_path() else { return };
    let path = path.to_str().unwrap();
    let generate =
        |device, kv| quantlab(&["generate", path, "-p", "The sea", "-n", "4", "--device", device, "--kv-cache", kv]);
    let (cpu_text, cpu_err) = generate("cpu", "f32");
    assert!(cpu_err.contains("device: cpu (--device cpu); KV cache f32 (CPU)"), "{cpu_err}");
    let (f16_text, f16_err) = generate("gpu", "f16");
    assert!(f16_err.contains("device: gpu (--device gpu); KV cache f16 (GPU)"), "{f16_err}");
    assert_eq!(f16_text, cpu_text, "greedy text with an f16 KV cache");
    let (_, auto_err) = generate("auto", "int8");
    assert!(auto_err.contains("tok/s vs") && auto_err.contains("KV cache int8 ("), "{auto_err}");

    let eval = |kv| {
        let (out, _) = quantlab(&[
            "eval",
            path,
            "--ctx",
            "8",
            "--max-windows",
            "1",
            "--json",
            "--device",
            "gpu",
            "--kv-cache",
            kv,
        ]);
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let (f32_report, int8_report) = (eval("f32"), eval("int8"));
    assert_eq!((f32_report["kv_cache"].as_str(), int8_report["kv_cache"].as_str()), (Some("f32"), Some("int8")));
    let ppl = |r: &serde_json::Value, row: usize| r["rows"][row]["ppl"].as_f64().unwrap();
    // The int8 report's row 0 is the base with an f32 cache (the reference), row 1 with int8.
    assert_eq!(ppl(&int8_report, 0), ppl(&f32_report, 0));
    let (p32, p8) = (ppl(&f32_report, 0), ppl(&int8_report, 1));
    // 7 scored tokens at ppl ~2000: measured +2.1%, a noisier estimate than the 64-token window.
    assert!(p32 != p8 && (p8 - p32).abs() <= 0.06 * p32, "ppl f32 KV {p32} vs int8 KV {p8}");
    let (table, _) =
        quantlab(&["eval", path, "--ctx", "8", "--max-windows", "1", "--device", "gpu", "--kv-cache", "f16"]);
    assert!(table.contains("; KV cache f16"), "{table}");
}
