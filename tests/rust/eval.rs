//! Evaluation protocol (crate/src/model/eval.rs) and `quantlab eval`.
//!
//! Unit checks use injected logits (a fake [`LogitSource`]); the perplexity of the real model
//! is checked against tests/fixtures/forward/ppl_reference.json (numpy float64 forward,
//! scripts/dev/reference_ppl.py), the paired statistics against
//! tests/fixtures/eval/paired_stats.json (numpy port of llama-perplexity's formulas,
//! scripts/dev/paired_stats_reference.py); the CLI runs end to end on the default model.

use crate::gguf::model_path;
use quantlab::model::eval::{
    argmax, evaluate, join_chapters, kl_divergence, log_softmax, plan, EvalError, EvalHooks, LogitSource, ModelSource,
    PairedAcc, Protocol, CALIBRATION_CHAPTERS, DEFAULT_CTX, EVAL_CHAPTERS,
};
use quantlab::model::{Model, ModelError};
use std::path::Path;

/// Logits from a function of (token, pos); counts calls and window starts.
struct Fake<F: FnMut(u32, usize) -> Vec<f32>> {
    f: F,
    buf: Vec<f32>,
    calls: Vec<(u32, usize)>,
    windows: usize,
}

impl<F: FnMut(u32, usize) -> Vec<f32>> Fake<F> {
    fn new(f: F) -> Self {
        Fake { f, buf: Vec::new(), calls: Vec::new(), windows: 0 }
    }
}

