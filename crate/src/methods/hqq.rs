//! HQQ: Half-Quadratic Quantization (Badri & Shaji, "Half-Quadratic Quantization of Large
//! Machine Learning Models", Mobius Labs 2023). Calibration-free: each group's zero point is
//! optimised so that the dequantized weights are close to the weights in an `l_p` norm with
//! `p < 1`, which tolerates a few large errors (outliers) to fit the bulk of the group better.
//! This transcribes the reference code, mobiusml/hqq `hqq/core/quantize.py`
//! (`Quantizer.quantize`: the initial scale and zero) and `hqq/core/optimize.py`
//! (`optimize_weights_proximal_legacy`, its default solver), with groups of consecutive values
//! along a row (the reference's `axis=1`):
//!
//! 1. Per group, from its `min` and `max`: `s = qmax / (max − min)` (HQQ's scale is the
//!    *inverse* step: codes per unit weight), `s = 1` where `|max − min| ≤ 1e-4`, then
//!    `s = min(s, 2e4)`; `z = −min·s`.
//! 2. Up to `iters` times (`β` from `beta`):
//!    `W_q = clamp(round(W·s + z), 0, qmax)`, `W_r = (W_q − z) / s`,
//!    `W_e = shrink_p(W − W_r, β)` with `shrink_p(x, β) = sign(x)·max(|x| − |x|^(p−1)/β, 0)`,
//!    `z = mean_group(W_q − (W − W_e)·s)`, `β ← κ·β`; then the error `mean |W − W_r|` over the
//!    whole tensor (the `W_r` of this step, made with the zero from before the update): if it did
//!    not fall below the best so far, stop — keeping the zero just computed, as the reference
//!    does. Only the zero moves; the scale stays the initial one.
//!
//! Defaults are the reference's: `p = 0.7`, `β = 10`, `κ = 1.01`, 20 iterations. The reference
//! multiplied `β` by `κ` each step until a 2025 refactor dropped that line (leaving `kappa`
//! read but unused); this follows the published algorithm, with the update. Rounding is to
//! nearest, ties to even (`torch.round`). The arithmetic is f64 (the reference runs f32 on the
//! CPU, f16 on GPUs), so the result does not depend on summation order at f32 precision and an
//! independent numpy port (`scripts/dev/hqq_reference.py`) reproduces it.
//!
//! # Output formats
//!
//! HQQ's dequantization `(W_q − z)/s = W_q·(1/s) + (−z/s)` is an affine grid, so it lands in
//! existing formats, built by [`super::grids`] (the same packing GPTQ uses):
//!
//! - **Q4_1, Q5_1** (blocks of 32 along a row, `x = q·d + m`): HQQ runs with groups of 32 and
//!   `d = f16(1/s)`, `m = f16(−z/s)`. The float zero maps exactly to the block minimum; the f16
//!   storage moves the grid slightly, so each code is re-derived against the *stored* `d`, `m`
//!   (`q = clamp(rne((w − m)/d))`, the nearest level of the stored grid) rather than taken
//!   from HQQ's `W_q`: for an evenly spaced grid the nearest level is the smallest error for
//!   each weight in any norm, so this is never worse than keeping `W_q`.
//! - **INT asymmetric**, per channel or in groups ([`crate::formats::int`]: `x̂ = scale·(q − zero)`
//!   with an integer zero point in `[0, qmax]`, so 0 is on the grid): the initial range is first
//!   widened to include 0, as the format's own asymmetric rule does (this only changes groups
//!   of one sign); `scale = store(1/s)` (f16 for groups) and the zero point is `z` rounded and
//!   clamped to `[0, qmax]` *inside each iteration* ([`IntZero::EachStep`]; the reference's
//!   `round_zero` rounds only the initial zero, its zeros stay float), so the solver only ever
//!   holds a zero the format can store. The alternative, float `z` throughout and rounded once
//!   at the end ([`IntZero::AtEnd`]), moves the optimum by up to half a code after the fact:
//!   `tests/rust/hqq.rs` measures both on real matrices of the default model, and rounding at
//!   the end gives a larger error than rounding inside, in HQQ's objective and in squared error
//!   alike. The cost of the integer zero is that the solver has almost no room: an update moves
//!   `z` by a fraction of a code, which rounds back, so the error stops falling at the second
//!   step and the result is round to nearest's grid (the errors agree to about 1e-6, relative,
//!   there). HQQ's gain needs the float zero of the `_1` types. Codes are `int::encode` with the
//!   stored scale, the nearest level again.
//!
//! Other formats (symmetric INT has no zero to optimise; k-quants have their own super-block
//! search) are not HQQ's; [`supports`] says which are.

