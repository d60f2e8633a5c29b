//! `forward_observed` and `model::activations` on the default model, against values recomputed
//! here independently: layer 0's attention input is the token's embedding row (decoded from
//! `token_embd`) RMS-normed in f64; each `ffn_down` input is silu(W_gate·x)·(W_up·x) of the
//! observed FFN input, with the matrices decoded to f32 and the products in f64. The statistics
//! are checked against max / RMS over the observed vectors and the weight statistics' outlier
//! rule; the observed forward's logits are bit-identical to `forward`'s.

use crate::gguf::model_path;
use quantlab::model::activations::{activation_stats, ActivationError};
use quantlab::model::{forward, forward_observed, LinearInput, Matrix, Model, State};
use quantlab::stats::weights::outlier_channels;
use std::collections::HashMap;

const TOKENS: [u32; 5] = [1, 504, 3458, 28, 1694];

fn load() -> Option<Model> {
    let path = model_path()?;
    Some(Model::from_gguf_bytes(&std::fs::read(path).unwrap()).unwrap())
}

/// `W · x` in f64 on the decoded matrix.
fn matvec(m: &Matrix, x: &[f32]) -> Vec<f64> {
    let cols = m.shape().cols;
    m.to_f32()
        .chunks_exact(cols)
        .map(|row| row.iter().zip(x).map(|(&w, &v)| f64::from(w) * f64::from(v)).sum())
        .collect()
}

fn assert_close(got: &[f32], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!((f64::from(g) - w).abs() <= tol * (1.0 + w.abs()), "{what}[{i}]: {g} vs {w}");
    }
}

#[test]
fn observed_inputs_match_an_independent_recomputation() {
    let Some(model) = load() else { return };
    let (c, w) = (&model.config, &model.weights);
    let embd = w.token_embd.to_f32();
    let mut plain = State::new(c, TOKENS.len());
    let mut observed = State::new(c, TOKENS.len());
    let mut seen: Vec<Vec<(LinearInput, Vec<f32>)>> = Vec::new();
    for (pos, &tok) in TOKENS.iter().enumerate() {
        let want = forward(c, w, &mut plain, tok, pos).to_vec();
        let mut calls = Vec::new();
        let got = forward_observed(c, w, &mut observed, tok, pos, |input, a| calls.push((input, a.to_vec())));
        assert_eq!(got, want.as_slice(), "position {pos}: the observer changed the logits");
        assert_eq!(calls.len(), 4 * c.n_layers + 1);
        seen.push(calls);
    }
    for (pos, calls) in seen.iter().enumerate() {
        // Layer 0's attention input: rmsnorm(embedding row) ⊙ attn_norm.
        let (input, a) = &calls[0];
        assert_eq!(*input, LinearInput::Attention { layer: 0 });
        let row = &embd[TOKENS[pos] as usize * c.dim..][..c.dim];
        let ms = row.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / c.dim as f64;
        let inv = 1.0 / (ms + f64::from(c.rms_eps)).sqrt();
        let normed: Vec<f64> =
            row.iter().zip(&w.layers[0].attn_norm).map(|(&x, &g)| f64::from(x) * inv * f64::from(g)).collect();
        assert_close(a, &normed, 1e-5, "attention input of layer 0");
        // Order and sizes of every call.
        for (i, (input, a)) in calls.iter().enumerate() {
            let (expected, len) = match (i / 4, i % 4) {
                (l, _) if l == c.n_layers => (LinearInput::Classifier, c.dim),
                (l, 0) => (LinearInput::Attention { layer: l }, c.dim),
                (l, 1) => (LinearInput::AttentionOutput { layer: l }, c.q_dim()),
                (l, 2) => (LinearInput::Ffn { layer: l }, c.dim),
                (l, _) => (LinearInput::FfnDown { layer: l }, c.hidden_dim),
            };
            assert_eq!((*input, a.len()), (expected, len), "call {i}");
        }
    }
    // ffn_down input = silu(gate)·up of the observed FFN input, for the first and last layer.
    for layer in [0, c.n_layers - 1] {
        let lw = &w.layers[layer];
        let x = &seen[2][4 * layer + 2].1;
        let (gate, up) = (matvec(&lw.w_gate, x), matvec(&lw.w_up, x));
        let want: Vec<f64> = gate.iter().zip(&up).map(|(&g, &u)| g / (1.0 + (-g).exp()) * u).collect();
        assert_close(&seen[2][4 * layer + 3].1, &want, 1e-4, &format!("ffn_down input of layer {layer}"));
    }

    // The statistics: max |a| and RMS over the positions, outliers by the weight rule.
    let stats = activation_stats(&model, &TOKENS, 6.0, &mut |_, _| true).unwrap();
    assert_eq!(stats.tokens, TOKENS.len());
    assert_eq!(stats.inputs.len(), 4 * c.n_layers + 1);
    let mut by_input: HashMap<LinearInput, Vec<&Vec<f32>>> = HashMap::new();
    for calls in &seen {
        for (input, a) in calls {
            by_input.entry(*input).or_default().push(a);
        }
    }
    for s in &stats.inputs {
        let vs = &by_input[&s.input];
        let absmax: Vec<f32> = (0..vs[0].len()).map(|j| vs.iter().map(|v| v[j].abs()).fold(0.0, f32::max)).collect();
        let rms: Vec<f64> = (0..vs[0].len())
            .map(|j| (vs.iter().map(|v| f64::from(v[j]).powi(2)).sum::<f64>() / vs.len() as f64).sqrt())
            .collect();
        assert_eq!(s.col_absmax, absmax, "{:?}", s.input);
        for (g, w) in s.col_rms.iter().zip(&rms) {
            assert!((g - w).abs() <= 1e-12 * (1.0 + w), "{:?}: rms {g} vs {w}", s.input);
        }
        assert_eq!(s.outlier_cols, outlier_channels(&absmax, 6.0));
    }
    let tied = w.output.is_none();
    let down = stats.for_tensor("blk.3.ffn_down.weight").unwrap();
    assert_eq!(down.input, LinearInput::FfnDown { layer: 3 });
    assert_eq!(stats.for_tensor("blk.3.attn_k.weight").unwrap().input, LinearInput::Attention { layer: 3 });
    let classifier = if tied { "token_embd.weight" } else { "output.weight" };
    assert_eq!(stats.for_tensor(classifier).unwrap().input, LinearInput::Classifier);
}

#[test]
fn activation_stats_errors_and_cancel() {
    let Some(model) = load() else { return };
    assert_eq!(activation_stats(&model, &[], 6.0, &mut |_, _| true), Err(ActivationError::NoTokens));
    let mut calls = 0;
    let r = activation_stats(&model, &TOKENS, 6.0, &mut |_, _| {
        calls += 1;
        calls < 2
    });
    assert_eq!(r, Err(ActivationError::Cancelled { done: 2, total: TOKENS.len() }));
    let bad = model.config.vocab_size as u32;
    assert!(matches!(activation_stats(&model, &[1, bad], 6.0, &mut |_, _| true), Err(ActivationError::Model(_))));
}