impl<F: FnMut(u32, usize) -> Vec<f32>> LogitSource for Fake<F> {
    fn begin_window(&mut self) {
        self.windows += 1;
    }
    fn logits(&mut self, token: u32, pos: usize) -> Result<&[f32], ModelError> {
        self.calls.push((token, pos));
        self.buf = (self.f)(token, pos);
        Ok(&self.buf)
    }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

#[test]
fn chapters_are_disjoint_and_joined() {
    for c in EVAL_CHAPTERS {
        assert!(!CALIBRATION_CHAPTERS.contains(&c), "chapter {c} in both sets");
    }
    assert_eq!(join_chapters(&["a", "b", "c"]), "a\n\nb\n\nc");
    assert_eq!(DEFAULT_CTX, 512);
}

#[test]
fn default_protocol_windows() {
    let tokens: Vec<u32> = (0..1000).collect();
    let p = plan(&tokens, 128, Protocol::Default, false, Some(1), None).unwrap();
    assert_eq!(p.windows.len(), 7);
    assert_eq!(p.windows_available, 7);
    assert_eq!(p.tokens_dropped, 1000 - 7 * 128);
    assert_eq!(p.windows[1][0], 128, "non-overlapping from the start");
    assert_eq!(p.scored_per_window(), 127);
    assert_eq!(p.tokens_scored(), 7 * 127);
    assert_eq!(p.bos, None, "the default protocol never writes a BOS");
    let pos: Vec<(usize, u32)> = p.scored_positions(0).collect();
    assert_eq!(pos.first(), Some(&(0, 1)));
    assert_eq!(pos.last(), Some(&(126, 127)));
    let capped = plan(&tokens, 128, Protocol::Default, false, None, Some(2)).unwrap();
    assert_eq!((capped.windows.len(), capped.tokens_scored(), capped.windows_available), (2, 254, 7));
    assert!(matches!(plan(&tokens[..100], 128, Protocol::Default, false, None, None), Err(EvalError::NoWindow { .. })));
    assert!(matches!(plan(&tokens, 1, Protocol::Default, false, None, None), Err(EvalError::CtxTooSmall(1))));
    assert!(matches!(plan(&tokens, 8, Protocol::Default, false, None, Some(0)), Err(EvalError::ZeroWindows)));
}

#[test]
fn llama_cpp_protocol_windows() {
    let tokens: Vec<u32> = (10..1010).collect();
    // add_bos: the first token of every chunk becomes BOS; second half scored.
    let p = plan(&tokens, 512, Protocol::LlamaCpp, true, Some(1), None);
    assert!(matches!(p, Err(EvalError::TooFewTokens { tokens: 1000, ctx: 512 })), "llama.cpp needs 2*n_ctx tokens");
    let p = plan(&tokens, 100, Protocol::LlamaCpp, true, Some(7), None).unwrap();
    assert_eq!(p.windows.len(), 10);
    assert_eq!(p.first_logit, 50);
    assert_eq!(p.scored_per_window(), 100 - 1 - 50);
    assert_eq!(p.windows[0][0], 7);
    assert_eq!(p.windows[3][0], 7);
    assert_eq!(p.windows[3][1], 311);
    let pos: Vec<(usize, u32)> = p.scored_positions(0).collect();
    assert_eq!(pos.first(), Some(&(50, 61)));
    assert_eq!(pos.last(), Some(&(98, 109)));
    assert_eq!(pos.len(), 49);
    // 512: 255 per chunk, like llama-perplexity's count += n_ctx - first - 1.
    let long: Vec<u32> = (0..2100).collect();
    let p = plan(&long, 512, Protocol::LlamaCpp, false, Some(1), None).unwrap();
    assert_eq!((p.windows.len(), p.scored_per_window(), p.bos), (4, 255, None));
    assert_eq!(p.windows[1][0], 512, "no BOS substitution when add_bos is false");
    assert!(matches!(plan(&long, 512, Protocol::LlamaCpp, true, None, None), Err(EvalError::NoBos)));
    assert!(!Protocol::LlamaCpp.tokenize_with_bos(false));
    assert!(Protocol::LlamaCpp.tokenize_with_bos(true));
    assert!(!Protocol::Default.tokenize_with_bos(true));
}

#[test]
fn evaluate_runs_the_right_positions() {
    let tokens: Vec<u32> = (0..40).map(|i| i % 5).collect();
    for (protocol, ctx, first) in [(Protocol::Default, 10, 0), (Protocol::LlamaCpp, 10, 5)] {
        let p = plan(&tokens, ctx, protocol, false, None, None).unwrap();
        let mut base = Fake::new(|_, _| vec![0.0; 5]);
        let m = evaluate(&p, &mut [&mut base as &mut dyn LogitSource], EvalHooks::default()).unwrap();
        assert_eq!(base.windows, 4);
        // Position ctx-1 predicts nothing and is not run.
        assert_eq!(base.calls.len(), 4 * (ctx - 1));
        assert_eq!(base.calls[0], (0, 0));
        assert_eq!(m[0].tokens_scored, 4 * (ctx - 1 - first));
        assert_eq!(m[0].tokens_run, 4 * (ctx - 1));
        assert_eq!(m[0].forward_secs, None);
    }
}

#[test]
fn uniform_distribution_has_ppl_vocab() {
    let tokens: Vec<u32> = (0..300).map(|i| (i * 7 % 50) as u32).collect();
    let p = plan(&tokens, 30, Protocol::Default, false, None, None).unwrap();
    let mut base = Fake::new(|_, _| vec![1.25; 50]);
    let m = evaluate(&p, &mut [&mut base as &mut dyn LogitSource], EvalHooks::default()).unwrap();
    assert!(close(m[0].ppl, 50.0, 1e-12), "ppl {}", m[0].ppl);
    assert!(close(m[0].mean_nll, 50f64.ln(), 1e-12));
    assert_eq!(m[0].ppl_stderr, 0.0);
    assert_eq!((m[0].kl_mean, m[0].top1_agreement), (None, None));
}

#[test]
fn log_softmax_kl_argmax() {
    let mut lp = Vec::new();
    log_softmax(&[0.0, (2f32).ln(), (5f32).ln()], &mut lp);
    let want = [1.0 / 8.0, 2.0 / 8.0, 5.0 / 8.0];
    for (a, w) in lp.iter().zip(want) {
        assert!(close(a.exp(), w, 1e-7), "{} vs {w}", a.exp());
    }
    // Huge logits do not overflow.
    log_softmax(&[1000.0, 1000.0], &mut lp);
    assert!(close(lp[0], -(2f64.ln()), 1e-12));
    // KL of identical distributions is 0; of known ones the hand value.
    log_softmax(&[0.3, -1.0, 2.0], &mut lp);
    assert_eq!(kl_divergence(&lp, &lp), 0.0);
    let (p, q) = ([0.5f64, 0.5], [0.25f64, 0.75]);
    let lp: Vec<f64> = p.iter().map(|x| x.ln()).collect();
    let lq: Vec<f64> = q.iter().map(|x| x.ln()).collect();
    let hand = 0.5 * (0.5f64 / 0.25).ln() + 0.5 * (0.5f64 / 0.75).ln();
    assert!(close(kl_divergence(&lp, &lq), hand, 1e-15));
    assert!(close(hand, 0.143_841_036_225_890_1, 1e-12));
    assert_eq!(argmax(&[1.0, 3.0, 3.0, -2.0]), 1, "lowest index on ties");
}

#[test]
fn lockstep_kl_top1_and_delta() {
    // Base: a fixed distribution favouring token (pos % 4); quant: the same, or for odd positions
    // uniform (KL = log 4 - H(base) there; argmax differs... uniform's argmax is 0).
    let base_logits = |pos: usize| {
        let mut v = vec![0f32; 4];
        v[pos % 4] = 2.0;
        v
    };
    let tokens: Vec<u32> = (0..24).map(|i| (i % 4) as u32).collect();
    let p = plan(&tokens, 8, Protocol::Default, false, None, None).unwrap();
    let mut base = Fake::new(|_, pos| base_logits(pos));
    let mut same = Fake::new(|_, pos| base_logits(pos));
    let mut half = Fake::new(|_, pos| if pos % 2 == 1 { vec![0f32; 4] } else { base_logits(pos) });
    let m = evaluate(
        &p,
        &mut [&mut base as &mut dyn LogitSource, &mut same as &mut dyn LogitSource, &mut half as &mut dyn LogitSource],
        EvalHooks::default(),
    )
    .unwrap();
    assert_eq!(m[1].kl_mean, Some(0.0));
    assert_eq!(m[1].top1_agreement, Some(1.0));
    assert_eq!(m[1].delta_ppl(&m[0]), (0.0, 0.0));
    // Hand value at an odd position: p = (e², 1, 1, 1)/(e²+3) vs uniform.
    let z = (2f64).exp() + 3.0;
    let pb = [(2f64).exp() / z, 1.0 / z, 1.0 / z, 1.0 / z];
    let kl_odd: f64 = pb.iter().map(|&x| x * (x / 0.25).ln()).sum();
    // Scored positions 0..=6 in each of 3 windows: odd ones 1, 3, 5 → 3 of 7.
    let want = kl_odd * 3.0 / 7.0;
    assert!(close(m[2].kl_mean.unwrap(), want, 1e-12), "{:?} vs {want}", m[2].kl_mean);
    // Argmax agrees at even positions (7 - 3 = 4 of 7); at odd positions uniform's argmax is 0,
    // the base's is 1 or 3.
    assert!(close(m[2].top1_agreement.unwrap(), 4.0 / 7.0, 1e-15));
    let (d, rel) = m[2].delta_ppl(&m[0]);
    assert!(close(d, m[2].ppl - m[0].ppl, 1e-15) && close(rel, d / m[0].ppl, 1e-15));
}

/// The paired statistics of fixed per-token arrays against the numpy port of
/// llama-perplexity --kl-divergence's formulas.
#[test]
fn paired_stats_match_numpy_reference() {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/eval/paired_stats.json"));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let floats = |k: &str| json[k].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect::<Vec<f64>>();
    let (nll_base, nll_q, kl) = (floats("nll_base"), floats("nll_q"), floats("kl"));
    let same_top: Vec<bool> = json["same_top"].as_array().unwrap().iter().map(|v| v.as_bool().unwrap()).collect();
    let mut acc = PairedAcc::default();
    assert!(acc.finish().is_none());
    for i in 0..nll_q.len() {
        acc.push(nll_base[i], nll_q[i], kl[i], same_top[i]);
    }
    let want = &json["expected"];
    assert_eq!(acc.count() as u64, want["count"].as_u64().unwrap());
    let p = acc.finish().unwrap();
    let got = serde_json::to_value(&p).unwrap();
    for (k, v) in got.as_object().unwrap() {
        let (g, w) = (v.as_f64().unwrap(), want[k].as_f64().unwrap_or_else(|| panic!("{k} missing in the fixture")));
        assert!(close(g, w, 1e-9), "{k}: {g} vs numpy {w}");
    }
    // The pair is strongly correlated, so the paired Δppl is far tighter than either ppl's ±.
    assert!(p.delta_ppl > 3.0 * p.delta_ppl_stderr, "{p:?}");
}

/// Two sources that agree exactly: every paired difference and its standard error is zero.
#[test]
fn paired_stats_of_identical_sources_are_zero() {
    let mut acc = PairedAcc::default();
    for i in 0..50 {
        let nll = 1.0 + (i % 7) as f64 * 0.3;
        acc.push(nll, nll, 0.0, true);
    }
    let p = acc.finish().unwrap();
    assert_eq!((p.ln_ppl_ratio, p.ln_ppl_ratio_stderr, p.delta_ppl), (0.0, 0.0, 0.0));
    assert!(p.delta_ppl_stderr < 1e-6, "{p:?}");
    assert_eq!((p.ppl_ratio, p.kl_mean, p.kl_stderr, p.top1, p.top1_stderr), (1.0, 0.0, 0.0, 1.0, 0.0));
}

fn model() -> Option<Model> {
    let bytes = std::fs::read(model_path()?).expect("read the model");
    Some(Model::from_gguf_bytes(&bytes).expect("the default model loads"))
}

/// Our perplexity of the fixture's 40-token window against the numpy float64 reference.
#[test]
fn ppl_matches_numpy_reference() {
    let Some(model) = model() else { return };
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/forward/ppl_reference.json"));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let tokens: Vec<u32> = json["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect();
    assert_eq!(tokens.len(), 40);
    for (protocol, key) in [(Protocol::Default, "default"), (Protocol::LlamaCpp, "llama_cpp")] {
        let want = &json[key];
        // llama.cpp needs 2*n_ctx tokens for its first chunk: give it the window twice, keep one.
        let input: Vec<u32> =
            if protocol == Protocol::LlamaCpp { [&tokens[..], &tokens[..]].concat() } else { tokens.clone() };
        let p = plan(&input, 40, protocol, false, None, Some(1)).unwrap();
        assert_eq!(p.tokens_scored() as u64, want["scored"].as_u64().unwrap());
        let mut src = ModelSource::new(&model, 40, 2);
        let m = evaluate(&p, &mut [&mut src as &mut dyn LogitSource], EvalHooks::default()).unwrap();
        let ppl_ref = want["ppl"].as_f64().unwrap();
        let rel = (m[0].ppl - ppl_ref).abs() / ppl_ref;
        eprintln!("{key}: ppl {} vs numpy {ppl_ref} (rel {rel:.2e})", m[0].ppl);
        assert!(rel < 0.005, "{key}: ppl {} vs numpy reference {ppl_ref}", m[0].ppl);
    }
}

fn quantlab(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_quantlab")).args(args).output().expect("run quantlab")
}

#[test]
fn cli_eval_end_to_end() {
    let Some(path) = model_path() else { return };
    let path = path.to_str().unwrap();
    let o = quantlab(&[
        "eval",
        path,
        "--ctx",
        "64",
        "--max-windows",
        "2",
        "--format",
        "q8_0",
        "--format",
        "q4_0",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["protocol"], "default");
    assert_eq!(j["ctx"], 64);
    assert_eq!(j["windows"], 2);
    assert_eq!(j["tokens_scored"], 2 * 63);
    assert_eq!(j["source_format"], "Q4_1");
    assert!(j["text_source"].as_str().unwrap().contains("Moby-Dick chapters 1-3"));
    let rows = j["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["format"], "base (Q4_1 checkpoint)");
    assert_eq!(rows[1]["format"], "q8_0");
    assert!(rows[0]["kl_mean"].is_null());
    let kl = |i: usize| rows[i]["kl_mean"].as_f64().unwrap();
    assert!(kl(1) >= 0.0 && kl(1) < kl(2), "KL q8_0 {} should be below q4_0 {}", kl(1), kl(2));
    for r in rows {
        let ppl = r["ppl"].as_f64().unwrap();
        assert!(ppl.is_finite() && ppl > 1.0, "{r}");
        assert!(r["tokens_per_sec"].as_f64().unwrap() > 0.0);
    }
    let base_ppl = rows[0]["ppl"].as_f64().unwrap();
    assert!(close(rows[2]["delta_ppl"].as_f64().unwrap(), rows[2]["ppl"].as_f64().unwrap() - base_ppl, 1e-12));
    // Paired statistics: absent for the base; for a format, Δppl as above with a standard error,
    // and KL / top-1 as the unpaired columns.
    assert!(rows[0]["paired"].is_null());
    let p = &rows[2]["paired"];
    assert!(close(p["delta_ppl"].as_f64().unwrap(), rows[2]["delta_ppl"].as_f64().unwrap(), 1e-9), "{p}");
    assert!(p["delta_ppl_stderr"].as_f64().unwrap() > 0.0, "{p}");
    assert!(close(p["kl_mean"].as_f64().unwrap(), kl(2), 1e-9), "{p}");
    assert!(close(p["top1"].as_f64().unwrap(), rows[2]["top1_agreement"].as_f64().unwrap(), 1e-12), "{p}");
    assert!(close(p["ppl_ratio"].as_f64().unwrap(), rows[2]["ppl"].as_f64().unwrap() / base_ppl, 1e-9), "{p}");

    // The text table: header lines and one row per format.
    let o = quantlab(&["eval", path, "--ctx", "16", "--max-windows", "1", "--protocol", "llama.cpp"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.contains("protocol llama.cpp: ctx 16, 1 window(s)"), "{out}");
    assert!(out.contains("7 tokens scored"), "{out}");
    assert!(out.contains("no BOS (the model's add_bos_token is false)"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("format ") && l.contains("ppl") && l.contains("KL")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("base (Q4_1 checkpoint)")), "{out}");

    let o = quantlab(&["eval", path, "--text", "/nonexistent/file.txt"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read '/nonexistent/file.txt'"));
}
