//! LLM.int8() (Dettmers et al., 2022, "LLM.int8(): 8-bit Matrix Multiplication for Transformers
//! at Scale") as bitsandbytes' `MatMul8bitLt` runs it at inference, and the per-token INT8 codes
//! the integer path of the forward multiplies ([`TokenCodes`]).
//!
//! # The rules (bitsandbytes' CPU functions, `int8_vectorwise_quant` / `int8_mixed_scaled_mm`)
//!
//! - **Weights**, int8 vector-wise ([`vectorwise_weights`]): per output row `r`, `SCB_r = max_j
//!   |W_rj|` and codes `round(W_rj · (127 / SCB_r))` (round half to even, as `torch.round`),
//!   stored as an `int8-sym-channel` tensor of scale `SCB_r / 127`, made from the float or
//!   dequantized weights ([`llm_int8_model`]).
//! - **Inputs**, per token with outlier columns ([`TokenCodes::llm_int8`]): in the rows a product
//!   reads at once, every value with `|x| ≥ threshold` is an outlier and its column an outlier
//!   column. The outlier values are left out of their row's absmax `SCA_i` (the other values of
//!   an outlier column still count); codes `round(x_ij · (127 / SCA_i))`, zero in outlier columns.
//! - **Product**: `y_ir = Σ_{j∉O} CA_ij·CB_rj · SCA_i·SCB_r / 127² + Σ_{j∈O} x_ij · CB_rj·SCB_r/127`:
//!   the outlier columns are multiplied in float, with the weights' dequantized int8 values (as
//!   bitsandbytes does with int8-stored weights). **Float here is f32** (the paper and
//!   bitsandbytes use f16 for the inputs; the lab's forward is f32 throughout).
//!
//! A row whose absmax is 0 gets zero codes (bitsandbytes would divide by zero). "The rows a
//! product reads at once" are one position in the per-position forward and the block's positions
//! in the batched one, so which columns are outliers depends on the block, as in a serving
//! engine's batched prefill; the two forwards agree with blocks of one position.
//!
//! The simulated path ([`super::ActQuantizer::apply`]) writes `x̂_ij = CA_ij · SCA_i/127` outside
//! the outlier columns and leaves those columns as they are, then runs the float product on the
//! int8 weights; the integer path ([`super::int_path`]) multiplies the codes in i32 and adds the
//! float columns. They agree within float summation order. `scripts/dev/make_llm_int8_goldens.py`
//! is the numpy port of bitsandbytes' functions that tests/rust/llm_int8.rs matches.

use super::weights::{Matrix, Weights};
use super::{Model, ModelError};
use crate::formats::int::IntTensor;
use crate::formats::{QuantScheme, QuantizedTensor, TensorShape};

/// bitsandbytes' default `llm_int8_threshold`.
pub const DEFAULT_THRESHOLD: f32 = 6.0;

/// Rows of activations as int8 codes, one scale per row (`x̂ = q · scale`), with the columns kept
/// in float (LLM.int8()'s outlier columns; none for plain per-token codes).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenCodes {
    pub width: usize,
    /// `rows × width` codes; zero in the outlier columns.
    pub codes: Vec<i8>,
    /// One scale per row.
    pub scales: Vec<f32>,
    /// The outlier columns, ascending.
    pub outliers: Vec<usize>,
    /// `rows × outliers.len()`: each row's values in the outlier columns, as they came.
    pub float: Vec<f32>,
}

impl TokenCodes {
    /// The lab's per-token INT8 rule ([`super::ActType::round`] with `int8-token`): `s = max|x| /
    /// 127` per row, `q = round_half_even(x · (1/s))` clamped to ±127.
    pub fn per_token(rows: &[f32], width: usize) -> TokenCodes {
        let mut codes = vec![0i8; rows.len()];
        let mut scales = Vec::with_capacity(rows.len() / width.max(1));
        for (row, out) in rows.chunks_exact(width).zip(codes.chunks_exact_mut(width)) {
            let s = row.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
            let inv = if s > 0.0 { 1.0 / s } else { 0.0 };
            for (o, &x) in out.iter_mut().zip(row) {
                *o = (x * inv).round_ties_even().clamp(-127.0, 127.0) as i8;
            }
            scales.push(s);
        }
        TokenCodes { width, codes, scales, outliers: Vec::new(), float: Vec::new() }
    }

