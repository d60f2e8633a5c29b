//! The CPU reference forward (`quantlab::model`) against an independent numpy implementation
//! (`scripts/dev/reference_forward.py`, float64, full-sequence attention with a causal mask;
//! fixture in tests/fixtures/forward/), plus load errors on small files built here.
//!
//! Tolerance: the Rust forward runs in f32 (products, sums, softmax) while the reference is
//! float64 on the same dequantized weights, so logits differ by accumulated f32 rounding:
//! 30 layers of 576/1536-term dot products with relative errors ~1e-7 each, amplified a little
//! through the norms. Measured on the fixture (54 positions, every 97th logit + the top-10 of
//! each; logits of magnitude up to ~31): max |Δlogit| = 7.0e-5, max |Δ log-sum-exp| = 2.6e-5.
//! The bound asserted is `|Δ| ≤ ATOL + RTOL·|logit|` with ATOL = 2e-4 and RTOL = 1e-5, about 3×
//! the measurement (room for a different libm `exp`/`sin` on another platform), and 2–5 orders
//! of magnitude below what a real bug (a wrong RoPE pairing, a missing residual, an off-by-one
//! in the KV cache, a wrong GQA head mapping) does to the logits (0.1–10).

use crate::gguf::{builder, model_path};
use builder::{tt, GgufBuilder};
use quantlab::formats::quantize_row;
use quantlab::gguf::{GgmlType, GgufFile};
use quantlab::model::{forward, try_forward, Config, Matrix, Model, ModelError, State};
use std::path::Path;
use std::sync::OnceLock;

const ATOL: f64 = 2e-4;
const RTOL: f64 = 1e-5;

fn tolerance(reference: f64) -> f64 {
    ATOL + RTOL * reference.abs()
}

/// The default model, loaded once for all tests of this module.
pub(crate) fn model() -> Option<&'static Model> {
    static MODEL: OnceLock<Option<Model>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let path = model_path()?;
            let bytes = std::fs::read(path).expect("read the model");
            Some(Model::from_gguf_bytes(&bytes).expect("the default model loads"))
        })
        .as_ref()
}

fn fixture_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/forward"))
}

struct Fixture {
    json: serde_json::Value,
    /// For each sequence then position: logits at ids 0, stride, 2·stride, ...
    strided: Vec<f32>,
    stride: usize,
    n_strided: usize,
}

fn fixture() -> Fixture {
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture_dir().join("reference.json")).unwrap()).unwrap();
    let raw = std::fs::read(fixture_dir().join(json["strided_file"].as_str().unwrap())).unwrap();
    let strided = raw.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    let stride = json["stride"].as_u64().unwrap() as usize;
    let n_strided = json["n_strided"].as_u64().unwrap() as usize;
    Fixture { json, strided, stride, n_strided }
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect()
}

fn argmax(v: &[f32]) -> u32 {
    // First maximum, like numpy's stable argsort of -v.
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as u32
}

fn log_sum_exp(v: &[f32]) -> f64 {
    let m = v.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    m + v.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln()
}

/// Worst `|Δ| / tolerance` seen, with where.
#[derive(Default)]
struct Worst {
    abs: f64,
    ratio: f64,
    at: String,
}

impl Worst {
    fn see(&mut self, got: f64, want: f64, at: impl FnOnce() -> String) {
        let d = (got - want).abs();
        self.abs = self.abs.max(d);
        let r = d / tolerance(want);
        if r > self.ratio || r.is_nan() {
            self.ratio = if r.is_nan() { f64::INFINITY } else { r };
            self.at = format!("{} (got {got}, want {want})", at());
        }
    }
}