use half::f16;

use super::grids::{BlockParams, Grid, IntGrid, LegacyGrid, LegacyType};
use crate::formats::int;
use crate::formats::{
    GgmlType, Granularity, Mapping, QuantError, QuantScheme, QuantizedTensor, RangeRule, TensorShape, ValueType,
};
use crate::io::export::{ExportError, RoundToNearest, TensorMethod};

/// The solver's settings (the reference's `opt_params`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HqqOptions {
    /// `p` of the `l_p` norm the shrinkage targets.
    pub lp_norm: f64,
    /// The initial penalty `β`.
    pub beta: f64,
    /// `β`'s growth per iteration.
    pub kappa: f64,
    /// The most iterations (fewer when the error stops falling).
    pub iters: usize,
    /// When an INT format's integer zero point is rounded.
    pub int_zero: IntZero,
}

impl Default for HqqOptions {
    fn default() -> Self {
        Self { lp_norm: 0.7, beta: 10.0, kappa: 1.01, iters: 20, int_zero: IntZero::EachStep }
    }
}

/// When the INT formats' integer zero point is rounded (see the module docs for the choice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IntZero {
    /// Initially and after every update ([`ZeroPoint::RoundedEachStep`]).
    #[default]
    EachStep,
    /// Once, after the solver ([`ZeroPoint::RoundedAtEnd`]).
    AtEnd,
}

/// What the zero point may be while the solver runs. The integer kinds also widen the initial
/// range to include 0 (an integer zero point in `[0, qmax]` puts 0 on the grid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroPoint {
    /// Any real number (the reference; the GGUF `_1` types store it as the block minimum).
    Float,
    /// Rounded to an integer in `[0, qmax]` initially and after every update.
    RoundedEachStep,
    /// Real while iterating, rounded to an integer in `[0, qmax]` at the end.
    RoundedAtEnd,
}

/// The optimised parameters of every group (row-major, `cols / group_len` per row).
#[derive(Debug, Clone, PartialEq)]
pub struct Solution {
    /// HQQ's scale `s` per group: codes per unit weight, `W_q = round(W·s + z)`.
    pub scale: Vec<f64>,
    /// The zero `z` per group, in code units.
    pub zero: Vec<f64>,
    /// Iterations run (the last one is the one that stopped, if any did).
    pub steps: usize,
    /// Values per group (consecutive along a row).
    pub group_len: usize,
    /// Code width: codes are `0 ..= 2^bits − 1`.
    pub bits: u8,
}

impl Solution {
    /// The reference's final codes and reconstruction of `weights` (the solver's input):
    /// `W_q = clamp(round(W·s + z), 0, qmax)`, `W_r = (W_q − z) / s`, before any storage
    /// rounding of the parameters.
    pub fn reconstruct(&self, weights: &[f32]) -> (Vec<u8>, Vec<f64>) {
        let qmax = f64::from((1u32 << self.bits) - 1);
        let mut codes = Vec::with_capacity(weights.len());
        let mut values = Vec::with_capacity(weights.len());
        for (i, &w) in weights.iter().enumerate() {
            let (s, z) = (self.scale[i / self.group_len], self.zero[i / self.group_len]);
            let q = (f64::from(w) * s + z).round_ties_even().clamp(0.0, qmax);
            codes.push(q as u8);
            values.push((q - z) / s);
        }
        (codes, values)
    }
}

/// A format HQQ cannot produce, and the ones it can.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HqqError {
    #[error(transparent)]
    Quant(#[from] QuantError),
    #[error("HQQ writes {SUPPORTED}, not {scheme}")]
    UnsupportedScheme { scheme: String },
}

/// The formats [`quantize`] writes, for messages.
pub const SUPPORTED: &str = "q4_1, q5_1 and INT asymmetric min/max per channel or group (e.g. int4-asym-g64)";

/// The result: the tensor in the scheme's own form, its values (`tensor.dequantize()`), and the
/// solver's parameters before they were stored.
#[derive(Debug, Clone)]
pub struct HqqOutput {
    pub tensor: QuantizedTensor,
    pub values: Vec<f32>,
    pub solution: Solution,
}