    /// LLM.int8()'s input codes (module docs) for the rows of `width` values a product reads at
    /// once; `threshold > 0` (`∞`: no outliers).
    pub fn llm_int8(rows: &[f32], width: usize, threshold: f32) -> TokenCodes {
        let is_outlier = |x: f32| x.abs() >= threshold;
        let mut flagged = vec![false; width];
        for row in rows.chunks_exact(width) {
            for (f, &x) in flagged.iter_mut().zip(row) {
                *f |= is_outlier(x);
            }
        }
        let outliers: Vec<usize> = (0..width).filter(|&j| flagged[j]).collect();
        let mut codes = vec![0i8; rows.len()];
        let mut scales = Vec::with_capacity(rows.len() / width.max(1));
        let mut float = Vec::with_capacity(rows.len() / width.max(1) * outliers.len());
        for (row, out) in rows.chunks_exact(width).zip(codes.chunks_exact_mut(width)) {
            let amax = row.iter().filter(|&&x| !is_outlier(x)).fold(0f32, |m, v| m.max(v.abs()));
            let mult = if amax > 0.0 { 127.0 / amax } else { 0.0 };
            for ((o, &x), &f) in out.iter_mut().zip(row).zip(&flagged) {
                if !f {
                    // |x| ≤ amax, so |x · mult| ≤ 127 up to one rounding; the clamp is belt and braces.
                    *o = (x * mult).round_ties_even().clamp(-127.0, 127.0) as i8;
                }
            }
            scales.push(amax / 127.0);
            float.extend(outliers.iter().map(|&j| row[j]));
        }
        TokenCodes { width, codes, scales, outliers, float }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.scales.len()
    }

    /// Writes the simulated values into `rows` (the rows these codes came from): `q · s`
    /// outside the outlier columns, which keep their values.
    pub fn dequantize_into(&self, rows: &mut [f32]) {
        let w = self.width;
        for ((row, q), &s) in rows.chunks_exact_mut(w).zip(self.codes.chunks_exact(w)).zip(&self.scales) {
            let mut next = self.outliers.iter().peekable();
            for (j, (x, &c)) in row.iter_mut().zip(q).enumerate() {
                if next.peek() == Some(&&j) {
                    next.next();
                    continue;
                }
                *x = f32::from(c) * s;
            }
        }
    }
}

/// An `int8-sym-channel` tensor made by LLM.int8()'s weight rule (module docs) from row-major
/// `values` of `shape`. Values must be finite (the caller's weights are).
pub fn vectorwise_weights(values: &[f32], shape: TensorShape) -> IntTensor {
    let cols = shape.cols;
    let mut packed = vec![0u8; values.len()];
    let mut scales = Vec::with_capacity(shape.rows);
    for (row, out) in values.chunks_exact(cols).zip(packed.chunks_exact_mut(cols)) {
        let absmax = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let mult = if absmax > 0.0 { 127.0 / absmax } else { 0.0 };
        for (o, &w) in out.iter_mut().zip(row) {
            // Offset binary, as IntTensor stores symmetric codes: q + 128.
            *o = ((w * mult).round_ties_even().clamp(-127.0, 127.0) as i32 + 128) as u8;
        }
        scales.push(absmax / 127.0);
    }
    IntTensor {
        scheme: QuantScheme::parse("int8-sym-channel").expect("a valid scheme name"),
        shape,
        bits: 8,
        group_len: cols,
        packed,
        scales,
        zero_points: Vec::new(),
        saturated_groups: Vec::new(),
    }
}

/// `model` with every layer matrix (not the embedding nor the LM head, which LLM.int8() keeps in
/// float as bitsandbytes' `llm_int8_skip_modules` does) re-quantized to int8 vector-wise from its
/// float or dequantized values.
pub fn llm_int8_model(model: &Model) -> Result<Model, ModelError> {
    let w = &model.weights;
    let layers = w
        .layers
        .iter()
        .map(|l| {
            l.try_map_matrices(|_, m| {
                Matrix::from_quantized(QuantizedTensor::Int(vectorwise_weights(&m.to_f32(), m.shape())))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let weights = Weights {
        token_embd: w.token_embd.clone(),
        layers,
        output_norm: w.output_norm.clone(),
        output: w.output.clone(),
    };
    Ok(Model { config: model.config.clone(), weights })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outlier_columns_by_hand() {
        // Row 0 has 7.0 in column 1 (an outlier column for both rows); row 1's absmax leaves out
        // nothing, but its column 1 goes to float all the same.
        let rows = [1.0f32, 7.0, -0.5, 2.0, 0.5, 1.0];
        let c = TokenCodes::llm_int8(&rows, 3, 6.0);
        assert_eq!(c.outliers, vec![1]);
        assert_eq!(c.float, vec![7.0, 0.5]);
        assert_eq!(c.scales, vec![1.0 / 127.0, 2.0 / 127.0]);
        // 2.0 · (127/2) = 127, 1.0 · 63.5 = 63.5 → 64 (ties to even), -0.5 · 127 = -63.5 → -64.
        assert_eq!(c.codes, vec![127, 0, -64, 127, 0, 64]);
        let mut sim = rows;
        c.dequantize_into(&mut sim);
        assert_eq!(sim[1], 7.0);
        assert_eq!(sim[4], 0.5);
        assert_eq!(sim[0], 1.0);
        assert_eq!(sim[5], 64.0 * (2.0 / 127.0));
        // No outliers at ∞; an all-zero row gets zero codes.
        let z = TokenCodes::llm_int8(&[0.0, 0.0, 3.0, -3.0], 2, f32::INFINITY);
        assert!(z.outliers.is_empty());
        assert_eq!(z.codes, vec![0, 0, 127, -127]);
    }
}
