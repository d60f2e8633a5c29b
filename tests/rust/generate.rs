//! The sampler (`quantlab::model::sampler`), the generation loop and `quantlab generate`.

use crate::gguf::model_path;
use quantlab::model::generate::{generate, StopReason};
use quantlab::model::sampler::argmax;
use quantlab::model::{Model, Sampler, SamplerConfig, State};
use quantlab::tokenizer::Tokenizer;
use std::path::Path;
use std::process::{Command, Output};

fn logits(n: usize, seed: u64) -> Vec<f32> {
    let mut r = quantlab::model::Rng::new(seed);
    (0..n).map(|_| r.next_f32() * 8.0 - 4.0).collect()
}

fn draws(cfg: SamplerConfig, l: &[f32], n: usize) -> Vec<u32> {
    let mut s = Sampler::new(cfg);
    (0..n).map(|_| s.sample(l)).collect()
}

#[test]
fn sampler_seeds_greedy_and_edges() {
    let l = logits(1000, 3);
    let g = argmax(&l);
    let cfg = SamplerConfig { temperature: 1.0, top_k: 0, top_p: 1.0, seed: 11 };
    // Same seed, same tokens; another seed, other tokens.
    assert_eq!(draws(cfg, &l, 50), draws(cfg, &l, 50));
    assert_ne!(draws(cfg, &l, 50), draws(SamplerConfig { seed: 12, ..cfg }, &l, 50));
    // Greedy equivalents: temperature 0, top-k 1, top-p 0 (and a vanishing top-p keeps only the top token).
    for c in [
        SamplerConfig { temperature: 0.0, ..cfg },
        SamplerConfig { top_k: 1, ..cfg },
        SamplerConfig { top_p: 0.0, ..cfg },
        SamplerConfig { top_p: 1e-9, ..cfg },
        SamplerConfig::default(),
    ] {
        assert!(draws(c, &l, 20).iter().all(|&t| t == g), "{c:?}");
    }
    // top-k 3: only the three largest logits ever come out, and all of them do at a high temperature.
    let mut order: Vec<u32> = (0..l.len() as u32).collect();
    order.sort_by(|a, b| l[*b as usize].total_cmp(&l[*a as usize]));
    let d = draws(SamplerConfig { top_k: 3, temperature: 100.0, ..cfg }, &l, 300);
    assert!(d.iter().all(|t| order[..3].contains(t)));
    assert!(order[..3].iter().all(|t| d.contains(t)));
    // top-p: with one dominant token (p ≈ 0.97) top-p 0.9 is greedy; top-p 1 is not.
    let mut peaked = vec![0f32; 100];
    peaked[42] = 8.0;
    assert!(draws(SamplerConfig { top_p: 0.9, ..cfg }, &peaked, 200).iter().all(|&t| t == 42));
    assert!(draws(SamplerConfig { top_p: 1.0, ..cfg }, &peaked, 2000).iter().any(|&t| t != 42));
    // Two equal tokens (p ≈ 0.47 each) with top-p 0.4: the first alone reaches it — the lower id.
    assert!(draws(SamplerConfig { top_p: 0.4, ..cfg }, &[1.0, 3.0, 3.0], 50).iter().all(|&t| t == 1));
    // Frequencies follow the softmax: p(0) = e^1/(e^1+1) ≈ 0.731.
    let d = draws(cfg, &[1.0, 0.0], 20000);
    let p0 = d.iter().filter(|&&t| t == 0).count() as f64 / 20000.0;
    assert!((p0 - 0.731).abs() < 0.02, "{p0}");
}

struct Loaded {
    model: Model,
    tokenizer: Tokenizer,
}

fn loaded() -> Option<Loaded> {
    let bytes = std::fs::read(model_path()?).unwrap();
    let f = quantlab::gguf::GgufFile::parse(&bytes, bytes.len() as u64).unwrap();
    Some(Loaded { model: Model::from_gguf(&f, &bytes).unwrap(), tokenizer: Tokenizer::from_gguf(&f).unwrap() })
}

fn fixture() -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/forward/reference.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect()
}

fn quantlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quantlab")).args(args).output().expect("run quantlab")
}

