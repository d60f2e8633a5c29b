//! SmoothQuant (Xiao et al. 2022): move the activations' outlier channels into the weights
//! before W8A8, by a per-input-channel factor that leaves the float model's function unchanged.
//!
//! For an RMS norm followed by linears `fcs` (the attention norm and `attn_q/k/v`; the FFN norm
//! and `ffn_gate/up`), with `X_j` the calibration activations of input channel `j` and `W_j` the
//! column `j` of every matrix in `fcs`:
//!
//! ```text
//! s_j = clamp(max|X_j|^α / clamp(max|W_j|, 1e-5)^(1−α), 1e-5)
//! norm_j ← norm_j / s_j,   W[:, j] ← W[:, j] · s_j   (every matrix of fcs)
//! ```
//!
//! exactly `smooth_ln_fcs_llama_like` of mit-han-lab/smoothquant (`smoothquant/smooth.py`,
//! `smooth_lm` for `LlamaDecoderLayer`; α default 0.5), in f32. `(x / s) · (s · W)` is the
//! same product, so the smoothed float model computes the same logits up to f32 rounding; the
//! attention output and `ffn_down` inputs are not smoothed (nothing foldable precedes them),
//! as in the reference. The smoothed matrices are f32 (the stored values times `s`): the caller
//! quantizes them afterwards (W8A8: weights to INT8, activations per [`crate::model::act_quant`]).
//!
//! `scripts/dev/make_act_quant_goldens.py` ports the factors and the fold to numpy.

use crate::calib::ranges::ChannelAbsMax;
use crate::model::{LinearInput, Matrix, Model};

/// The reference's default migration strength.
pub const DEFAULT_ALPHA: f32 = 0.5;
/// The reference's floor on weight maxima and factors.
const FLOOR: f32 = 1e-5;

/// Why a model cannot be smoothed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SmoothQuantError {
    #[error("SmoothQuant alpha {alpha} is outside [0, 1]")]
    BadAlpha { alpha: f32 },
    #[error("no activation maxima for the input of {input:?}: calibrate on this model first")]
    MissingStats { input: LinearInput },
    #[error("activation maxima for {input:?} have {got} channels, the layer reads {expected}")]
    WidthMismatch { input: LinearInput, expected: usize, got: usize },
}

/// `s_j` of the module docs from the activation maxima `act_max` (one per input channel) and
/// the matrices `fcs` that read the input (each `rows × act_max.len()`).
pub fn smoothing_factors(act_max: &[f32], fcs: &[&[f32]], alpha: f32) -> Vec<f32> {
    let cols = act_max.len();
    let mut w_max = vec![0f32; cols];
    for w in fcs {
        for row in w.chunks_exact(cols) {
            for (m, &v) in w_max.iter_mut().zip(row) {
                *m = m.max(v.abs());
            }
        }
    }
    act_max.iter().zip(&w_max).map(|(&a, &w)| (a.powf(alpha) / w.max(FLOOR).powf(1.0 - alpha)).max(FLOOR)).collect()
}

/// Divides `norm` by `s` and multiplies every column of each matrix in `fcs` (row-major,
/// `s.len()` columns) by `s`, in place.
pub fn fold(norm: &mut [f32], fcs: &mut [&mut Vec<f32>], s: &[f32]) {
    for (n, &f) in norm.iter_mut().zip(s) {
        *n /= f;
    }
    for w in fcs {
        for row in w.chunks_exact_mut(s.len()) {
            for (v, &f) in row.iter_mut().zip(s) {
                *v *= f;
            }
        }
    }
}

/// The smoothing factors of each smoothed input, in forward order.
pub type Factors = Vec<(LinearInput, Vec<f32>)>;

/// `model` with every layer's attention and FFN inputs smoothed by the maxima `act` (per
/// channel, over calibration text on this model) with strength `alpha`. Returns the model and
/// the factors per input.
pub fn smooth_model(model: &Model, act: &ChannelAbsMax, alpha: f32) -> Result<(Model, Factors), SmoothQuantError> {
    if !(0.0..=1.0).contains(&alpha) {
        return Err(SmoothQuantError::BadAlpha { alpha });
    }
    let mut out = model.clone();
    let mut factors = Vec::new();
    for (l, layer) in out.weights.layers.iter_mut().enumerate() {
        for input in [LinearInput::Attention { layer: l }, LinearInput::Ffn { layer: l }] {
            let act_max = act.inputs.get(&input).ok_or(SmoothQuantError::MissingStats { input })?;
            let (norm, mats): (&mut Vec<f32>, Vec<&mut Matrix>) = match input {
                LinearInput::Attention { .. } => {
                    (&mut layer.attn_norm, vec![&mut layer.wq, &mut layer.wk, &mut layer.wv])
                }
                _ => (&mut layer.ffn_norm, vec![&mut layer.w_gate, &mut layer.w_up]),
            };
            if act_max.len() != norm.len() {
                return Err(SmoothQuantError::WidthMismatch { input, expected: norm.len(), got: act_max.len() });
            }
            let shapes: Vec<_> = mats.iter().map(|m| m.shape()).collect();
            let mut values: Vec<Vec<f32>> = mats.iter().map(|m| m.to_f32()).collect();
            let s = smoothing_factors(act_max, &values.iter().map(Vec::as_slice).collect::<Vec<_>>(), alpha);
            fold(norm, &mut values.iter_mut().collect::<Vec<_>>(), &s);
            for ((m, v), shape) in mats.into_iter().zip(values).zip(shapes) {
                *m = Matrix::F32 { shape, data: v };
            }
            factors.push((input, s));
        }
    }
    Ok((out, factors))
}
