//! Weight statistics: per-channel magnitudes, outlier channels, kurtosis, level occupancy.
//!
//! Conventions, for a row-major `[rows, cols]` matrix (`cols` = row length = input dimension):
//!
//! - **Output channel** = row, **input channel** = column. For each: absmax `max |x|` and RMS
//!   `√(Σx²/n)` (f64 sums).
//! - **Outlier channels**: channel `c` is an outlier when `absmax_c > k · median(absmax)`, with
//!   `k` a parameter ([`DEFAULT_OUTLIER_K`] = 6, in the spirit of LLM.int8()'s magnitude-6
//!   threshold, applied relative to the typical channel instead of to activations). The
//!   median of an even count is the mean of the two middle values. If the median is 0, every
//!   channel with a non-zero absmax is an outlier.
//! - **Excess kurtosis**: `m4 / m2² − 3` with population (biased) central moments
//!   `m_k = Σ(x − μ)^k / n` (Fisher's definition, `scipy.stats.kurtosis(x)` defaults):
//!   0 for a Gaussian, 3 for a Laplacian, large for heavy-tailed weights. `None` for a
//!   constant or empty tensor.
//! - **Level occupancy**: how many weights hold each code of a quantized tensor (index =
//!   code as returned by [`QuantizedTensor::codes`]).

use serde::Serialize;

use crate::formats::{QuantizedTensor, TensorShape, ValueType};

/// The default outlier threshold factor `k`.
pub const DEFAULT_OUTLIER_K: f64 = 6.0;

/// Statistics of one weight matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
// Field names are camelCase across the wasm boundary (snake_case in the CLI's JSON).
#[cfg_attr(target_arch = "wasm32", serde(rename_all = "camelCase"))]
pub struct WeightStats {
    pub rows: usize,
    pub cols: usize,
    pub absmax: f32,
    pub rms: f64,
    pub mean: f64,
    pub std: f64,
    pub excess_kurtosis: Option<f64>,
    /// Per output channel (row).
    pub row_absmax: Vec<f32>,
    pub row_rms: Vec<f64>,
    /// Per input channel (column).
    pub col_absmax: Vec<f32>,
    pub col_rms: Vec<f64>,
    /// The `k` the outlier lists were computed with.
    pub outlier_k: f64,
    /// Rows / columns whose absmax exceeds `k` × the median channel absmax.
    pub outlier_rows: Vec<usize>,
    pub outlier_cols: Vec<usize>,
}

/// Computes [`WeightStats`] of a row-major `[rows, cols]` tensor (`values.len()` must equal
/// `shape.len()`; non-finite values propagate into the sums).
pub fn weight_stats(values: &[f32], shape: TensorShape, outlier_k: f64) -> WeightStats {
    assert_eq!(values.len(), shape.len(), "weight_stats: values do not fill the shape");
    let (rows, cols) = (shape.rows, shape.cols);
    let mut row_absmax = vec![0f32; rows];
    let mut row_sq = vec![0f64; rows];
    let mut col_absmax = vec![0f32; cols];
    let mut col_sq = vec![0f64; cols];
    let mut sum = 0f64;
    for (r, row) in values.chunks_exact(cols.max(1)).enumerate().take(rows) {
        for (c, &x) in row.iter().enumerate() {
            let a = x.abs();
            let sq = f64::from(x) * f64::from(x);
            row_absmax[r] = row_absmax[r].max(a);
            col_absmax[c] = col_absmax[c].max(a);
            row_sq[r] += sq;
            col_sq[c] += sq;
            sum += f64::from(x);
        }
    }
    let n = values.len();
    let mean = if n == 0 { 0.0 } else { sum / n as f64 };
    let (m2, m4) = central_moments(values, mean);
    let total_sq: f64 = row_sq.iter().sum();
    WeightStats {
        rows,
        cols,
        absmax: row_absmax.iter().fold(0f32, |m, &v| m.max(v)),
        rms: if n == 0 { 0.0 } else { (total_sq / n as f64).sqrt() },
        mean,
        std: m2.sqrt(),
        excess_kurtosis: (n > 0 && m2 > 0.0).then(|| m4 / (m2 * m2) - 3.0),
        row_rms: row_sq.iter().map(|s| (s / cols.max(1) as f64).sqrt()).collect(),
        col_rms: col_sq.iter().map(|s| (s / rows.max(1) as f64).sqrt()).collect(),
        outlier_rows: outlier_channels(&row_absmax, outlier_k),
        outlier_cols: outlier_channels(&col_absmax, outlier_k),
        row_absmax,
        col_absmax,
        outlier_k,
    }
}

