//! The runtime as the web lab drives it: eval on the real eval text against the numpy reference,
//! the native numbers the wasm test compares with, and cancellation of the long-running calls.
//!
//! `tests/fixtures/forward/runtime_native.json` holds what THIS native code computes for the
//! settings of tests/wasm/model.test.ts (default protocol, ctx 64, 2 windows, base + q8_0;
//! 16 greedy tokens of the base, and of q4_0 and int4-asym-g128 copies). [`native_golden_is_current`] recomputes it on every run and fails if it
//! differs, so the golden cannot go stale; regenerate it after an intended change with
//! `QUANTLAB_BLESS=1 cargo test --test integration runtime::native_golden_is_current`.

use crate::gguf::model_path;
use quantlab::cli::eval::default_text;
use quantlab::error::{ErrorKind, HasKind};
use quantlab::formats::{QuantScheme, Saturation};
use quantlab::gguf::GgufFile;
use quantlab::io::export::{quantize_gguf, ExportError, ExportKind};
use quantlab::model::eval::{evaluate, plan, EvalError, EvalHooks, LogitSource, ModelSource, Protocol};
use quantlab::model::generate::generate;
use quantlab::model::quantize::{quantize_model_with_progress, QuantizeModelError};
use quantlab::model::{quantize_model, Model, Sampler, SamplerConfig, State, TensorPolicy};
use quantlab::tokenizer::Tokenizer;
use serde_json::{json, Value};
use std::path::Path;

/// Settings shared with tests/wasm/model.test.ts.
const CTX: usize = 64;
const WINDOWS: usize = 2;
const GREEDY_PROMPT: &str = "The capital of France is";
const GREEDY_TOKENS: usize = 16;
/// Re-quantized copies whose greedy tokens the wasm test also compares.
const GREEDY_FORMATS: [&str; 2] = ["q4_0", "int4-asym-g128"];

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/forward").join(name)
}

fn load() -> Option<(Vec<u8>, Model, Tokenizer)> {
    let bytes = std::fs::read(model_path()?).expect("read the model");
    let gguf = GgufFile::parse(&bytes, bytes.len() as u64).unwrap();
    let tok = Tokenizer::from_gguf(&gguf).unwrap();
    let model = Model::from_gguf(&gguf, &bytes).unwrap();
    Some((bytes, model, tok))
}

/// Our tokens and perplexity of the eval text's first windows against the numpy float64 forward
/// and Hugging Face tokenizer (scripts/dev/reference_ppl.py --eval-text 64 2).
#[test]
fn eval_text_matches_numpy_reference() {
    let Some((_, model, tok)) = load() else { return };
    let want: Value = serde_json::from_str(&std::fs::read_to_string(fixture("ppl_evaltext.json")).unwrap()).unwrap();
    let (text, _) = default_text().expect("data/moby-dick is present");
    let tokens = tok.encode(&text, false, false);
    assert_eq!(tokens.len() as u64, want["text_tokens"].as_u64().unwrap(), "token count of the eval text");
    let ctx = want["ctx"].as_u64().unwrap() as usize;
    let windows = want["windows"].as_array().unwrap();
    let p = plan(&tokens, ctx, Protocol::Default, false, None, Some(windows.len())).unwrap();
    for (w, ref_w) in p.windows.iter().zip(windows) {
        let ref_tokens: Vec<u32> =
            ref_w["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect();
        assert_eq!(w, &ref_tokens, "window tokens differ from the HF tokenizer's");
    }
    let mut src = ModelSource::new(&model, ctx, 2);
    let m = evaluate(&p, &mut [&mut src as &mut dyn LogitSource], EvalHooks::default()).unwrap();
    let ppl_ref = want["ppl"].as_f64().unwrap();
    assert_eq!(m[0].tokens_scored as u64, want["scored"].as_u64().unwrap());
    let rel = (m[0].ppl - ppl_ref).abs() / ppl_ref;
    eprintln!("eval text ctx {ctx} x {}: ppl {} vs numpy {ppl_ref} (rel {rel:.2e})", windows.len(), m[0].ppl);
    assert!(rel < 0.005, "ppl {} vs numpy reference {ppl_ref}", m[0].ppl);
}

/// What the wasm test must reproduce, computed natively.
fn native_numbers(bytes: &[u8], model: &Model, tok: &Tokenizer) -> Value {
    let (text, _) = default_text().expect("data/moby-dick is present");
    let tokens = tok.encode(&text, false, false);
    let p = plan(&tokens, CTX, Protocol::Default, false, None, Some(WINDOWS)).unwrap();
    let (q8, _) = quantize_model(model, &QuantScheme::parse("q8_0").unwrap(), &TensorPolicy::default()).unwrap();
    let mut base = ModelSource::new(model, CTX, 2);
    let mut quant = ModelSource::new(&q8, CTX, 2);
    let m = evaluate(&p, &mut [&mut base as &mut dyn LogitSource, &mut quant], EvalHooks::default()).unwrap();
    let prompt = tok.encode(GREEDY_PROMPT, tok.add_bos_default(), true);
    let greedy_of = |model: &Model| {
        let mut state = State::new(&model.config, prompt.len() + GREEDY_TOKENS);
        let mut sampler = Sampler::new(SamplerConfig::default());
        generate(model, &mut state, &prompt, GREEDY_TOKENS, &mut sampler, |id| tok.is_eog(id), || 0.0, |_| true)
            .unwrap()
            .0
    };
    let greedy = greedy_of(model);
    // Formats whose wasm dot products have their own SIMD128 code (model/kernels_simd128.rs)
    // beyond what base (Q4_1, Q8_0 output) and q8_0 exercise.
    let greedy_formats: serde_json::Map<String, Value> = GREEDY_FORMATS
        .iter()
        .map(|&f| {
            let (q, _) = quantize_model(model, &QuantScheme::parse(f).unwrap(), &TensorPolicy::default()).unwrap();
            (f.to_string(), json!(greedy_of(&q)))
        })
        .collect();
    let metrics = |i: usize| {
        json!({
            "ppl": m[i].ppl, "ppl_stderr": m[i].ppl_stderr, "mean_nll": m[i].mean_nll,
            "kl_mean": m[i].kl_mean, "kl_max": m[i].kl_max, "top1_agreement": m[i].top1_agreement,
        })
    };
    json!({
        "about": "Native results for tests/wasm/model.test.ts, recomputed by tests/rust/runtime.rs on every run \
                  (QUANTLAB_BLESS=1 rewrites them). Default protocol on the eval text, base = the Q4_1 checkpoint, \
                  q8_0 = it re-quantized in memory with the shared tensor policy.",
        "ctx": CTX, "windows": WINDOWS, "tokens_scored": p.tokens_scored(),
        "base": metrics(0), "q8_0": metrics(1),
        "greedy": { "prompt": GREEDY_PROMPT, "prompt_ids": prompt, "tokens": greedy },
        "greedy_formats": greedy_formats,
        "export_q8_0": export_fingerprint(bytes, "q8_0"),
    })
}

/// FNV-1a (32-bit) of `bytes`: cheap to compute in JS too.
fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// Length and hash of the file `quantlab quantize` (= `exportQuantized`) writes for `format`.
fn export_fingerprint(bytes: &[u8], format: &str) -> Value {
    let scheme = QuantScheme::parse(format).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    let kind = ExportKind::for_scheme(&scheme);
    quantize_gguf(bytes, &scheme, kind, &TensorPolicy::default(), Saturation::Refuse, &mut out, &mut |_, _, _| true)
        .unwrap();
    let out = out.into_inner();
    json!({ "extension": kind.extension(), "bytes": out.len(), "fnv1a32": fnv1a32(&out) })
}

#[test]
fn native_golden_is_current() {
    let Some((bytes, model, tok)) = load() else { return };
    let got = native_numbers(&bytes, &model, &tok);
    let path = fixture("runtime_native.json");
    if std::env::var("QUANTLAB_BLESS").as_deref() == Ok("1") {
        std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
        return;
    }
    let want: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("runtime_native.json")).unwrap();
    // Same code, same machine arithmetic: identical (f64 survives the JSON round trip).
    assert_eq!(got, want, "native results changed: rerun with QUANTLAB_BLESS=1 if intended");
}

