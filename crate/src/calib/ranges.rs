//! Static activation ranges: the threshold `T` (largest |x| the grid covers; the scale is
//! `T / L`, see [`crate::model::act_quant`]) of every linear input, estimated from calibration
//! text by one of four rules ([`RangeRule`]).
//!
//! Two passes over the calibration chunks ([`super::collect`]): the first keeps each input's
//! per-channel max |x| ([`ChannelAbsMax`]: the min-max range, and SmoothQuant's activation
//! scales); the second a histogram of |x| with [`HIST_BINS`] = 2048 equal bins over
//! `[0, max|x|]` ([`AbsHistogram`]: value `v` falls in bin `min(⌊|v| · 2048 / max⌋, 2047)`,
//! computed in f64), the data of the other rules, as in NVIDIA's TensorRT / pytorch-quantization
//! histogram calibrators. Bin `j` spans `[j·w, (j+1)·w)`, `w = max / 2048`.
//!
//! - **min-max**: `T = max |x|`.
//! - **percentile `p`**: the smallest `k` with `Σ_{j≤k} count_j ≥ p/100 · total`; `T = (k+1)·w`
//!   (the bin's upper edge, so at least `p` % of the values lie within `T`).
//! - **MSE** (pytorch-quantization's `_compute_amax_mse`): each bin is represented by its center
//!   `c_j = f32((j + ½)·w)`; for every candidate `T = c_i`, `i = 128 .. 2047`, the error
//!   `Σ_j count_j · (q(c_j) − c_j)²` (in f64) of the activation format's own rounding `q` at
//!   `s = T / L` (f32, [`ActType::round`]); the smallest error wins (the first on ties).
//! - **KL** (TensorRT's entropy calibration, Migacz 2017, with MXNet's smoothing
//!   `_get_optimal_threshold` / `_smooth_distribution` applied to a histogram of |x|): for every
//!   `i = 128 ..= 2048` bins kept, the reference `P = count_0..i` with the counts beyond added to
//!   `P_{i−1}`; the candidate `Q`: bins `0..i` merged into `M` levels (`M = 128` for INT8, 8 for
//!   INT4: the magnitudes of a signed grid) of `⌊i / M⌋` bins each, the last level taking the
//!   rest, each level's count spread evenly over its bins where `P ≠ 0` (zero where `P = 0`).
//!   Both are smoothed (`ε = 10⁻⁴` added to every zero entry, `ε·zeros/nonzeros` taken from
//!   every other; a candidate whose `Q` is all zero or turns non-positive is skipped),
//!   normalised, and `KL(P‖Q) = Σ P ln(P/Q)` computed in f64; the smallest KL wins (the first on
//!   ties), `T = i·w`. KL is defined for the integer grids only (FP8's levels are not uniform).
//!
//! `scripts/dev/make_act_quant_goldens.py` is the numpy port of all four rules and of the
//! histogram; tests/rust/act_quant.rs matches it on fixed data.

use std::collections::BTreeMap;

use super::{collect, CalibError, CalibHooks, CalibRun, ChunkPlan};
use crate::model::act_quant::{ActRanges, ActType};
use crate::model::{ActivationObserver, LinearInput, Model};

/// Bins of the |x| histogram.
pub const HIST_BINS: usize = 2048;
/// The smallest candidate of the MSE and KL searches, in bins.
pub const START_BIN: usize = 128;
/// The default percentile of [`RangeRule::Percentile`].
pub const DEFAULT_PERCENTILE: f64 = 99.99;
/// KL's smoothing constant.
const KL_EPS: f64 = 1e-4;

/// How a static range is estimated (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RangeRule {
    MinMax,
    /// The percentile of |x| to keep, in (0, 100].
    Percentile(f64),
    Mse,
    Kl,
}

/// A range rule name that is not one, or a rule the format cannot use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RangeRuleError {
    #[error("unknown range rule '{name}' (expected minmax, percentile, pNN.NN such as p99.9, mse or kl)")]
    Unknown { name: String },
    #[error("percentile {value} is outside (0, 100]")]
    BadPercentile { value: f64 },
    #[error("the KL range rule is defined for integer activation formats; {ty} has non-uniform levels")]
    KlNeedsIntegers { ty: &'static str },
}