#[test]
fn forward_matches_numpy_reference() {
    let Some(m) = model() else { return };
    let fx = fixture();
    assert_eq!(fx.n_strided, m.config.vocab_size.div_ceil(fx.stride));
    let (mut logits_worst, mut lse_worst) = (Worst::default(), Worst::default());
    let mut row = 0;
    let mut argmax_checked = 0;
    for seq in fx.json["sequences"].as_array().unwrap() {
        let name = seq["name"].as_str().unwrap();
        let tokens = ids(&seq["tokens"]);
        let mut state = State::new(&m.config, 64);
        for (pos, &token) in tokens.iter().enumerate() {
            let logits = forward(&m.config, &m.weights, &mut state, token, pos);
            let p = &seq["positions"][pos];
            let want = &fx.strided[row * fx.n_strided..(row + 1) * fx.n_strided];
            row += 1;
            for (j, &w) in want.iter().enumerate() {
                let id = j * fx.stride;
                logits_worst.see(logits[id] as f64, w as f64, || format!("{name} pos {pos} id {id}"));
            }
            let top10: Vec<(usize, f64)> = p["top10"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| (e[0].as_u64().unwrap() as usize, e[1].as_f64().unwrap()))
                .collect();
            for &(id, w) in &top10 {
                logits_worst.see(logits[id] as f64, w, || format!("{name} pos {pos} top-10 id {id}"));
            }
            let lse = p["lse"].as_f64().unwrap();
            lse_worst.see(log_sum_exp(logits), lse, || format!("{name} pos {pos} log-sum-exp"));
            // Same argmax wherever the reference's top-2 margin exceeds twice the tolerance.
            if top10[0].1 - top10[1].1 > 2.0 * tolerance(top10[0].1) {
                assert_eq!(argmax(logits), top10[0].0 as u32, "{name} pos {pos}: argmax");
                argmax_checked += 1;
            }
        }
    }
    eprintln!(
        "forward vs numpy: max |Δlogit| = {:.3e} ({:.2} of the tolerance at {}), max |Δlse| = {:.3e}; \
         {argmax_checked} argmaxes checked",
        logits_worst.abs, logits_worst.ratio, logits_worst.at, lse_worst.abs
    );
    assert!(logits_worst.ratio <= 1.0, "logits beyond tolerance at {}", logits_worst.at);
    assert!(lse_worst.ratio <= 1.0, "log-sum-exp beyond tolerance at {}", lse_worst.at);
    assert_eq!(row * fx.n_strided, fx.strided.len(), "fixture rows");
    assert!(argmax_checked >= 50, "only {argmax_checked} argmaxes had a clear margin");
}

#[test]
fn greedy_continuation_matches_numpy_reference() {
    let Some(m) = model() else { return };
    let fx = fixture();
    for seq in fx.json["sequences"].as_array().unwrap() {
        let tokens = ids(&seq["tokens"]);
        let want = ids(&seq["greedy"]);
        let mut state = State::new(&m.config, 64);
        let mut next = 0;
        for (pos, &t) in tokens.iter().enumerate() {
            next = argmax(forward(&m.config, &m.weights, &mut state, t, pos));
        }
        let mut got = vec![];
        for pos in tokens.len()..tokens.len() + want.len() {
            got.push(next);
            next = argmax(forward(&m.config, &m.weights, &mut state, next, pos));
        }
        assert_eq!(got, want, "greedy continuation of {}", seq["name"]);
    }
}

#[test]
fn thread_count_does_not_change_results() {
    let Some(m) = model() else { return };
    let run = |threads: usize| {
        let mut state = State::new(&m.config, 8);
        state.threads = threads;
        let mut out = vec![];
        for (pos, t) in [1u32, 504, 3458, 282].into_iter().enumerate() {
            out.extend_from_slice(forward(&m.config, &m.weights, &mut state, t, pos));
        }
        out
    };
    let one = run(1);
    for threads in [2, 3, 7] {
        let many = run(threads);
        assert!(one.iter().zip(&many).all(|(a, b)| a.to_bits() == b.to_bits()), "{threads} threads differ");
    }
}