/// A progress callback returning false stops each long call with a typed "cancelled" error.
#[test]
fn long_calls_cancel() {
    let Some((bytes, model, tok)) = load() else { return };
    let q8 = QuantScheme::parse("q8_0").unwrap();
    let mut seen = Vec::new();
    let r = quantize_model_with_progress(&model, &q8, &TensorPolicy::default(), &mut |done, total, name| {
        seen.push((done, total, name.to_string()));
        done < 3
    });
    assert!(matches!(r, Err(QuantizeModelError::Cancelled { done: 3, total: 211 })), "{:?}", r.err());
    assert_eq!(seen.last().unwrap().2, "blk.0.attn_k.weight");
    assert_eq!(r.unwrap_err().kind(), ErrorKind::cancelled(3, 211));

    let mut out = std::io::Cursor::new(Vec::new());
    let r = quantize_gguf(
        &bytes,
        &q8,
        ExportKind::Gguf,
        &TensorPolicy::default(),
        Saturation::Refuse,
        &mut out,
        &mut |d, _, _| d < 5,
    );
    assert!(matches!(r, Err(ExportError::Cancelled { done: 5, total: 272 })), "{r:?}");

    let text = "Call me Ishmael. Some years ago, never mind how long precisely, having little or no money.";
    let tokens = tok.encode(text, false, false);
    let p = plan(&tokens, 8, Protocol::Default, false, None, Some(2)).unwrap();
    let mut src = ModelSource::new(&model, 8, 1);
    let mut calls = Vec::new();
    let mut positions = |d: usize, t: usize| {
        calls.push((d, t));
        d < 10
    };
    let hooks = EvalHooks { positions: Some(&mut positions), ..Default::default() };
    let r = evaluate(&p, &mut [&mut src as &mut dyn LogitSource], hooks);
    assert_eq!(r, Err(EvalError::Cancelled { positions_done: 10, positions_total: 14 }));
    assert_eq!(calls, (1..=10).map(|d| (d, 14)).collect::<Vec<_>>(), "called after every position");
}

/// The positions hook does not change the numbers.
#[test]
fn positions_hook_keeps_numbers() {
    let Some((_, model, tok)) = load() else { return };
    let tokens =
        tok.encode("It is a way I have of driving off the spleen, and regulating the circulation.", false, false);
    let p = plan(&tokens, 8, Protocol::Default, false, None, None).unwrap();
    let run = |with_hook: bool| {
        let mut src = ModelSource::new(&model, 8, 1);
        let mut count = 0;
        let mut positions = |_: usize, _: usize| {
            count += 1;
            true
        };
        let hooks = EvalHooks { positions: with_hook.then_some(&mut positions as _), ..Default::default() };
        let m = evaluate(&p, &mut [&mut src as &mut dyn LogitSource], hooks).unwrap();
        (m, count)
    };
    let (plain, none) = run(false);
    let (hooked, n) = run(true);
    assert_eq!(plain, hooked);
    assert_eq!((none, n), (0, p.windows.len() * 7));
}