impl RangeRule {
    /// `minmax`, `percentile` (99.99), `pNN.NN`, `mse` or `kl` (case-insensitive).
    pub fn parse(s: &str) -> Result<RangeRule, RangeRuleError> {
        let lower = s.to_ascii_lowercase();
        let rule = match lower.as_str() {
            "minmax" | "min-max" => RangeRule::MinMax,
            "percentile" => RangeRule::Percentile(DEFAULT_PERCENTILE),
            "mse" => RangeRule::Mse,
            "kl" | "entropy" => RangeRule::Kl,
            p => match p.strip_prefix('p').and_then(|v| v.parse::<f64>().ok()) {
                Some(value) if value > 0.0 && value <= 100.0 => RangeRule::Percentile(value),
                Some(value) => return Err(RangeRuleError::BadPercentile { value }),
                None => return Err(RangeRuleError::Unknown { name: s.to_string() }),
            },
        };
        Ok(rule)
    }

    pub fn name(self) -> String {
        match self {
            RangeRule::MinMax => "minmax".into(),
            RangeRule::Percentile(p) => format!("p{p}"),
            RangeRule::Mse => "mse".into(),
            RangeRule::Kl => "kl".into(),
        }
    }

    /// Errors unless the rule applies to activations of type `ty`.
    pub fn check(self, ty: ActType) -> Result<(), RangeRuleError> {
        match (self, ty) {
            (RangeRule::Kl, ActType::Fp8E4M3) => Err(RangeRuleError::KlNeedsIntegers { ty: ty.name() }),
            _ => Ok(()),
        }
    }
}

/// Per-channel max |x| of every linear input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChannelAbsMax {
    pub inputs: BTreeMap<LinearInput, Vec<f32>>,
}

impl ChannelAbsMax {
    /// The max |x| over all channels of `input` (0 when unseen).
    pub fn tensor_max(&self, input: LinearInput) -> f32 {
        self.inputs.get(&input).map_or(0.0, |c| c.iter().fold(0f32, |m, &v| m.max(v)))
    }
}

impl ActivationObserver for ChannelAbsMax {
    fn observe(&mut self, input: LinearInput, rows: &[f32], width: usize) {
        let m = self.inputs.entry(input).or_insert_with(|| vec![0.0; width]);
        assert_eq!(m.len(), width, "{input:?}: rows of {width} values after rows of {}", m.len());
        for row in rows.chunks_exact(width) {
            for (m, &x) in m.iter_mut().zip(row) {
                *m = m.max(x.abs());
            }
        }
    }
}

/// Histograms of |x| over `[0, max]` per linear input, `max` known from a first pass.
#[derive(Debug, Clone, PartialEq)]
pub struct AbsHistogram {
    pub max: BTreeMap<LinearInput, f32>,
    pub counts: BTreeMap<LinearInput, Vec<u64>>,
}

impl AbsHistogram {
    /// Empty histograms for the inputs of `max` (the ranges of the first pass).
    pub fn new(max: BTreeMap<LinearInput, f32>) -> AbsHistogram {
        let counts = max.keys().map(|&k| (k, vec![0u64; HIST_BINS])).collect();
        AbsHistogram { max, counts }
    }
}

/// The bin of |v| in a histogram over `[0, max]` (bin 0 when `max` is 0).
#[inline]
pub fn bin_of(v: f32, max: f32) -> usize {
    if max <= 0.0 {
        return 0;
    }
    let b = (f64::from(v.abs()) * (HIST_BINS as f64 / f64::from(max))).floor();
    (b as usize).min(HIST_BINS - 1)
}

impl ActivationObserver for AbsHistogram {
    fn observe(&mut self, input: LinearInput, rows: &[f32], _width: usize) {
        let (Some(&max), Some(counts)) = (self.max.get(&input), self.counts.get_mut(&input)) else { return };
        for &v in rows {
            counts[bin_of(v, max)] += 1;
        }
    }
}

