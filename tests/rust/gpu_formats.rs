//! The dedicated kernels no whole-model test in `gpu_forward` runs as a model's main format
//! (Q5_0 runs there inside q4_k, for the 576-wide rows K-quants can't split): the default model
//! cut to its first layer (embedding and output head kept), re-quantized in memory, GPU vs CPU
//! on the same quantized weights: logits after a 3-token prompt and 8 greedy tokens, with the
//! whole-model tolerance (`gpu_forward::check_against_cpu`). One layer keeps each format to a
//! few seconds on lavapipe; every layer runs the same kernels on the same shapes.

use quantlab::formats::QuantScheme;
use quantlab::model::weights::Weights;
use quantlab::model::{quantize_model, Model, TensorPolicy};

use crate::gpu::gpu;
use crate::gpu_forward::{check_against_cpu, default_model};

fn check_one_layer(format: &str, kernel: &str) {
    let Some(_) = gpu() else { return };
    let Some(d) = default_model() else { return };
    let w = &d.model.weights;
    let mut config = d.model.config.clone();
    config.n_layers = 1;
    let weights = Weights {
        token_embd: w.token_embd.clone(),
        layers: w.layers[..1].to_vec(),
        output_norm: w.output_norm.clone(),
        output: w.output.clone(),
    };
    let one_layer = Model { config, weights };
    let scheme = QuantScheme::parse(format).unwrap();
    let (q, _) = quantize_model(&one_layer, &scheme, &TensorPolicy::default()).unwrap();
    check_against_cpu(&q, &d.prompt[..3], 8, &format!("{format} (layer 0 of the default model)"), &[kernel]);
}

#[test]
fn one_layer_as_q5_0_matches_cpu() {
    check_one_layer("q5_0", "Q5_0 (dedicated)");
}

#[test]
fn one_layer_as_q5_1_matches_cpu() {
    check_one_layer("q5_1", "Q5_1 (dedicated)");
}

#[test]
fn one_layer_as_iq4_nl_matches_cpu() {
    check_one_layer("iq4_nl", "IQ4_NL (dedicated)");
}
