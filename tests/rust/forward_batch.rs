//! The batched forward (`quantlab::model::forward_batch`) and its batched products
//! (`Matrix::matmul_threads`) against the single-position reference, for every weight format
//! family.
//!
//! # Tolerance
//!
//! Two f32 computations of the same sum `Σ_i w_i·x_i` of `k` terms that add in different orders
//! may differ by up to `2·γ_k·Σ|w_i·x_i|` (`γ_k = k·u/(1 − k·u)`, `u = 2⁻²⁴`), and those differences
//! then travel through the layers. The batched kernels reorder NOTHING: every output is the same
//! sequence of f32 multiplications and additions as the reference's, lane by lane (separate
//! multiply and add, no fused multiply-add; see `model/gemm.rs`), and the rest of the forward
//! runs per position with the reference's own functions. With `k = 0` reordered terms the bound
//! is 0, so the tests demand equal bits, and with equal logits the greedy tokens and the
//! perplexity are equal too (checked anyway, the perplexity to 1e-4 relative, through the
//! public evaluation and generation paths).

use quantlab::formats::{quantize, QuantScheme, TensorShape};
use quantlab::model::eval::{evaluate, plan, EvalHooks, ForwardMode, LogitSource, ModelSource, Protocol};
use quantlab::model::generate::generate;
use quantlab::model::{
    forward, forward_batch, quantize_model, BatchLogits, BatchState, Block, Config, KvType, Matrix, Model, Sampler,
    SamplerConfig, State, TensorPolicy, Weights,
};

/// One format of each family the forward multiplies by: f32, f16, the ggml legacy types, two
/// k-quants, INT (symmetric/asymmetric, group/channel/tensor, 4 and other widths), NF4/FP4 with
/// and without double quantization, FP8.
const SCHEMES: &[&str] = &[
    "f32",
    "f16",
    "q4_0",
    "q4_1",
    "q5_0",
    "q5_1",
    "q8_0",
    "q4_k",
    "q6_k",
    "int4-sym-g32",
    "int4-asym-channel",
    "int4-asym-g128",
    "int8-sym-channel",
    "int3-asym-g64",
    "nf4-b64",
    "nf4-b64-dq",
    "fp4-b128",
    "fp8-e4m3",
    "fp8-e5m2-channel",
];

/// Deterministic values (`model_quant`'s, in [-0.5, 0.5) with outliers) times `scale`.
fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    crate::model_quant::values(n, seed).into_iter().map(|v| v * 2.0 * scale).collect()
}