#[test]
fn weights_stay_in_their_stored_format() {
    let Some(m) = model() else { return };
    let c = &m.config;
    assert_eq!(
        (c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim, c.rope_dim),
        (576, 1536, 30, 9, 3, 64, 64)
    );
    assert_eq!((c.vocab_size, c.seq_len, c.rope_theta, c.rms_eps, c.tied_embeddings), (49152, 8192, 1e5, 1e-5, true));
    // Tensor bytes of the file (gguf-py: 96 576 768 in a 98 362 432-byte file): the Q4_1
    // model takes 5 bits per weight in memory, not the 32 of an f32 copy (538 MB).
    let resident = m.weights.resident_bytes();
    assert_eq!(resident, 96_576_768);
    assert!(resident * 5 < 134_515_008 * 4, "resident {resident}: not under a fifth of an f32 copy");
    assert!((resident as u64) < std::fs::metadata(model_path().unwrap()).unwrap().len());
    assert!(
        matches!(&m.weights.layers[0].wq, Matrix::Quantized(quantlab::formats::QuantizedTensor::Ggml(t)) if t.ty == GgmlType::Q4_1)
    );
    assert!(
        matches!(&m.weights.token_embd, Matrix::Quantized(quantlab::formats::QuantizedTensor::Ggml(t)) if t.ty == GgmlType::Q8_0)
    );
    assert!(std::ptr::eq(m.weights.classifier(), &m.weights.token_embd));
}

/// Rough speed, 1 thread vs all: `cargo test --release ... forward_speed -- --ignored --nocapture`.
#[test]
#[ignore]
fn forward_speed() {
    let Some(m) = model() else { return };
    for threads in [1, quantlab::model::weights::default_threads()] {
        let mut state = State::new(&m.config, 64);
        state.threads = threads;
        let n = 32;
        let start = std::time::Instant::now();
        for pos in 0..n {
            forward(&m.config, &m.weights, &mut state, (pos * 37 % 1000) as u32, pos);
        }
        let s = start.elapsed().as_secs_f64();
        eprintln!("{threads} thread(s): {:.1} tokens/s", n as f64 / s);
    }
}

// ---- kernels -------------------------------------------------------------------------------

/// Pseudo-random values in [-1, 1) (a fixed LCG, so the test is reproducible).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

#[test]
fn matvec_kernels_match_dequantized_rows() {
    let (rows, cols) = (37, 256);
    let x = values(cols, 1);
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_1, GgmlType::Q8_0] {
        let w = values(rows * cols, 2);
        let t =
            quantlab::formats::quantized::GgmlTensor::quantize(ty, &w, quantlab::formats::TensorShape::new(rows, cols))
                .unwrap();
        let deq = t.dequantize().unwrap();
        let m = Matrix::from_quantized(quantlab::formats::QuantizedTensor::Ggml(t)).unwrap();
        let mut out = vec![0f32; rows];
        m.matvec_threads(&x, &mut out, 1);
        let mut row = vec![0f32; cols];
        for r in 0..rows {
            let want: f64 = deq[r * cols..(r + 1) * cols].iter().zip(&x).map(|(&a, &b)| a as f64 * b as f64).sum();
            assert!((out[r] as f64 - want).abs() < 1e-4, "{ty} row {r}: {} vs {want}", out[r]);
            m.row(r, &mut row);
            assert_eq!(row, deq[r * cols..(r + 1) * cols], "{ty} row {r}");
        }
    }
}

// ---- small files built in the test ---------------------------------------------------------

const DIM: u64 = 64;
const FF: u64 = 96;
const VOCAB: u64 = 5;

