//! AWQ, activation-aware weight quantization (Lin, Tang, Tang, Yang, Dang, Gan, Han, "AWQ:
//! Activation-aware Weight Quantization for LLM Compression and Acceleration", 2023), after the
//! reference implementation mit-han-lab/llm-awq (`awq/quantize/auto_scale.py`, `auto_clip.py`):
//!
//! 1. **Scale search** ([`search_scales`]), for a group of matrices that read one input: the
//!    per-input-channel activation magnitude `x̄ = mean |x|` over the calibration tokens; for
//!    each ratio `r = i/20`, `i = 0..20`: `s = max(x̄^r, 1e-4)`, normalised by
//!    `√(max s · min s)`; every matrix `W` of the group becomes `Q(W·diag(s))·diag(s)⁻¹` (`Q`:
//!    quantize then dequantize in the TARGET format, whichever it is — INT groups, GGUF legacy
//!    blocks, k-quants: the format's own quantizer); the loss is the mean squared difference of
//!    the group's outputs against the float outputs on the calibration rows. The first ratio
//!    with the smallest loss wins. The caller multiplies the weights by `s` and folds `1/s`
//!    into the operation before (an RMSNorm's weight, or the rows of the previous linear).
//! 2. **Clip search** ([`search_clip`]), per matrix (already scaled, with inputs `x/s`): for
//!    every output row and quantization unit (the format's group or block), the largest `|w|`
//!    is shrunk by `1 − k/20`, `k = 0..10` (down to 0.55, the reference's `max_shrink = 0.5`
//!    over 20 steps, exclusive); the weights are clamped to `±` that, quantized, and the
//!    unit's output error `Σ_t (x_t·(w − q))²` over the sample rows decides; the first best
//!    shrink is kept and applied ([`apply_clip`]).
//!
//! Arithmetic: the scales are computed in f64 and stored as f32; `W·diag(s)`, the
//! dequantized `/ s`, the clamps and `x / s` are single f32 operations as in the reference's
//! f32 tensors; the output differences are f32 dot products with 8 partial sums (the batched
//! forward's product), squared and summed in f64. `scripts/dev/awq_reference.py` is an
//! independent numpy port of the search (tests/rust/awq.rs compares).
//!
//! Deviation from the reference: its loss for the q/k/v and gate/up groups is the whole
//! attention / MLP block's output; here it is always the group's own linear outputs (the
//! concatenated outputs of q, k and v, or of gate and up), which needs no attention or SwiGLU
//! re-run per candidate. Over a model ([`super::awq_model`]) the loss rows are a sample of at
//! most [`SAMPLE_ROWS`] calibration positions (every `n/512`-th, the clip search's sampling in
//! the reference, where the scale search uses every position), while `x̄` is over every
//! position.

use crate::formats::{self, Granularity, QuantError, QuantScheme, QuantizedTensor, TensorShape, ValueType};
use crate::model::weights::Matrix;