/// True if [`quantize`] writes `scheme`.
pub fn supports(scheme: &QuantScheme) -> bool {
    match scheme.value {
        ValueType::Ggml { ty } => matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1),
        // HQQ sets the range itself (min/max, then the zero search): a scheme asking for
        // another range rule is not what it would write.
        ValueType::Int { .. } => {
            scheme.mapping == Mapping::Asymmetric
                && scheme.granularity != Granularity::Tensor
                && scheme.range == RangeRule::MinMax
        }
        _ => false,
    }
}

/// HQQ onto `scheme` (see the module docs for the formats). `weights` is row-major `[rows, cols]`.
pub fn quantize(
    scheme: &QuantScheme,
    weights: &[f32],
    shape: TensorShape,
    options: &HqqOptions,
) -> Result<HqqOutput, HqqError> {
    crate::formats::quantized::check_input(scheme, weights, shape)?;
    if !supports(scheme) {
        return Err(HqqError::UnsupportedScheme { scheme: scheme.name() });
    }
    match scheme.value {
        ValueType::Ggml { ty } => {
            let (ty, bits) = if ty == GgmlType::Q4_1 { (LegacyType::Q4_1, 4) } else { (LegacyType::Q5_1, 5) };
            let grid = LegacyGrid::new(ty, shape)?;
            let solution = optimize(weights, grid.group_len(), bits, ZeroPoint::Float, options);
            let params: Vec<BlockParams> = solution
                .scale
                .iter()
                .zip(&solution.zero)
                .map(|(&s, &z)| BlockParams::with_min(half_of(1.0 / s), half_of(-z / s)))
                .collect();
            finish(&grid, shape, weights, params, solution)
        }
        ValueType::Int { bits } => {
            let grid = IntGrid::new(scheme, shape)?;
            let zero_point = match options.int_zero {
                IntZero::EachStep => ZeroPoint::RoundedEachStep,
                IntZero::AtEnd => ZeroPoint::RoundedAtEnd,
            };
            let solution = optimize(weights, grid.group_len(), bits, zero_point, options);
            let f16_scale = matches!(scheme.granularity, Granularity::Group(_));
            let params: Vec<int::Params> = solution
                .scale
                .iter()
                .zip(&solution.zero)
                .map(|(&s, &z)| {
                    let (scale, fit) = int::store_scale((1.0 / s) as f32, f16_scale);
                    int::Params { scale, zero: z as u8, fit }
                })
                .collect();
            finish(&grid, shape, weights, params, solution)
        }
        _ => unreachable!("supports() admits Q4_1, Q5_1 and INT only"),
    }
}

/// Rounds every weight to the nearest level of its group's stored parameters and packs the
/// tensor.
fn finish<G: Grid>(
    grid: &G,
    shape: TensorShape,
    weights: &[f32],
    params: Vec<G::Params>,
    solution: Solution,
) -> Result<HqqOutput, HqqError> {
    let g = grid.group_len();
    let mut codes = vec![0u8; weights.len()];
    let mut values = vec![0f32; weights.len()];
    for (i, &w) in weights.iter().enumerate() {
        (codes[i], values[i]) = grid.round(&params[i / g], w);
    }
    let tensor = grid.assemble(shape, &params, &codes)?;
    Ok(HqqOutput { tensor, values, solution })
}

