//! Decode (and prefill) tokens/s of greedy generation on the CPU with the exact f32 products
//! against the integer path (`State::matmul = MatmulPath::Int8`, `quantlab generate --matmul
//! int8`), per weight format, rounds of the two paths interleaved in one run so machine load hits
//! both alike. Prints a markdown table: median tok/s of each path, their ratio, how many products
//! ran integer dots, and whether the greedy tokens were the same.
//!
//!     cargo run --release --no-default-features --example bench_matmul_path -- \
//!         [--model models/SmolLM2-135M-Instruct.Q4_1.gguf] [--formats base,q8_0,q4_0] \
//!         [--n 32] [--rounds 5] [--threads 1]
//!
//! "base" is the file as stored (the default model's Q4_1 layers, Q8_0 tied embedding); other
//! formats are re-quantized in memory from it (`quantize_model`, the default tensor policy).
//! `llm-int8` is the base with LLM.int8()'s int8 weights and `--activations llm-int8`.

use std::time::Instant;

use quantlab::formats::QuantScheme;
use quantlab::model::generate::generate;
use quantlab::model::llm_int8::llm_int8_model;
use quantlab::model::{
    quantize_model, ActHead, ActQuant, ActQuantizer, MatmulPath, Model, Sampler, SamplerConfig, State, TensorPolicy,
};

const PROMPT: &str = "Call me Ishmael. Some years ago—never mind how long precisely—having little or no money in my \
purse, and nothing particular to interest me on shore, I thought I would sail about a little and see the watery part \
of the world.";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One greedy generation: (prefill tok/s, decode tok/s, tokens, integer products).
fn run(
    model: &Model,
    act: Option<&ActQuantizer>,
    prompt: &[u32],
    n: usize,
    threads: usize,
    path: MatmulPath,
) -> (f64, f64, Vec<u32>, u64) {
    let mut state = State::new(&model.config, prompt.len() + n);
    state.threads = threads;
    state.act = act.cloned();
    state.matmul = path;
    let mut sampler = Sampler::new(SamplerConfig::default());
    let clock = Instant::now();
    let now = || clock.elapsed().as_secs_f64();
    let (tokens, stats) =
        generate(model, &mut state, prompt, n, &mut sampler, |_| false, now, |_| true).expect("generation runs");
    (stats.prefill_tokens_per_sec(), stats.decode_tokens_per_sec(), tokens, state.stats.integer)
}

fn main() {
    let (mut model_path, mut formats) =
        ("models/SmolLM2-135M-Instruct.Q4_1.gguf".to_string(), "base,q8_0,q4_0".to_string());
    let (mut n, mut rounds, mut threads) = (32usize, 5usize, 1usize);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--model" => model_path = value(),
            "--formats" => formats = value(),
            "--n" => n = value().parse().expect("--n N"),
            "--rounds" => rounds = value().parse().expect("--rounds N"),
            "--threads" => threads = value().parse().expect("--threads N"),
            other => panic!("unknown argument {other}"),
        }
    }
    let bytes = std::fs::read(&model_path).unwrap_or_else(|e| panic!("{model_path}: {e}"));
    let base = Model::from_gguf_bytes(&bytes).expect("a llama GGUF");
    let gguf = quantlab::gguf::GgufFile::parse(&bytes, bytes.len() as u64).expect("a GGUF file");
    let tok = quantlab::tokenizer::Tokenizer::from_gguf(&gguf).expect("its tokenizer");
    let prompt = tok.encode(PROMPT, tok.add_bos_default(), false);
    println!(
        "{} prompt tokens, {n} generated, {threads} thread(s), {rounds} rounds per path, interleaved\n",
        prompt.len()
    );
    println!("| format | prefill exact tok/s | prefill int8 tok/s | decode exact tok/s | decode int8 tok/s | decode int8/exact | integer products | same tokens |");
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    for f in formats.split(',') {
        let (model, act) = match f {
            "base" => (base.clone(), None),
            "llm-int8" => {
                let q = ActQuantizer::new(ActQuant::LLM_INT8, ActHead::Float, None, base.config.n_layers).unwrap();
                (llm_int8_model(&base).unwrap(), Some(q))
            }
            s => (quantize_model(&base, &QuantScheme::parse(s).unwrap(), &TensorPolicy::default()).unwrap().0, None),
        };
        let (mut pe, mut pi, mut de, mut di) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut same, mut integer) = (true, 0);
        // Untimed warm-up of both paths (first touch of the weights and the pool).
        run(&model, act.as_ref(), &prompt, 2, threads, MatmulPath::Int8);
        for _ in 0..rounds {
            let (p, d, exact_tokens, _) = run(&model, act.as_ref(), &prompt, n, threads, MatmulPath::Exact);
            pe.push(p);
            de.push(d);
            let (p, d, int_tokens, ints) = run(&model, act.as_ref(), &prompt, n, threads, MatmulPath::Int8);
            pi.push(p);
            di.push(d);
            same &= exact_tokens == int_tokens;
            integer = ints;
        }
        let (de, di) = (median(de), median(di));
        println!(
            "| {f} | {:.1} | {:.1} | {de:.1} | {di:.1} | {:.2}× | {integer} | {} |",
            median(pe),
            median(pi),
            di / de,
            if same { "yes" } else { "no" }
        );
    }
}