/// Ratios tried by the scale search (`r = i / GRID`, `i = 0..GRID`), as in the reference.
pub const GRID: usize = 20;
/// Shrinks tried by the clip search (`1 − k / GRID`, `k = 0..CLIP_STEPS`): max_shrink 0.5.
pub const CLIP_STEPS: usize = 10;
/// The smallest scale before normalisation, as in the reference.
pub const MIN_SCALE: f64 = 1e-4;
/// Calibration positions the losses are measured on (the reference's `n_sample_token`).
pub const SAMPLE_ROWS: usize = 512;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AwqError {
    #[error(transparent)]
    Quant(#[from] QuantError),
    #[error("AWQ rounds onto INT per-channel or group schemes and the GGUF block types, not {scheme}")]
    UnsupportedScheme { scheme: String },
    #[error("the calibration inputs have {got} values per row; the weights have {cols} columns")]
    Inputs { cols: usize, got: usize },
    #[error("no scale ratio gave a finite loss")]
    NoFiniteLoss,
}

/// The formats [`supports`] takes, for users.
pub const SUPPORTED: &str = "int per channel or group and the GGUF block types (k-quants included)";

/// True if AWQ takes `scheme`: an INT scheme per channel or per group, or a quantized ggml
/// block type (not a float type).
pub fn supports(scheme: &QuantScheme) -> bool {
    match scheme.value {
        ValueType::Int { .. } => scheme.granularity != Granularity::Tensor,
        ValueType::Ggml { ty } => ty.block_size() > 1 && formats::can_quantize(ty),
        _ => false,
    }
}

/// The values quantized independently of the rest of a row under `scheme` (the clip search's
/// unit): an INT group or row, a ggml block.
pub fn clip_unit(scheme: &QuantScheme, shape: TensorShape) -> Result<usize, AwqError> {
    let unit = match (scheme.value, scheme.granularity) {
        (ValueType::Int { .. }, Granularity::Group(n)) => n as usize,
        (ValueType::Int { .. }, Granularity::Channel) => shape.cols,
        (ValueType::Ggml { ty }, _) if supports(scheme) => ty.block_size(),
        _ => return Err(AwqError::UnsupportedScheme { scheme: scheme.name() }),
    };
    if unit == 0 || !shape.cols.is_multiple_of(unit) {
        return Err(QuantError::shape(scheme, format!("row length {} is not a multiple of {unit}", shape.cols)).into());
    }
    Ok(unit)
}

/// One matrix of a group that reads the same input.
#[derive(Debug, Clone, Copy)]
pub struct Linear<'a> {
    pub scheme: &'a QuantScheme,
    /// Row-major `[rows, cols]`, `cols` = the input's width.
    pub weights: &'a [f32],
    pub shape: TensorShape,
}

/// What the calibration saw of one input.
#[derive(Debug, Clone, Copy)]
pub struct Activations<'a> {
    /// Sample rows (`n × cols`) the losses are measured on.
    pub rows: &'a [f32],
    /// `mean |x|` per input column over every calibration position.
    pub abs_mean: &'a [f32],
}

/// The scale search's choice.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleChoice {
    /// The winning ratio is `ratio_index / GRID`.
    pub ratio_index: usize,
    pub scales: Vec<f32>,
    /// The loss of every ratio (mean squared output difference).
    pub losses: Vec<f64>,
}

