//! Histograms of tensor values, decoded block by block so a large tensor never needs a full
//! f32 copy in memory (the 49152×576 embedding would be 113 MB).

use serde::Serialize;

use crate::formats::{dequantize_row, FormatError, GgmlType};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HistogramError {
    #[error("a histogram needs at least 1 bin and at most {max}, got {got}")]
    BadBins { got: usize, max: usize },
    #[error("histogram range must be finite with min < max, got [{lo}, {hi}]")]
    BadRange { lo: f64, hi: f64 },
    #[error("row length {row_len} does not divide the tensor's {n_values} values")]
    BadRowLength { row_len: usize, n_values: usize },
    #[error(transparent)]
    Format(#[from] FormatError),
}

/// Counts of values in `bins` equal-width bins over `[lo, hi]`; the last bin includes `hi`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
// Field names are camelCase across the wasm boundary (snake_case in the CLI's JSON).
#[cfg_attr(target_arch = "wasm32", serde(rename_all = "camelCase"))]
pub struct Histogram {
    pub lo: f64,
    pub hi: f64,
    pub counts: Vec<u64>,
    /// Finite values counted (the sum of `counts` plus `outside`).
    pub total: u64,
    /// Finite values outside `[lo, hi]` (only when the caller fixed the range).
    pub outside: u64,
    /// NaN or ±Inf values, never binned, reported so they cannot hide.
    pub non_finite: u64,
    /// The smallest and largest finite value seen (None if there were none).
    pub min: Option<f64>,
    pub max: Option<f64>,
}

pub const MAX_BINS: usize = 1 << 16;

impl Histogram {
    /// Bin edges: `bins + 1` values from `lo` to `hi`.
    pub fn edges(&self) -> Vec<f64> {
        let n = self.counts.len();
        (0..=n).map(|i| self.lo + (self.hi - self.lo) * i as f64 / n as f64).collect()
    }
}

/// Decodes a tensor of `ty` in row-sized chunks and hands each chunk to `visit`.
fn for_each_chunk(
    ty: GgmlType,
    data: &[u8],
    n_values: usize,
    row_len: usize,
    mut visit: impl FnMut(&[f32]),
) -> Result<(), HistogramError> {
    if row_len == 0 || !n_values.is_multiple_of(row_len) {
        return Err(HistogramError::BadRowLength { row_len, n_values });
    }
    let (block, bytes_per_block) = ty.block_layout();
    if !row_len.is_multiple_of(block) {
        return Err(FormatError::NotWholeBlocks { ty, n_values: row_len, block }.into());
    }
    let row_bytes = row_len / block * bytes_per_block;
    let expected = n_values / row_len * row_bytes;
    if data.len() != expected {
        return Err(FormatError::WrongByteCount { ty, n_values, expected, got: data.len() }.into());
    }
    let mut row = vec![0f32; row_len];
    for chunk in data.chunks_exact(row_bytes) {
        dequantize_row(ty, chunk, &mut row)?;
        visit(&row);
    }
    Ok(())
}

/// Histogram of a stored tensor's values (dequantized from `ty`). With `range = None` the range
/// is the finite min..max of the data (two decoding passes); a constant tensor gets a unit-wide
/// range centred on its value.
pub fn tensor_histogram(
    ty: GgmlType,
    data: &[u8],
    n_values: usize,
    row_len: usize,
    bins: usize,
    range: Option<(f64, f64)>,
) -> Result<Histogram, HistogramError> {
    if bins == 0 || bins > MAX_BINS {
        return Err(HistogramError::BadBins { got: bins, max: MAX_BINS });
    }
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut non_finite = 0u64;
    for_each_chunk(ty, data, n_values, row_len, |values| {
        for &v in values {
            if v.is_finite() {
                min = min.min(f64::from(v));
                max = max.max(f64::from(v));
            } else {
                non_finite += 1;
            }
        }
    })?;
    let seen = min <= max;
    let (lo, hi) = match range {
        Some((lo, hi)) if lo.is_finite() && hi.is_finite() && lo < hi => (lo, hi),
        Some((lo, hi)) => return Err(HistogramError::BadRange { lo, hi }),
        None if !seen => (0.0, 1.0),
        None if min == max => (min - 0.5, max + 0.5),
        None => (min, max),
    };
    let mut counts = vec![0u64; bins];
    let (mut total, mut outside) = (0u64, 0u64);
    let scale = bins as f64 / (hi - lo);
    for_each_chunk(ty, data, n_values, row_len, |values| {
        for &v in values {
            if !v.is_finite() {
                continue;
            }
            total += 1;
            let v = f64::from(v);
            if v < lo || v > hi {
                outside += 1;
                continue;
            }
            // Float rounding can put v == hi one past the end: it belongs to the last bin.
            let index = (((v - lo) * scale) as usize).min(bins - 1);
            counts[index] += 1;
        }
    })?;
    Ok(Histogram { lo, hi, counts, total, outside, non_finite, min: seen.then_some(min), max: seen.then_some(max) })
}

/// Histogram of values already in memory (e.g. a dequantized tensor), with the same binning,
/// range and counting rules as [`tensor_histogram`] (which does the work: the slice is read as
/// an F32 tensor, in chunks of at most 4096 values).
pub fn values_histogram(values: &[f32], bins: usize, range: Option<(f64, f64)>) -> Result<Histogram, HistogramError> {
    let n = values.len();
    // A chunk length that divides n (1 always does), as large as possible up to 4096.
    let row_len = (1..=n.clamp(1, 4096)).rev().find(|d| n.is_multiple_of(*d)).unwrap_or(1);
    tensor_histogram(GgmlType::F32, bytemuck::cast_slice(values), n, row_len, bins, range)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_bytes(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn counts_every_value_once_with_max_in_last_bin() {
        let values = [0.0f32, 0.25, 0.5, 0.75, 1.0, 1.0];
        let h = tensor_histogram(GgmlType::F32, &f32_bytes(&values), 6, 3, 4, None).unwrap();
        assert_eq!((h.lo, h.hi), (0.0, 1.0));
        assert_eq!(h.counts, vec![1, 1, 1, 3]);
        assert_eq!(h.total, 6);
        assert_eq!(h.edges(), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    }

    #[test]
    fn non_finite_values_are_reported_not_binned() {
        let values = [1.0f32, f32::NAN, f32::INFINITY, 2.0];
        let h = tensor_histogram(GgmlType::F32, &f32_bytes(&values), 4, 4, 2, None).unwrap();
        assert_eq!(h.non_finite, 2);
        assert_eq!(h.total, 2);
        assert_eq!(h.counts.iter().sum::<u64>(), 2);
    }

    #[test]
    fn fixed_range_counts_values_outside() {
        let values = [-3.0f32, 0.1, 0.2, 9.0];
        let h = tensor_histogram(GgmlType::F32, &f32_bytes(&values), 4, 2, 2, Some((0.0, 1.0))).unwrap();
        assert_eq!(h.outside, 2);
        assert_eq!(h.counts, vec![2, 0]);
        assert_eq!((h.min, h.max), (Some(-3.0), Some(9.0)));
    }

    #[test]
    fn constant_tensor_gets_a_unit_range() {
        let h = tensor_histogram(GgmlType::F32, &f32_bytes(&[2.0; 8]), 8, 8, 3, None).unwrap();
        assert_eq!((h.lo, h.hi), (1.5, 2.5));
        assert_eq!(h.counts, vec![0, 8, 0]);
    }

    #[test]
    fn values_histogram_matches_tensor_histogram() {
        let values: Vec<f32> = (0..5000).map(|i| ((i * 37) % 101) as f32 - 50.0).collect();
        let a = values_histogram(&values, 17, None).unwrap();
        let b = tensor_histogram(GgmlType::F32, &f32_bytes(&values), 5000, 5000, 17, None).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.total, 5000);
        let empty = values_histogram(&[], 4, None).unwrap();
        assert_eq!((empty.total, empty.counts.len()), (0, 4));
        assert_eq!(values_histogram(&[1.0, 2.0, 7.0], 2, Some((0.0, 4.0))).unwrap().outside, 1);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let data = f32_bytes(&[1.0; 8]);
        assert!(matches!(tensor_histogram(GgmlType::F32, &data, 8, 8, 0, None), Err(HistogramError::BadBins { .. })));
        assert!(matches!(
            tensor_histogram(GgmlType::F32, &data, 8, 3, 4, None),
            Err(HistogramError::BadRowLength { .. })
        ));
        assert!(matches!(tensor_histogram(GgmlType::F32, &data[..28], 8, 8, 4, None), Err(HistogramError::Format(_))));
        assert!(matches!(
            tensor_histogram(GgmlType::F32, &data, 8, 8, 4, Some((1.0, 1.0))),
            Err(HistogramError::BadRange { .. })
        ));
    }
}
