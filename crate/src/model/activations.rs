//! Activation magnitudes per input channel of every linear layer, over a calibration text: the
//! picture behind LLM.int8() (a few hidden-state channels carry values far larger than the
//! rest, so int8 activations need them split out), AWQ and SmoothQuant (scale the weight input
//! channels that meet large activations, because their rounding error is multiplied by them).
//!
//! [`activation_stats`] runs tokens through [`forward_observed`] and, for each [`LinearInput`]
//! (the normed residual feeding `attn_q/k/v`, the attention output feeding `attn_output`, the
//! normed residual feeding `ffn_gate/up`, `silu(gate)·up` feeding `ffn_down`, the final norm
//! feeding the classifier), keeps per channel:
//!
//! - `absmax = max over positions |a|`,
//! - `rms = √(Σ a² / positions)` (f64 sums),
//! - outlier channels by the same rule as the weight statistics
//!   ([`crate::stats::weights::outlier_channels`]: absmax > k × median channel absmax).
//!
//! Every position counts, the first one included (in many models the first token's residual
//! has "massive activations" of its own; the lab shows what the text does, not a cleaned view).
//! The text should come from [`super::eval::CALIBRATION_CHAPTERS`], never from the eval
//! chapters, so that calibration never sees the held-out text.

use super::forward::{forward_observed, LinearInput, State};
use super::{Model, ModelError};
use crate::stats::weights::outlier_channels;

/// Activation statistics of one linear-layer input.
#[derive(Debug, Clone, PartialEq)]
pub struct InputActivations {
    pub input: LinearInput,
    /// The weight matrices that read this input (llama.cpp names).
    pub tensors: Vec<String>,
    pub col_absmax: Vec<f32>,
    pub col_rms: Vec<f64>,
    /// Channels whose absmax exceeds `outlier_k` × the median channel absmax.
    pub outlier_cols: Vec<usize>,
}

/// [`activation_stats`]' result: one entry per linear input, in forward order.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationStats {
    /// Positions run (the statistics are over these many vectors per input).
    pub tokens: usize,
    pub outlier_k: f64,
    pub inputs: Vec<InputActivations>,
}

impl ActivationStats {
    /// The entry whose input the weight matrix `tensor` reads.
    pub fn for_tensor(&self, tensor: &str) -> Option<&InputActivations> {
        self.inputs.iter().find(|i| i.tensors.iter().any(|t| t == tensor))
    }
}

/// Why [`activation_stats`] stopped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ActivationError {
    #[error("no tokens to run: the calibration text is empty")]
    NoTokens,
    #[error("cancelled after {done} of {total} tokens")]
    Cancelled { done: usize, total: usize },
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// Slot of an input in forward order: 4 per layer, then the classifier.
fn slot(input: LinearInput, n_layers: usize) -> usize {
    match input {
        LinearInput::Attention { layer } => 4 * layer,
        LinearInput::AttentionOutput { layer } => 4 * layer + 1,
        LinearInput::Ffn { layer } => 4 * layer + 2,
        LinearInput::FfnDown { layer } => 4 * layer + 3,
        LinearInput::Classifier => 4 * n_layers,
    }
}

/// Runs `tokens` (positions 0, 1, ...; at most the model's context) through `model` and
/// collects per-channel activation statistics (see the module docs). `progress(done, total)`
/// after each token; returning `false` stops with [`ActivationError::Cancelled`].
pub fn activation_stats(
    model: &Model,
    tokens: &[u32],
    outlier_k: f64,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<ActivationStats, ActivationError> {
    let c = &model.config;
    let n = tokens.len().min(c.seq_len);
    if n == 0 {
        return Err(ActivationError::NoTokens);
    }
    let n_layers = model.weights.layers.len();
    let mut inputs: Vec<Option<LinearInput>> = vec![None; 4 * n_layers + 1];
    let mut absmax: Vec<Vec<f32>> = vec![Vec::new(); inputs.len()];
    let mut sum_sq: Vec<Vec<f64>> = vec![Vec::new(); inputs.len()];
    let mut state = State::new(c, n);
    for (pos, &token) in tokens[..n].iter().enumerate() {
        if token as usize >= c.vocab_size {
            return Err(ModelError::TokenOutOfRange { token, vocab_size: c.vocab_size }.into());
        }
        forward_observed(c, &model.weights, &mut state, token, pos, |input, a| {
            let i = slot(input, n_layers);
            if inputs[i].is_none() {
                inputs[i] = Some(input);
                absmax[i] = vec![0.0; a.len()];
                sum_sq[i] = vec![0.0; a.len()];
            }
            for ((m, s), &v) in absmax[i].iter_mut().zip(sum_sq[i].iter_mut()).zip(a) {
                *m = m.max(v.abs());
                *s += f64::from(v) * f64::from(v);
            }
        });
        if !progress(pos + 1, n) {
            return Err(ActivationError::Cancelled { done: pos + 1, total: n });
        }
    }
    let tied = model.weights.output.is_none();
    let inputs = inputs
        .into_iter()
        .zip(absmax)
        .zip(sum_sq)
        .filter_map(|((input, col_absmax), sq)| {
            let input = input?;
            Some(InputActivations {
                input,
                tensors: input.tensor_names(tied),
                col_rms: sq.iter().map(|s| (s / n as f64).sqrt()).collect(),
                outlier_cols: outlier_channels(&col_absmax, outlier_k),
                col_absmax,
            })
        })
        .collect();
    Ok(ActivationStats { tokens: n, outlier_k, inputs })
}