#[test]
fn generate_loop_reproduces_the_numpy_greedy_tokens() {
    let Some(l) = loaded() else { return };
    for seq in fixture()["sequences"].as_array().unwrap() {
        let (tokens, want) = (ids(&seq["tokens"]), ids(&seq["greedy"]));
        let mut state = State::new(&l.model.config, tokens.len() + want.len());
        let mut streamed = vec![];
        let (got, stats) = generate(
            &l.model,
            &mut state,
            &tokens,
            want.len(),
            &mut Sampler::new(SamplerConfig::default()),
            |_| false,
            || 0.0,
            |t| {
                streamed.push(t);
                true
            },
        )
        .unwrap();
        assert_eq!(got, want, "{}", seq["name"]);
        assert_eq!(streamed, got);
        assert_eq!(
            (stats.generated, stats.stop, stats.decode_forwards),
            (want.len(), StopReason::MaxTokens, want.len() - 1)
        );
    }
    // Capacity is checked up front.
    let mut small = State::new(&l.model.config, 4);
    let err = generate(
        &l.model,
        &mut small,
        &[1, 2, 3],
        3,
        &mut Sampler::new(SamplerConfig::default()),
        |_| false,
        || 0.0,
        |_| true,
    );
    assert!(err.is_err());
}

#[test]
fn cli_generate_greedy_text_and_fixture_cross_check() {
    let Some(path) = model_path() else { return };
    let Some(l) = loaded() else { return };
    let model = path.to_str().unwrap();
    // A greedy continuation first observed with this build: " Paris." then more text.
    let o = quantlab(&["generate", model, "-p", "The capital of France is", "-n", "8"]);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{err}");
    assert!(out.starts_with(" Paris"), "{out:?}");
    assert!(err.contains("format: as stored (Q8_0 + Q4_1)") && err.contains("sampling: greedy"), "{err}");
    assert!(err.contains("prefill: 5 tokens") && err.contains("tokens/s"), "{err}");
    // The same with the thread count forced to 1: identical text.
    let o1 = quantlab(&["generate", model, "-p", "The capital of France is", "-n", "8", "--threads", "1"]);
    assert_eq!(o1.stdout, o.stdout);

    // Cross-check with the numpy reference: the fixture's long40 ids, as text, tokenize back to
    // the same ids, and the CLI's greedy continuation is the fixture's greedy tokens.
    let seq = fixture()["sequences"].as_array().unwrap().iter().find(|s| s["name"] == "long40").unwrap().clone();
    let (tokens, want) = (ids(&seq["tokens"]), ids(&seq["greedy"]));
    let bos = l.tokenizer.add_bos_default();
    let body = if bos { &tokens[1..] } else { &tokens[..] };
    let text = l.tokenizer.decode(body);
    assert_eq!(l.tokenizer.encode(&text, bos, true), tokens, "fixture text {text:?} round-trips");
    let o = quantlab(&["generate", model, "-p", &text, "-n", &want.len().to_string()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim_end_matches('\n'), l.tokenizer.decode(&want), "{text:?}");

    // Seeded sampling is reproducible; --format re-quantizes and says so.
    let args = [
        "generate",
        model,
        "-p",
        "Once upon a time",
        "-n",
        "12",
        "--temperature",
        "0.9",
        "--top-k",
        "40",
        "--top-p",
        "0.95",
        "--seed",
        "5",
        "-f",
        "q8_0",
    ];
    let (a, b) = (quantlab(&args), quantlab(&args));
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert_eq!(a.stdout, b.stdout);
    let err = String::from_utf8_lossy(&a.stderr);
    assert!(err.contains("format: q8_0 (re-quantized in memory") && err.contains("bits per weight"), "{err}");

    // --chat opens the assistant turn and stops at <|im_end|>.
    let o = quantlab(&["generate", model, "-p", "What is the capital of France?", "--chat", "-n", "60"]);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success() && out.contains("Paris"), "{out}\n{err}");
    assert!(err.contains("(chat template)") && err.contains("end-of-generation token"), "{err}");
}

#[test]
fn cli_generate_errors() {
    let fail = |args: &[&str], want: &str| {
        let o = quantlab(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    };
    fail(&["generate", "/nonexistent/model.gguf", "-p", "hi"], "cannot open '/nonexistent/model.gguf': no such file");
    let Some(path) = model_path() else { return };
    let model = path.to_str().unwrap();
    fail(&["generate", model, "-p", "hi", "-f", "q9_9"], "unknown format 'q9_9'");
    fail(&["generate", model, "-p", "hi", "--temperature=-1"], "--temperature must be");
    fail(&["generate", model, "-p", "hi", "--top-p", "1.5"], "--top-p must be in [0, 1]");
    let long = "hello ".repeat(9000);
    fail(&["generate", model, "-p", &long], "longer than the model's context of 8192 tokens");
}