/// HQQ's solver (steps 1–2 of the module docs) on groups of `group_len` consecutive values of
/// `weights`, for `bits`-bit unsigned codes. `group_len` must divide `weights.len()`.
pub fn optimize(weights: &[f32], group_len: usize, bits: u8, zero_point: ZeroPoint, options: &HqqOptions) -> Solution {
    assert!(group_len > 0 && weights.len().is_multiple_of(group_len), "whole groups");
    let qmax = f64::from((1u32 << bits) - 1);
    let round_zero = |z: f64| match zero_point {
        ZeroPoint::RoundedEachStep => z.round_ties_even().clamp(0.0, qmax),
        ZeroPoint::Float | ZeroPoint::RoundedAtEnd => z,
    };
    let mut scale = Vec::with_capacity(weights.len() / group_len);
    let mut zero = Vec::with_capacity(weights.len() / group_len);
    for group in weights.chunks_exact(group_len) {
        let (mut lo, mut hi) = group.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            let x = f64::from(x);
            (lo.min(x), hi.max(x))
        });
        if zero_point != ZeroPoint::Float {
            // An integer zero point in [0, qmax] is a code, so the grid holds 0: start from a
            // range that does (the INT formats' own asymmetric rule).
            (lo, hi) = (lo.min(0.0), hi.max(0.0));
        }
        let denom = hi - lo;
        let s = if denom.abs() <= 1e-4 { 1.0 } else { qmax / denom }.min(2e4);
        scale.push(s);
        zero.push(round_zero(-lo * s));
    }

    let n = weights.len() as f64;
    let mut beta = options.beta;
    let mut best = f64::INFINITY;
    let mut group_err = vec![0f64; scale.len()];
    let mut steps = 0;
    for _ in 0..options.iters {
        steps += 1;
        let step = Step { qmax, lp_norm: options.lp_norm, beta, group_len };
        step.run(weights, &scale, &mut zero, &mut group_err);
        for z in &mut zero {
            *z = round_zero(*z);
        }
        beta *= options.kappa;
        // Summed in group order, whatever the threads: the stopping decision is reproducible.
        let err = group_err.iter().sum::<f64>() / n;
        if err < best {
            best = err;
        } else {
            break;
        }
    }
    if zero_point == ZeroPoint::RoundedAtEnd {
        for z in &mut zero {
            *z = z.round_ties_even().clamp(0.0, qmax);
        }
    }
    Solution { scale, zero, steps, group_len, bits }
}

/// One iteration of the solver for every group.
struct Step {
    qmax: f64,
    lp_norm: f64,
    beta: f64,
    group_len: usize,
}

impl Step {
    /// Updates every group's zero in place and writes its `Σ |W − W_r|` (with the zero it had).
    fn run(&self, weights: &[f32], scale: &[f64], zero: &mut [f64], err: &mut [f64]) {
        let groups = scale.len();
        let threads = crate::model::weights::default_threads().clamp(1, groups.max(1));
        if threads == 1 {
            return self.groups(weights, scale, zero, err);
        }
        let band = groups.div_ceil(threads);
        // The model's pool, not std::thread: wasm32 cannot spawn threads (its pool's are web
        // workers, when the threaded core runs).
        let parts: Vec<std::sync::Mutex<_>> = weights
            .chunks(band * self.group_len)
            .zip(scale.chunks(band))
            .zip(zero.chunks_mut(band).zip(err.chunks_mut(band)))
            .map(std::sync::Mutex::new)
            .collect();
        crate::model::pool::run(parts.len(), &|i| {
            let mut part = parts[i].lock().unwrap_or_else(|e| e.into_inner());
            let ((w, s), (z, e)) = &mut *part;
            self.groups(w, s, z, e);
        });
    }

    fn groups(&self, weights: &[f32], scale: &[f64], zero: &mut [f64], err: &mut [f64]) {
        for (((group, &s), z), e) in weights.chunks_exact(self.group_len).zip(scale).zip(zero).zip(err) {
            let (mut abs_err, mut zero_sum) = (0.0, 0.0);
            for &w in group {
                let w = f64::from(w);
                let w_q = (w * s + *z).round_ties_even().clamp(0.0, self.qmax);
                let w_r = (w_q - *z) / s;
                let w_e = shrink(w - w_r, self.beta, self.lp_norm);
                zero_sum += w_q - (w - w_e) * s;
                abs_err += (w - w_r).abs();
            }
            *z = zero_sum / self.group_len as f64;
            *e = abs_err;
        }
    }
}

/// `v` stored as f16 through f32, the same bits on every target: `f16::from_f64` takes the F16C
/// instructions natively (through f32) and rounds once in software in wasm32, and the two differ
/// now and then in the last bit, which the lab's exports must not (they equal the CLI's).
fn half_of(v: f64) -> f16 {
    f16::from_f32(v as f32)
}

/// The generalised soft-thresholding of the `l_p` proximal step:
/// `sign(x)·max(|x| − |x|^(p−1)/β, 0)` (0 at `x = 0`, where `|x|^(p−1)` is infinite).
fn shrink(x: f64, beta: f64, p: f64) -> f64 {
    let a = x.abs();
    let out = (a - (1.0 / beta) * libm::pow(a, p - 1.0)).max(0.0);
    if x == 0.0 {
        0.0
    } else {
        out * x.signum()
    }
}