/// A `rows × cols` matrix of `scheme` (`f32`: plain values).
fn matrix(scheme: &str, rows: usize, cols: usize, seed: u64) -> Matrix {
    let v = values(rows * cols, seed, 1.0 / (cols as f32).sqrt());
    let shape = TensorShape::new(rows, cols);
    if scheme == "f32" {
        return Matrix::F32 { shape, data: v };
    }
    let q = quantize(&QuantScheme::parse(scheme).unwrap(), &v, shape).unwrap_or_else(|e| panic!("{scheme}: {e}"));
    Matrix::from_quantized(q).unwrap()
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[test]
fn batched_products_equal_matvec_for_every_format() {
    // 256 columns: the k-quants' block; 37 rows: uneven thread chunks.
    let (rows, cols) = (37, 256);
    for (si, &scheme) in SCHEMES.iter().enumerate() {
        let m = matrix(scheme, rows, cols, si as u64 + 1);
        for n in [1, 5, 70] {
            let x = values(n * cols, 100 + n as u64, 1.0);
            let mut want = vec![0f32; n * rows];
            m.matmul_reference(&x, &mut want);
            for threads in [1, 3] {
                let mut got = vec![f32::NAN; n * rows];
                m.matmul_threads(&x, &mut got, threads);
                assert!(same_bits(&got, &want), "{scheme}: {n} rows, {threads} threads");
            }
        }
    }
}

/// A small llama-shaped model (grouped-query attention, untied classifier) whose every matrix
/// is stored as `scheme`. Widths are multiples of 256 so every format applies to every matrix.
fn synthetic(scheme: &str) -> Model {
    let config = Config {
        dim: 256,
        hidden_dim: 512,
        n_layers: 2,
        n_heads: 4,
        n_kv_heads: 2,
        head_dim: 64,
        rope_dim: 64,
        vocab_size: 300,
        seq_len: 64,
        rope_theta: 10000.0,
        rms_eps: 1e-5,
        tied_embeddings: false,
    };
    let c = &config;
    let mut seed = 0;
    let mut m = |rows, cols| {
        seed += 1;
        matrix(scheme, rows, cols, seed)
    };
    let norm = |n, s| values(n, s, 0.5).iter().map(|v| 1.0 + v).collect::<Vec<f32>>();
    let layers = (0..c.n_layers)
        .map(|l| quantlab::model::weights::Layer {
            attn_norm: norm(c.dim, 1000 + l as u64),
            wq: m(c.q_dim(), c.dim),
            wk: m(c.kv_dim(), c.dim),
            wv: m(c.kv_dim(), c.dim),
            wo: m(c.dim, c.q_dim()),
            ffn_norm: norm(c.dim, 2000 + l as u64),
            w_gate: m(c.hidden_dim, c.dim),
            w_down: m(c.dim, c.hidden_dim),
            w_up: m(c.hidden_dim, c.dim),
        })
        .collect();
    let weights = Weights {
        token_embd: m(c.vocab_size, c.dim),
        layers,
        output_norm: norm(c.dim, 3000),
        output: Some(m(c.vocab_size, c.dim)),
    };
    Model { config, weights }
}

/// Every position's logits, one position at a time through `forward`, with a `kv` cache.
fn reference_logits(model: &Model, tokens: &[u32], kv: KvType) -> Vec<f32> {
    let mut s = State::with_kv(&model.config, tokens.len(), kv);
    s.threads = 1;
    tokens
        .iter()
        .enumerate()
        .flat_map(|(p, &t)| forward(&model.config, &model.weights, &mut s, t, p).to_vec())
        .collect()
}

/// The same through `forward_batch`: positions `0..prefix` by `forward` (the batch continues a
/// cache the reference filled), the rest in blocks of `block`.
fn batched_logits(
    model: &Model,
    tokens: &[u32],
    kv: KvType,
    (prefix, block, threads): (usize, usize, usize),
) -> Vec<f32> {
    let (c, w) = (&model.config, &model.weights);
    let mut s = State::with_kv(c, tokens.len(), kv);
    s.threads = threads;
    let mut out: Vec<f32> = Vec::new();
    for (p, &t) in tokens[..prefix].iter().enumerate() {
        out.extend_from_slice(forward(c, w, &mut s, t, p));
    }
    let mut b = BatchState::new(c, block);
    for (i, chunk) in tokens[prefix..].chunks(block).enumerate() {
        let pos0 = prefix + i * block;
        out.extend_from_slice(forward_batch(
            c,
            w,
            &mut s,
            &mut b,
            Block { tokens: chunk, pos0, logits: BatchLogits::Every },
        ));
    }
    out
}

#[test]
fn batched_forward_equals_forward_for_every_format_family() {
    let tokens: Vec<u32> = values(40, 77, 1.0).iter().map(|v| ((v.abs() * 1e4) as u32) % 300).collect();
    for &scheme in SCHEMES {
        let model = synthetic(scheme);
        let want = reference_logits(&model, &tokens, KvType::F32);
        // Uneven blocks, a block of one, a prefix from the reference, threads.
        for (prefix, block, threads) in [(0, 16, 1), (0, 40, 3), (7, 9, 2), (39, 1, 1)] {
            let got = batched_logits(&model, &tokens, KvType::F32, (prefix, block, threads));
            assert!(same_bits(&got, &want), "{scheme}: prefix {prefix}, blocks of {block}, {threads} threads");
        }
    }
}

/// Both forwards read a quantized cache through the same decoder, so they stay bit-identical;
/// and the cache's rounding really changes the logits.
#[test]
fn batched_forward_equals_forward_with_a_quantized_kv_cache() {
    let tokens: Vec<u32> = values(40, 78, 1.0).iter().map(|v| ((v.abs() * 1e4) as u32) % 300).collect();
    let model = synthetic("q4_1");
    let f32_cache = reference_logits(&model, &tokens, KvType::F32);
    for kv in [KvType::F16, KvType::Int8, KvType::Int4, KvType::Fp8] {
        let want = reference_logits(&model, &tokens, kv);
        assert!(!same_bits(&want, &f32_cache), "{kv}: the cache does not round");
        for run in [(0, 16, 1), (7, 9, 2), (39, 1, 1)] {
            let got = batched_logits(&model, &tokens, kv, run);
            assert!(same_bits(&got, &want), "{kv}: prefix, block, threads {run:?}");
        }
    }
}

/// Perplexity (default protocol) and greedy tokens of `model` on `tokens`, batched and per
/// position, must agree.
fn check_eval_and_greedy(label: &str, model: &Model, tokens: &[u32], ctx: usize) {
    let p = plan(tokens, ctx, Protocol::Default, false, None, Some(2)).unwrap();
    let run = |mode: ForwardMode| {
        let mut src = ModelSource::new(model, ctx, 2).with_forward(mode);
        let mut sources: Vec<&mut dyn LogitSource> = vec![&mut src];
        evaluate(&p, &mut sources, EvalHooks::default()).unwrap().remove(0)
    };
    let reference = run(ForwardMode::PerPosition);
    for block in [7, 64] {
        let batched = run(ForwardMode::Batched { block });
        let rel = (batched.ppl - reference.ppl).abs() / reference.ppl;
        assert!(rel <= 1e-4, "{label}, blocks of {block}: ppl {} vs {}", batched.ppl, reference.ppl);
        assert_eq!(batched.tokens_scored, reference.tokens_scored);
    }

    // Greedy generation: the batched prefill of `generate` against a per-position prefill.
    let (prompt, n_new) = (&tokens[..ctx - 8], 8);
    let c = &model.config;
    let mut s = State::new(c, ctx);
    let mut logits = Vec::new();
    for (pos, &t) in prompt.iter().enumerate() {
        logits = forward(c, &model.weights, &mut s, t, pos).to_vec();
    }
    let mut want = Vec::new();
    for i in 0..n_new {
        let next = quantlab::model::sampler::argmax(&logits);
        want.push(next);
        logits = forward(c, &model.weights, &mut s, next, prompt.len() + i).to_vec();
    }
    let mut state = State::new(c, ctx);
    let mut sampler = Sampler::new(SamplerConfig { temperature: 0.0, ..SamplerConfig::default() });
    let (got, _) = generate(model, &mut state, prompt, n_new, &mut sampler, |_| false, || 0.0, |_| true).unwrap();
    assert_eq!(got, want, "{label}: greedy tokens");
}

#[test]
fn batched_eval_and_prefill_match_the_reference_on_synthetic_models() {
    let tokens: Vec<u32> = values(64, 5, 1.0).iter().map(|v| ((v.abs() * 1e4) as u32) % 300).collect();
    for scheme in ["f32", "q4_1", "q4_k", "int4-asym-g128", "nf4-b64-dq", "fp8-e4m3"] {
        check_eval_and_greedy(scheme, &synthetic(scheme), &tokens, 32);
    }
}

#[test]
fn batched_eval_and_prefill_match_the_reference_on_the_default_model() {
    let Some(base) = crate::forward::model() else { return };
    // Token ids from the vocabulary's ordinary range; the numbers only need to be the same.
    let tokens: Vec<u32> = values(96, 9, 1.0).iter().map(|v| 200 + ((v.abs() * 1e4) as u32) % 20000).collect();
    check_eval_and_greedy("Q4_1 base", base, &tokens, 48);
    let (q8, _) = quantize_model(base, &QuantScheme::parse("q8_0").unwrap(), &TensorPolicy::default()).unwrap();
    check_eval_and_greedy("q8_0", &q8, &tokens, 48);
}
