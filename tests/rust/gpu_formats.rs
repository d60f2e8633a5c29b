//! The dedicated kernels no whole-model test in `gpu_forward` runs as a model's main format
//! (Q5_0 runs there inside q4_k, for the 576-wide rows K-quants can't split; Q5_1 here inside
//! q5_k, for the same reason): the default model
//! cut to its first layer and its first `VOCAB` tokens (embedding and tied output head alike),
//! re-quantized in memory, GPU vs CPU on the same quantized weights: logits after a 3-token
//! prompt (from those tokens) and 8 greedy tokens, with the whole-model tolerance (`gpu_forward::check_against_cpu`).
//! Every layer runs the same kernels on the same shapes, and the 49152-row head would cost
//! lavapipe most of the time (`npm test`'s budget). The decode-only IQ4_XS and MXFP4 run whole
//! small models of random blocks instead (`random_block_model`).

use quantlab::formats::{GgmlType, QuantScheme, QuantizedTensor, TensorShape};
use quantlab::gpu::bench::random_blocks;
use quantlab::model::weights::{Layer, Weights};
use quantlab::model::{quantize_model, Config, Matrix, Model, TensorPolicy};

use crate::gpu::gpu;
use crate::gpu_forward::{check_against_cpu, default_model};

/// Tokens kept (the prompt is the default prompt's first 3 tokens among them).
const VOCAB: usize = 2048;

fn check_one_layer(format: &str, kernels: &[&str]) {
    let Some(_) = gpu() else { return };
    let Some(d) = default_model() else { return };
    let prompt: Vec<u32> = d.prompt.iter().copied().filter(|&t| (t as usize) < VOCAB).take(3).collect();
    assert_eq!(prompt.len(), 3, "{:?}: 3 tokens within the kept vocabulary", d.prompt);
    let w = &d.model.weights;
    assert!(d.model.config.tied_embeddings && w.output.is_none(), "the default model ties its embeddings");
    let mut config = d.model.config.clone();
    config.n_layers = 1;
    config.vocab_size = VOCAB;
    let embd = w.token_embd.to_f32()[..VOCAB * config.dim].to_vec();
    let weights = Weights {
        token_embd: Matrix::from_f32(embd, TensorShape::new(VOCAB, config.dim)).unwrap(),
        layers: w.layers[..1].to_vec(),
        output_norm: w.output_norm.clone(),
        output: None,
    };
    let small = Model { config, weights };
    let scheme = QuantScheme::parse(format).unwrap();
    let (q, _) = quantize_model(&small, &scheme, &TensorPolicy::default()).unwrap();
    let label = format!("{format} (layer 0 and {VOCAB} tokens of the default model)");
    check_against_cpu(&q, &prompt, 8, &label, kernels);
}

/// Per-tensor INT: the INT kernel with one scale (and zero point) for the matrix.
#[test]
fn one_layer_as_int_per_tensor_matches_cpu() {
    check_one_layer("int8-asym-tensor", &["int8-asym-tensor (dedicated)"]);
    check_one_layer("int4-sym-tensor", &["int4-sym-tensor (dedicated)"]);
}

/// BF16 (a format the registry can store, read by its own kernel rather than converted to f16).
#[test]
fn one_layer_as_bf16_matches_cpu() {
    check_one_layer("bf16", &["BF16 (dedicated)"]);
}

#[test]
fn one_layer_as_iq4_nl_matches_cpu() {
    check_one_layer("iq4_nl", &["IQ4_NL (dedicated)"]);
}

/// The 576-wide rows K-quants can't split fall back to Q5_1 (llama.cpp's rule for Q5_K).
#[test]
fn one_layer_as_q5_k_matches_cpu() {
    check_one_layer("q5_k", &["Q5_K (dedicated)", "Q5_1 (dedicated)"]);
}

/// Its 576-wide rows fall back to Q4_0 (run by gpu_forward's q4_0 test too).
#[test]
fn one_layer_as_q3_k_matches_cpu() {
    check_one_layer("q3_k", &["Q3_K (dedicated)", "Q4_0 (dedicated)"]);
}

#[test]
fn one_layer_as_q2_k_matches_cpu() {
    check_one_layer("q2_k", &["Q2_K (dedicated)", "Q4_0 (dedicated)"]);
}

/// IQ4_XS and MXFP4 are decode-only (the lab can't quantize to them), and `gguf::test_builder`
/// can't write a GGUF holding them (it fills tensor data with a fixed byte pattern, not valid
/// blocks), so the model is built in memory: 2 layers whose every matrix (embedding and tied
/// head too) is random valid blocks (`gpu::bench::random_blocks`), rows of 256 values (whole
/// IQ4_XS super-blocks); small norm weights keep the random weights' activations in range.
fn random_block_model(ty: GgmlType) -> Model {
    let (dim, hidden, heads, head_dim, vocab) = (256, 512, 4, 64, 301);
    let config = Config {
        dim,
        hidden_dim: hidden,
        n_layers: 2,
        n_heads: heads,
        n_kv_heads: 2,
        head_dim,
        rope_dim: head_dim,
        vocab_size: vocab,
        seq_len: 64,
        rope_theta: 10000.0,
        rms_eps: 1e-5,
        tied_embeddings: true,
    };
    let mut seed = 0;
    let mut m = |rows: usize, cols: usize| {
        seed += 1;
        let t = random_blocks(ty, TensorShape::new(rows, cols), seed).unwrap();
        Matrix::from_quantized(QuantizedTensor::Ggml(t)).unwrap()
    };
    let norm = |n: usize| vec![0.05f32; n];
    let kv = 2 * head_dim;
    let layers = (0..2)
        .map(|_| Layer {
            attn_norm: norm(dim),
            wq: m(heads * head_dim, dim),
            wk: m(kv, dim),
            wv: m(kv, dim),
            wo: m(dim, heads * head_dim),
            ffn_norm: norm(dim),
            w_gate: m(hidden, dim),
            w_down: m(dim, hidden),
            w_up: m(hidden, dim),
        })
        .collect();
    let token_embd = m(vocab, dim);
    Model { config, weights: Weights { token_embd, layers, output_norm: norm(dim), output: None } }
}

#[test]
fn random_iq4_xs_and_mxfp4_models_match_cpu() {
    let Some(_) = gpu() else { return };
    for (ty, kernel) in [(GgmlType::IQ4_XS, "IQ4_XS (dedicated)"), (GgmlType::MXFP4, "MXFP4 (dedicated)")] {
        let model = random_block_model(ty);
        check_against_cpu(&model, &[3, 200, 41], 8, &format!("{ty}: random blocks, 2 layers"), &[kernel]);
    }
}