/// Metadata of a tiny llama: 1 block, dim 64, 4 heads of 16, 2 kv heads, FFN 96, 5 tokens.
fn tiny_meta(arch: &str) -> GgufBuilder {
    let k = |s: &str| format!("{arch}.{s}");
    GgufBuilder::new()
        .kv_str("general.architecture", arch)
        .kv_u32(&k("block_count"), 1)
        .kv_u32(&k("context_length"), 16)
        .kv_u32(&k("embedding_length"), DIM as u32)
        .kv_u32(&k("feed_forward_length"), FF as u32)
        .kv_u32(&k("attention.head_count"), 4)
        .kv_u32(&k("attention.head_count_kv"), 2)
        .kv_f32(&k("rope.freq_base"), 10000.0)
        .kv_f32(&k("attention.layer_norm_rms_epsilon"), 1e-5)
}

/// (name, ggml dims, type) of every tensor of the tiny llama, in several storage types.
fn tiny_tensors() -> Vec<(String, Vec<u64>, u32)> {
    let mut t = vec![
        ("token_embd.weight".to_string(), vec![DIM, VOCAB], tt::Q8_0),
        ("output_norm.weight".into(), vec![DIM], tt::F32),
        ("output.weight".into(), vec![DIM, VOCAB], tt::F16),
    ];
    for (n, dims, ty) in [
        ("attn_norm", vec![DIM], tt::F32),
        ("attn_q", vec![DIM, DIM], tt::Q4_1),
        ("attn_k", vec![DIM, 32], tt::Q4_0),
        ("attn_v", vec![DIM, 32], tt::Q8_0),
        ("attn_output", vec![DIM, DIM], tt::F32),
        ("ffn_norm", vec![DIM], tt::F32),
        ("ffn_gate", vec![DIM, FF], tt::Q4_1),
        ("ffn_up", vec![DIM, FF], tt::F16),
        ("ffn_down", vec![FF, DIM], tt::Q8_0),
    ] {
        t.push((format!("blk.0.{n}.weight"), dims, ty));
    }
    t
}

fn with_tensors(mut b: GgufBuilder, tensors: &[(String, Vec<u64>, u32)]) -> GgufBuilder {
    for (name, dims, ty) in tensors {
        b = b.tensor(name, dims, *ty);
    }
    b
}

/// The builder's placeholder bytes replaced by quantized pseudo-random values in [-1, 1)
/// (norm weights near 1), so the tiny model computes finite numbers.
fn with_sane_data(mut file: Vec<u8>) -> Vec<u8> {
    let f = GgufFile::parse(&file, file.len() as u64).unwrap();
    for (i, t) in f.tensors.iter().enumerate() {
        let mut v = values(t.n_elements() as usize, i as u64 + 10);
        if t.name.contains("norm") {
            v.iter_mut().for_each(|x| *x = 1.0 + 0.1 * *x);
        }
        let start = t.absolute_offset(&f) as usize;
        quantize_row(t.ty, &v, &mut file[start..start + t.n_bytes() as usize]).unwrap();
    }
    file
}

fn load(file: &[u8]) -> Result<Model, ModelError> {
    Model::from_gguf_bytes(file)
}

#[test]
fn tiny_model_runs() {
    let file = with_sane_data(with_tensors(tiny_meta("llama"), &tiny_tensors()).build());
    let m = load(&file).unwrap();
    assert_eq!((m.config.head_dim, m.config.kv_dim(), m.config.vocab_size), (16, 32, 5));
    assert!(!m.config.tied_embeddings);
    let mut state = State::new(&m.config, 100);
    assert_eq!(state.capacity, 16, "capped by context_length");
    for pos in 0..16 {
        let logits = forward(&m.config, &m.weights, &mut state, (pos % 5) as u32, pos);
        assert!(logits.len() == 5 && logits.iter().all(|v| v.is_finite()), "{logits:?}");
    }
    let err = try_forward(&m.config, &m.weights, &mut state, 0, 16).unwrap_err();
    assert_eq!(err.to_string(), "position 16 is beyond the state's capacity of 16 positions");
    let err = try_forward(&m.config, &m.weights, &mut state, 5, 0).unwrap_err();
    assert_eq!(err.to_string(), "token id 5 is out of range (vocabulary size 5)");
    // Tied embeddings when output.weight is absent.
    let untied: Vec<_> = tiny_tensors().into_iter().filter(|t| t.0 != "output.weight").collect();
    let m = load(&with_sane_data(with_tensors(tiny_meta("llama"), &untied).build())).unwrap();
    assert!(m.config.tied_embeddings && m.weights.output.is_none());
}