/// `T` of the percentile rule.
pub fn percentile_threshold(counts: &[u64], max: f32, p: f64) -> f32 {
    let total: u64 = counts.iter().sum();
    let w = f64::from(max) / counts.len() as f64;
    let target = p / 100.0 * total as f64;
    let mut cum = 0u64;
    for (k, &c) in counts.iter().enumerate() {
        cum += c;
        if cum as f64 >= target {
            return ((k + 1) as f64 * w) as f32;
        }
    }
    max
}

/// The MSE rule's error for every candidate `T = c_i`, `i = 128 ..` (see the module docs).
pub fn mse_curve(counts: &[u64], max: f32, ty: ActType) -> Vec<f64> {
    let w = f64::from(max) / counts.len() as f64;
    let centers: Vec<f32> = (0..counts.len()).map(|j| ((j as f64 + 0.5) * w) as f32).collect();
    let used: Vec<(f32, f64)> =
        counts.iter().zip(&centers).filter(|(&c, _)| c > 0).map(|(&c, &v)| (v, c as f64)).collect();
    centers[START_BIN.min(centers.len())..]
        .iter()
        .map(|&t| {
            let s = t / ty.levels();
            let inv = 1.0 / s;
            used.iter().fold(0f64, |acc, &(v, n)| {
                let d = f64::from(ty.round(v, s, inv)) - f64::from(v);
                acc + n * d * d
            })
        })
        .collect()
}

/// The index of the smallest value (the first on ties; NaN never wins).
fn argmin(curve: &[f64]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, &v) in curve.iter().enumerate() {
        if best.is_none_or(|b| v < curve[b]) && !v.is_nan() {
            best = Some(i);
        }
    }
    best
}

/// `T` of the MSE rule for activations of type `ty`.
pub fn mse_threshold(counts: &[u64], max: f32, ty: ActType) -> f32 {
    let w = f64::from(max) / counts.len() as f64;
    match argmin(&mse_curve(counts, max, ty)) {
        Some(i) => (((START_BIN + i) as f64 + 0.5) * w) as f32,
        None => max,
    }
}

/// The magnitude levels of KL's candidate distribution for `ty` (`2^(bits−1)`).
pub fn kl_levels(ty: ActType) -> usize {
    match ty {
        ActType::Int8 => 128,
        ActType::Int4 => 8,
        ActType::Fp8E4M3 => 128,
    }
}

/// MXNet's `_smooth_distribution` in f64; `None` when every entry is zero or one turns
/// non-positive.
fn smooth(d: &mut [f64]) -> Option<()> {
    let zeros = d.iter().filter(|&&v| v == 0.0).count();
    let nonzeros = d.len() - zeros;
    if nonzeros == 0 {
        return None;
    }
    let eps1 = KL_EPS * zeros as f64 / nonzeros as f64;
    for v in d.iter_mut() {
        *v = if *v == 0.0 { KL_EPS } else { *v - eps1 };
    }
    d.iter().all(|&v| v > 0.0).then_some(())
}

/// KL's divergence for every candidate of `i = max(128, levels) ..= bins` bins kept (infinite
/// where the candidate is skipped; see the module docs).
pub fn kl_curve(counts: &[u64], levels: usize) -> Vec<f64> {
    let n = counts.len();
    let hist: Vec<f64> = counts.iter().map(|&c| c as f64).collect();
    let seq_sum = |xs: &[f64]| xs.iter().fold(0f64, |a, &b| a + b);
    let (mut p, mut q) = (Vec::with_capacity(n), Vec::with_capacity(n));
    (START_BIN.max(levels)..=n)
        .map(|i| {
            p.clear();
            p.extend_from_slice(&hist[..i]);
            p[i - 1] += seq_sum(&hist[i..]);
            let merged = i / levels;
            q.clear();
            q.resize(i, 0.0);
            for j in 0..levels {
                let start = j * merged;
                let stop = if j == levels - 1 { i } else { start + merged };
                let total = seq_sum(&hist[start..stop]);
                let nonzero = p[start..stop].iter().filter(|&&v| v != 0.0).count();
                for k in (start..stop).filter(|&k| p[k] != 0.0) {
                    q[k] = total / nonzero as f64;
                }
            }
            if smooth(&mut p).is_none() || smooth(&mut q).is_none() {
                return f64::INFINITY;
            }
            let (sp, sq) = (seq_sum(&p), seq_sum(&q));
            p.iter().zip(&q).fold(0f64, |acc, (&a, &b)| {
                let (pn, qn) = (a / sp, b / sq);
                acc + pn * (pn / qn).ln()
            })
        })
        .collect()
}