/// The scales of ratio `i / GRID` (see the module docs).
pub fn scales_for_ratio(abs_mean: &[f32], ratio_index: usize) -> Vec<f32> {
    let r = ratio_index as f64 / GRID as f64;
    let s: Vec<f64> = abs_mean.iter().map(|&x| libm::pow(f64::from(x), r).max(MIN_SCALE)).collect();
    let (lo, hi) = s.iter().fold((f64::INFINITY, 0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let norm = (hi * lo).sqrt();
    s.iter().map(|&v| (v / norm) as f32).collect()
}

/// `W·diag(s)`: column `j` times `s[j]`.
pub fn scale_columns(w: &[f32], s: &[f32]) -> Vec<f32> {
    w.chunks_exact(s.len()).flat_map(|row| row.iter().zip(s).map(|(&x, &k)| x * k)).collect()
}

/// The calibration rows as the scaled weights read them: `x / s`.
pub fn scale_inputs(x: &[f32], s: &[f32]) -> Vec<f32> {
    x.chunks_exact(s.len()).flat_map(|row| row.iter().zip(s).map(|(&v, &k)| v / k)).collect()
}

/// `Q(values)`: quantized in `scheme` and decoded.
pub fn fake_quantize(scheme: &QuantScheme, values: &[f32], shape: TensorShape) -> Result<Vec<f32>, AwqError> {
    Ok(formats::quantize(scheme, values, shape)?.dequantize()?)
}

/// The scale search of the module docs over the matrices of `linears` (all reading the input
/// `acts`).
pub fn search_scales(linears: &[Linear], acts: &Activations) -> Result<ScaleChoice, AwqError> {
    let cols = acts.abs_mean.len();
    for l in linears {
        if l.shape.cols != cols || !acts.rows.len().is_multiple_of(cols.max(1)) {
            return Err(AwqError::Inputs { cols: l.shape.cols, got: cols });
        }
        if !supports(l.scheme) {
            return Err(AwqError::UnsupportedScheme { scheme: l.scheme.name() });
        }
    }
    let n = acts.rows.len() / cols.max(1);
    let outputs: usize = linears.iter().map(|l| l.shape.rows).sum();
    let mut losses = Vec::with_capacity(GRID);
    let mut best: Option<(usize, f64, Vec<f32>)> = None;
    for i in 0..GRID {
        let s = scales_for_ratio(acts.abs_mean, i);
        let mut total = 0f64;
        for l in linears {
            let q = fake_quantize(l.scheme, &scale_columns(l.weights, &s), l.shape)?;
            // W − Q(W·s)/s, row by row.
            let diff: Vec<f32> = l
                .weights
                .chunks_exact(cols)
                .zip(q.chunks_exact(cols))
                .flat_map(|(w, q)| w.iter().zip(q).zip(&s).map(|((&w, &q), &k)| w - q / k))
                .collect();
            total += output_sq_error(acts.rows, diff, cols);
        }
        let loss = total / (n * outputs).max(1) as f64;
        losses.push(loss);
        if loss.is_finite() && best.as_ref().is_none_or(|(_, b, _)| loss < *b) {
            best = Some((i, loss, s));
        }
    }
    let (ratio_index, _, scales) = best.ok_or(AwqError::NoFiniteLoss)?;
    Ok(ScaleChoice { ratio_index, scales, losses })
}

/// The clip search of the module docs for one (already scaled) matrix read by the rows `x`
/// (already divided by the scales): the clip value `max |w|` per row and unit (row-major,
/// `cols / unit` per row).
pub fn search_clip(linear: Linear, x: &[f32]) -> Result<Vec<f32>, AwqError> {
    let cols = linear.shape.cols;
    let unit = clip_unit(linear.scheme, linear.shape)?;
    let units = cols / unit;
    let w = linear.weights;
    let org_max: Vec<f32> = w.chunks_exact(unit).map(|u| u.iter().fold(0f32, |m, &v| m.max(v.abs()))).collect();
    let mut best_max = org_max.clone();
    let mut best_err = vec![f64::INFINITY; linear.shape.rows * units];
    for k in 0..CLIP_STEPS {
        let factor = (1.0 - k as f64 / GRID as f64) as f32;
        let max: Vec<f32> = org_max.iter().map(|&m| m * factor).collect();
        let mut clipped = w.to_vec();
        apply_clip(&mut clipped, unit, &max);
        let q = fake_quantize(linear.scheme, &clipped, linear.shape)?;
        let diff: Vec<f32> = w.iter().zip(&q).map(|(&a, &b)| a - b).collect();
        let err = unit_sq_errors(x, &diff, cols, unit);
        for (g, &e) in err.iter().enumerate() {
            if e < best_err[g] {
                best_err[g] = e;
                best_max[g] = max[g];
            }
        }
    }
    Ok(best_max)
}

/// Clamps each unit of `unit` consecutive weights to `±max` of that unit.
pub fn apply_clip(w: &mut [f32], unit: usize, max: &[f32]) {
    for (u, &m) in w.chunks_exact_mut(unit).zip(max) {
        for v in u {
            *v = v.clamp(-m, m);
        }
    }
}

/// Whether [`quantize`] searches the clip values (the reference skips q and k, whose error
/// the attention's q·k product makes hard to measure per matrix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clip {
    Search,
    Off,
}

/// AWQ of one matrix with its own outputs as the objective.
#[derive(Debug, Clone)]
pub struct AwqOutput {
    pub choice: ScaleChoice,
    /// The clip values ([`search_clip`]), when searched.
    pub clip: Option<Vec<f32>>,
    /// `Q(clip(W·diag(s)))`: the tensor to store (the caller folds `1/s` before it).
    pub tensor: QuantizedTensor,
    /// `tensor` decoded.
    pub values: Vec<f32>,
}

impl AwqOutput {
    /// The weights the layer computes with once `1/s` is folded in: `values / s` per column.
    pub fn effective(&self) -> Vec<f32> {
        scale_inputs(&self.values, &self.choice.scales)
    }
}

/// The scale search, the clip search (when `clip` says) and the quantization of one matrix.
pub fn quantize(linear: Linear, acts: &Activations, clip: Clip) -> Result<AwqOutput, AwqError> {
    let choice = search_scales(&[linear], acts)?;
    let scaled = scale_columns(linear.weights, &choice.scales);
    let x = scale_inputs(acts.rows, &choice.scales);
    let (tensor, clip) = clip_and_quantize(Linear { weights: &scaled, ..linear }, &x, clip)?;
    let values = tensor.dequantize()?;
    Ok(AwqOutput { choice, clip, tensor, values })
}

/// Step 2 and the final quantization of one scaled matrix read by the (scaled) rows `x`.
pub fn clip_and_quantize(
    linear: Linear,
    x: &[f32],
    clip: Clip,
) -> Result<(QuantizedTensor, Option<Vec<f32>>), AwqError> {
    match clip {
        Clip::Off => Ok((formats::quantize(linear.scheme, linear.weights, linear.shape)?, None)),
        Clip::Search => {
            let max = search_clip(linear, x)?;
            let mut w = linear.weights.to_vec();
            apply_clip(&mut w, clip_unit(linear.scheme, linear.shape)?, &max);
            Ok((formats::quantize(linear.scheme, &w, linear.shape)?, Some(max)))
        }
    }
}

/// `Σ_t Σ_r (x_t · d_r)²` over the rows `x` (`n × cols`) and the difference rows `d`.
fn output_sq_error(x: &[f32], d: Vec<f32>, cols: usize) -> f64 {
    per_row_sq_sums(x, d, cols).iter().sum()
}

/// `Σ_t (x_t[u] · d_r[u])²` for every row `r` and unit `u` of `unit` columns (row-major): each
/// unit's columns of `x` and `d` as their own product.
fn unit_sq_errors(x: &[f32], d: &[f32], cols: usize, unit: usize) -> Vec<f64> {
    let units = cols / unit;
    let rows = d.len() / cols;
    let mut out = vec![0f64; rows * units];
    for u in 0..units {
        let part = |m: &[f32]| -> Vec<f32> {
            m.chunks_exact(cols).flat_map(|r| &r[u * unit..(u + 1) * unit]).copied().collect()
        };
        for (r, e) in per_row_sq_sums(&part(x), part(d), unit).into_iter().enumerate() {
            out[r * units + u] = e;
        }
    }
    out
}

/// `Σ_t (x_t · d_r)²` for every row `r` of `d`: the batched product of the forward (the same f32
/// dot products, with 8 partial sums, on AVX2 where the CPU has it, on the default threads),
/// squared and summed over `t` in f64.
fn per_row_sq_sums(x: &[f32], d: Vec<f32>, cols: usize) -> Vec<f64> {
    let rows = d.len() / cols.max(1);
    let n = x.len() / cols.max(1);
    let m = Matrix::from_f32(d, TensorShape::new(rows, cols)).expect("rows × cols values");
    let mut out = vec![0f32; n * rows];
    m.matmul_threads(x, &mut out, crate::model::weights::default_threads());
    let mut sums = vec![0f64; rows];
    for row in out.chunks_exact(rows) {
        for (s, &e) in sums.iter_mut().zip(row) {
            *s += f64::from(e) * f64::from(e);
        }
    }
    sums
}