#[test]
fn wrong_architecture_is_refused() {
    let file = with_tensors(tiny_meta("gpt2"), &tiny_tensors()).build();
    let err = load(&file).unwrap_err();
    assert_eq!(err.to_string(), "unsupported model architecture 'gpt2': the CPU forward supports llama");
    let no_arch = with_tensors(GgufBuilder::new().kv_u32("llama.block_count", 1), &tiny_tensors()).build();
    let err = load(&no_arch).unwrap_err();
    assert!(err.to_string().contains("(general.architecture is missing)"), "{err}");
}

#[test]
fn missing_tensor_is_named() {
    let tensors: Vec<_> = tiny_tensors().into_iter().filter(|t| t.0 != "blk.0.ffn_up.weight").collect();
    let err = load(&with_tensors(tiny_meta("llama"), &tensors).build()).unwrap_err();
    assert_eq!(err, ModelError::MissingTensor { name: "blk.0.ffn_up.weight".into() });
    assert_eq!(err.to_string(), "tensor 'blk.0.ffn_up.weight' is missing");
}

#[test]
fn misshaped_tensor_is_named() {
    let mut tensors = tiny_tensors();
    tensors[5].1 = vec![DIM, 64]; // attn_k with 4 kv heads' rows instead of 2
    let err = load(&with_tensors(tiny_meta("llama"), &tensors).build()).unwrap_err();
    assert_eq!(err.to_string(), "tensor 'blk.0.attn_k.weight' has shape [64, 64] (ggml order), expected [64, 32]");
}

#[test]
fn other_bad_files_are_errors_not_panics() {
    // A bias the forward would ignore.
    let mut tensors = tiny_tensors();
    tensors.push(("blk.0.attn_q.bias".into(), vec![DIM], tt::F32));
    let err = load(&with_tensors(tiny_meta("llama"), &tensors).build()).unwrap_err();
    assert!(matches!(&err, ModelError::UnexpectedTensor { name, .. } if name == "blk.0.attn_q.bias"), "{err}");
    // Missing or inconsistent hyper-parameters.
    let file = with_tensors(
        GgufBuilder::new().kv_str("general.architecture", "llama").kv_u32("llama.embedding_length", 64),
        &tiny_tensors(),
    )
    .build();
    assert_eq!(
        load(&file).unwrap_err().to_string(),
        "metadata key 'llama.feed_forward_length' is missing (needed by the forward pass)"
    );
    let file = with_tensors(tiny_meta("llama").kv_u32("llama.vocab_size", 7), &tiny_tensors()).build();
    assert!(matches!(load(&file).unwrap_err(), ModelError::BadShape { .. }));
    let file = with_tensors(tiny_meta("llama").kv_u32("llama.rope.dimension_count", 17), &tiny_tensors()).build();
    assert!(load(&file).unwrap_err().to_string().contains("llama.rope.dimension_count"));
    // A file cut short: the GGUF error comes through.
    let file = with_tensors(tiny_meta("llama"), &tiny_tensors()).build();
    assert!(matches!(load(&file[..file.len() - 10]).unwrap_err(), ModelError::Gguf(_)));
    // Config alone on a non-llama header.
    let f = GgufFile::parse(&with_tensors(tiny_meta("qwen2"), &tiny_tensors()).build(), 0).unwrap();
    assert!(matches!(Config::from_gguf(&f), Err(ModelError::UnsupportedArchitecture { .. })));
}