/// `T` of the KL rule with `levels` magnitude levels (see the module docs).
pub fn kl_threshold(counts: &[u64], max: f32, levels: usize) -> f32 {
    let w = f64::from(max) / counts.len() as f64;
    let curve = kl_curve(counts, levels);
    match argmin(&curve).filter(|&i| curve[i].is_finite()) {
        Some(i) => ((START_BIN.max(levels) + i) as f64 * w) as f32,
        None => max,
    }
}

/// The threshold `rule` gives an input from its histogram over `[0, max]`.
pub fn threshold(rule: RangeRule, counts: &[u64], max: f32, ty: ActType) -> f32 {
    match rule {
        RangeRule::MinMax => max,
        RangeRule::Percentile(p) => percentile_threshold(counts, max, p),
        RangeRule::Mse => mse_threshold(counts, max, ty),
        RangeRule::Kl => kl_threshold(counts, max, kl_levels(ty)),
    }
}

/// Calibrates the static range of every linear input of `model` over the chunks of `tokens`
/// that `plan` selects (one pass for min-max, two for the histogram rules; `hooks` sees both).
/// An input that was all zero gets the range 0, which [`crate::model::ActQuantizer::new`]
/// refuses.
pub fn calibrate_ranges(
    model: &Model,
    tokens: &[u32],
    plan: &ChunkPlan,
    rule: RangeRule,
    ty: ActType,
    hooks: CalibHooks<'_>,
) -> Result<(ActRanges, CalibRun), CalibError> {
    rule.check(ty)?;
    let mut progress = hooks.progress;
    let mut relay = |done: usize, total: usize| progress.as_mut().is_none_or(|p| p(done, total));
    let mut absmax = ChannelAbsMax::default();
    let run = collect(model, tokens, plan, &mut absmax, CalibHooks { progress: Some(&mut relay) })?;
    let max: BTreeMap<LinearInput, f32> = absmax.inputs.keys().map(|&k| (k, absmax.tensor_max(k))).collect();
    if rule == RangeRule::MinMax {
        return Ok((ActRanges { thresholds: max }, run));
    }
    let mut hist = AbsHistogram::new(max);
    collect(model, tokens, plan, &mut hist, CalibHooks { progress: Some(&mut relay) })?;
    let thresholds = hist.counts.iter().map(|(&k, counts)| (k, threshold(rule, counts, hist.max[&k], ty))).collect();
    Ok((ActRanges { thresholds }, run))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse() {
        assert_eq!(RangeRule::parse("KL"), Ok(RangeRule::Kl));
        assert_eq!(RangeRule::parse("percentile"), Ok(RangeRule::Percentile(99.99)));
        assert_eq!(RangeRule::parse("p99.9"), Ok(RangeRule::Percentile(99.9)));
        assert_eq!(RangeRule::parse("p0"), Err(RangeRuleError::BadPercentile { value: 0.0 }));
        assert!(matches!(RangeRule::parse("max"), Err(RangeRuleError::Unknown { .. })));
        assert!(RangeRule::Kl.check(ActType::Fp8E4M3).is_err());
    }

    #[test]
    fn percentile_by_hand() {
        // 4 bins over [0, 4]: counts 5, 3, 1, 1; 80 % is reached in bin 1 → T = 2.
        assert_eq!(percentile_threshold(&[5, 3, 1, 1], 4.0, 80.0), 2.0);
        assert_eq!(percentile_threshold(&[5, 3, 1, 1], 4.0, 100.0), 4.0);
    }
}
