//! The dedicated kernels no whole-model test in `gpu_forward` runs as a model's main format
//! (Q5_0 runs there inside q4_k, for the 576-wide rows K-quants can't split; Q5_1 here inside
//! q5_k, for the same reason): the default model
//! cut to its first layer and its first `VOCAB` tokens (embedding and tied output head alike),
//! re-quantized in memory, GPU vs CPU on the same quantized weights: logits after a 3-token
//! prompt (from those tokens) and 8 greedy tokens, with the whole-model tolerance (`gpu_forward::check_against_cpu`).
//! Every layer runs the same kernels on the same shapes, and the 49152-row head would cost
//! lavapipe most of the time (`npm test`'s budget).

use quantlab::formats::QuantScheme;
use quantlab::formats::TensorShape;
use quantlab::model::weights::Weights;
use quantlab::model::{quantize_model, Matrix, Model, TensorPolicy};

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