/// `Σ |w − ŵ|^p` and `Σ (w − ŵ)²`: the reconstruction error in HQQ's objective (the `l_p` norm
/// its solver targets, `p` of [`HqqOptions`]) and in plain squared error.
pub fn reconstruction_error(weights: &[f32], values: &[f32], p: f64) -> (f64, f64) {
    weights.iter().zip(values).fold((0.0, 0.0), |(lp, sq), (&w, &v)| {
        let d = f64::from(w) - f64::from(v);
        (lp + libm::pow(d.abs(), p), sq + d * d)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shrink_keeps_the_sign_and_zeroes_small_values() {
        assert_eq!(shrink(0.0, 10.0, 0.7), 0.0);
        // |x|^(p−1)/β ≥ |x| for |x| ≤ β^(−1/p): thresholded to zero.
        assert_eq!(shrink(1e-3, 10.0, 0.7), 0.0);
        assert_eq!(shrink(-1e-3, 10.0, 0.7), 0.0);
        let x: f64 = 2.0;
        let want = x - x.powf(-0.3) / 10.0;
        assert_eq!(shrink(x, 10.0, 0.7), want);
        assert_eq!(shrink(-x, 10.0, 0.7), -want);
    }

    #[test]
    fn rounded_zeros_stay_integers_in_the_code_range() {
        let w: Vec<f32> = (0..128).map(|i| ((i * 37 % 101) as f32 / 50.0 - 0.7).powi(3)).collect();
        for zp in [ZeroPoint::RoundedEachStep, ZeroPoint::RoundedAtEnd] {
            let s = optimize(&w, 64, 4, zp, &HqqOptions::default());
            assert!(s.zero.iter().all(|&z| z == z.round() && (0.0..=15.0).contains(&z)), "{zp:?}: {:?}", s.zero);
        }
    }

    #[test]
    fn a_constant_group_reconstructs_exactly() {
        // 15·2⁻⁶: the INT grid's end level with a scale exact in f16.
        let w = vec![0.234375f32; 64];
        for scheme in ["q4_1", "int4-asym-g32"] {
            let scheme = QuantScheme::parse(scheme).unwrap();
            let out = quantize(&scheme, &w, TensorShape::new(1, 64), &HqqOptions::default()).unwrap();
            assert_eq!(out.values, w, "{}", scheme.name());
            assert_eq!(out.tensor.dequantize().unwrap(), out.values);
        }
    }

    #[test]
    fn unsupported_formats_are_refused_naming_the_supported_ones() {
        for name in ["q4_0", "int4-sym-g64", "q4_k"] {
            let scheme = QuantScheme::parse(name).unwrap();
            let err = quantize(&scheme, &[0.0; 256], TensorShape::new(1, 256), &HqqOptions::default()).unwrap_err();
            assert_eq!(err, HqqError::UnsupportedScheme { scheme: scheme.name() });
            assert!(err.to_string().contains(SUPPORTED));
        }
    }
}

/// HQQ for the tensors in formats it writes, round to nearest for the rest (a preset's wider
/// tensors): the tensor method `quantlab quantize --method hqq`, `quantlab eval --method hqq`,
/// recipe entries and the lab share.
#[derive(Debug, Default)]
pub struct HqqMethod {
    pub options: HqqOptions,
    /// Tensors HQQ quantized, and those it left to round to nearest.
    pub hqq_tensors: usize,
    pub rtn_tensors: usize,
}

impl HqqMethod {
    /// The line saying what was done.
    pub fn note(&self) -> String {
        format!("HQQ quantized {} tensors; {} rounded to nearest", self.hqq_tensors, self.rtn_tensors)
    }
}

impl TensorMethod for HqqMethod {
    fn quantize(
        &mut self,
        name: &str,
        scheme: &QuantScheme,
        values: &[f32],
        shape: TensorShape,
    ) -> Result<QuantizedTensor, ExportError> {
        if !supports(scheme) {
            self.rtn_tensors += 1;
            return RoundToNearest.quantize(name, scheme, values, shape);
        }
        let out = quantize(scheme, values, shape, &self.options)
            .map_err(|e| ExportError::Tensor(format!("tensor '{name}': HQQ: {e}")))?;
        self.hqq_tensors += 1;
        Ok(out.tensor)
    }
}