/// Population central moments m2, m4 around `mean` (f64, element order).
fn central_moments(values: &[f32], mean: f64) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let (mut m2, mut m4) = (0f64, 0f64);
    for &x in values {
        let d = f64::from(x) - mean;
        let d2 = d * d;
        m2 += d2;
        m4 += d2 * d2;
    }
    let n = values.len() as f64;
    (m2 / n, m4 / n)
}

/// Excess kurtosis (see the module docs); `None` for empty or constant input.
pub fn excess_kurtosis(values: &[f32]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mean = values.iter().map(|&x| f64::from(x)).sum::<f64>() / values.len() as f64;
    let (m2, m4) = central_moments(values, mean);
    (m2 > 0.0).then(|| m4 / (m2 * m2) - 3.0)
}

/// The median (mean of the two middle values for an even count; 0 for an empty slice).
pub fn median(values: &[f32]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v: Vec<f32> = values.to_vec();
    v.sort_by(f32::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        f64::from(v[n / 2])
    } else {
        (f64::from(v[n / 2 - 1]) + f64::from(v[n / 2])) / 2.0
    }
}

/// Indices of channels whose absmax exceeds `k` × the median channel absmax.
pub fn outlier_channels(channel_absmax: &[f32], k: f64) -> Vec<usize> {
    let threshold = k * median(channel_absmax);
    channel_absmax.iter().enumerate().filter(|(_, &a)| f64::from(a) > threshold).map(|(i, _)| i).collect()
}

/// How many distinct codes a quantized tensor's codes range over (the occupancy vector's
/// length): `2^bits` for integers, 256 for FP8, the type's code range for ggml; 0 when the
/// family does not report codes.
pub fn code_count(q: &QuantizedTensor) -> usize {
    match q {
        QuantizedTensor::Int(t) => 1 << t.bits,
        QuantizedTensor::Fp8(_) => 256,
        QuantizedTensor::Ggml(t) => crate::formats::ggml::levels::n_codes(t.ty).unwrap_or(0),
        QuantizedTensor::Bnb4(_) => match q.scheme().value {
            ValueType::Nf4 | ValueType::Fp4 if !q.codes().is_empty() => 16,
            _ => 0,
        },
    }
}

/// Level occupancy: `counts[c]` = number of weights stored with code `c`.
pub fn level_occupancy(q: &QuantizedTensor) -> Vec<u64> {
    let codes = q.codes();
    let mut counts = vec![0u64; code_count(q).max(codes.iter().map(|&c| c as usize + 1).max().unwrap_or(0))];
    for c in codes {
        counts[c as usize] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_and_outliers() {
        // 3 rows × 4 cols; column 2 has a big value.
        let x = [1.0, -1.0, 1.0, 1.0, 1.0, 1.0, -20.0, 1.0, 1.0, 1.0, 1.0, -1.0];
        let s = weight_stats(&x, TensorShape::new(3, 4), DEFAULT_OUTLIER_K);
        assert_eq!(s.col_absmax, vec![1.0, 1.0, 20.0, 1.0]);
        assert_eq!(s.row_absmax, vec![1.0, 20.0, 1.0]);
        assert_eq!(s.outlier_cols, vec![2]);
        assert_eq!(s.outlier_rows, vec![1]);
        assert_eq!(s.absmax, 20.0);
        assert!((s.row_rms[0] - 1.0).abs() < 1e-12);
        assert!((s.col_rms[2] - ((400.0 + 2.0) / 3.0f64).sqrt()).abs() < 1e-12);
        assert!(weight_stats(&x, TensorShape::new(3, 4), 25.0).outlier_cols.is_empty());
    }

    #[test]
    fn kurtosis_known_values() {
        // Two-point ±1: m4/m2² = 1 → excess −2.
        assert_eq!(excess_kurtosis(&[1.0, -1.0, 1.0, -1.0]), Some(-2.0));
        assert_eq!(excess_kurtosis(&[3.0; 5]), None);
        // [0,0,0,0,10]: mean 2, m2 = (4·4 + 64)/5 = 16, m4 = (4·16 + 4096)/5 = 832 → 832/256 − 3.
        let k = excess_kurtosis(&[0.0, 0.0, 0.0, 0.0, 10.0]).unwrap();
        assert!((k - (832.0 / 256.0 - 3.0)).abs() < 1e-12);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}
