//! Error metrics between a tensor and its reconstruction, per tensor, per row or per group.
//!
//! All sums run in f64 in element order. With `e = x − x̂`:
//!
//! - `mse = Σe² / n`, `rmse = √mse`, `max_abs_error = max |e|`.
//! - `sqnr_db = 10·log10(Σx² / Σe²)`. Exact reconstruction (`Σe² = 0`) is `+∞` (also for an
//!   all-zero signal); a zero signal reconstructed with error is `−∞`. JSON writes the
//!   infinities as the strings `"inf"` / `"-inf"` (JSON has no infinity).
//! - `cosine = Σx·x̂ / √(Σx²·Σx̂²)`, clamped to [−1, 1]; exactly 1 for identical vectors (both
//!   all zero included), 0 when exactly one of them is all zero.
//! - An empty slice gives zeros, `sqnr_db = +∞`, `cosine = 1`.
//!
//! Storage (bytes, bits per weight) belongs to the format, not to a pair of slices:
//! [`format_report`] adds it from a [`QuantizedTensor`].

use serde::{Serialize, Serializer};

use crate::formats::{QuantError, QuantizedTensor};

/// How far `reconstructed` is from `original`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
// Field names are camelCase across the wasm boundary (snake_case in the CLI's JSON).
#[cfg_attr(target_arch = "wasm32", serde(rename_all = "camelCase"))]
pub struct ErrorMetrics {
    /// Number of values compared.
    pub n: usize,
    pub mse: f64,
    pub rmse: f64,
    pub max_abs_error: f64,
    /// Signal-to-quantization-noise ratio in dB (see the module docs for ±∞).
    #[serde(serialize_with = "serialize_db")]
    #[cfg_attr(target_arch = "wasm32", tsify(type = "number | \"inf\" | \"-inf\""))]
    pub sqnr_db: f64,
    pub cosine: f64,
    /// Mean of x² (the signal power the SQNR compares against).
    pub signal_power: f64,
}

fn serialize_db<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(*v)
    } else if *v > 0.0 {
        s.serialize_str("inf")
    } else if *v < 0.0 {
        s.serialize_str("-inf")
    } else {
        s.serialize_none()
    }
}

/// Metrics of `reconstructed` against `original`. Panics if the lengths differ.
pub fn error_metrics(original: &[f32], reconstructed: &[f32]) -> ErrorMetrics {
    assert_eq!(original.len(), reconstructed.len(), "error_metrics: slices of different lengths");
    let (mut sx, mut sy, mut sxy, mut se, mut max) = (0f64, 0f64, 0f64, 0f64, 0f64);
    for (&x, &y) in original.iter().zip(reconstructed) {
        let (x, y) = (f64::from(x), f64::from(y));
        let e = x - y;
        sx += x * x;
        sy += y * y;
        sxy += x * y;
        se += e * e;
        max = max.max(e.abs());
    }
    let n = original.len();
    let mse = if n == 0 { 0.0 } else { se / n as f64 };
    let sqnr_db = if se == 0.0 {
        f64::INFINITY
    } else if sx == 0.0 {
        f64::NEG_INFINITY
    } else {
        10.0 * (sx / se).log10()
    };
    let cosine = match (sx == 0.0, sy == 0.0) {
        (true, true) => 1.0,
        (true, false) | (false, true) => 0.0,
        // Identical vectors are exactly 1 (rounding could otherwise give 1 − 1 ulp).
        _ if se == 0.0 => 1.0,
        _ => (sxy / (sx * sy).sqrt()).clamp(-1.0, 1.0),
    };
    ErrorMetrics {
        n,
        mse,
        rmse: mse.sqrt(),
        max_abs_error: max,
        sqnr_db,
        cosine,
        signal_power: if n == 0 { 0.0 } else { sx / n as f64 },
    }
}

/// Metrics of each consecutive run of `len` values (the last run may be shorter). Rows of a
/// `[rows, cols]` tensor are runs of `cols`; a format's groups are runs of its group length.
pub fn chunk_metrics(original: &[f32], reconstructed: &[f32], len: usize) -> Vec<ErrorMetrics> {
    assert_eq!(original.len(), reconstructed.len(), "chunk_metrics: slices of different lengths");
    assert!(len > 0, "chunk_metrics: chunk length must be positive");
    original.chunks(len).zip(reconstructed.chunks(len)).map(|(a, b)| error_metrics(a, b)).collect()
}

/// Per output channel (row of `cols` values).
pub fn row_metrics(original: &[f32], reconstructed: &[f32], cols: usize) -> Vec<ErrorMetrics> {
    chunk_metrics(original, reconstructed, cols)
}

/// Per group of a quantized tensor (the groups [`QuantizedTensor::levels`] describes); empty
/// when the format does not report its groups.
pub fn group_metrics(original: &[f32], reconstructed: &[f32], q: &QuantizedTensor) -> Vec<ErrorMetrics> {
    match q.group_len() {
        0 => Vec::new(),
        n => chunk_metrics(original, reconstructed, n),
    }
}

/// One format's result on one tensor: storage and error.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
// Field names are camelCase across the wasm boundary (snake_case in the CLI's JSON).
#[cfg_attr(target_arch = "wasm32", serde(rename_all = "camelCase"))]
pub struct FormatReport {
    /// The scheme's canonical name.
    pub format: String,
    /// Every stored byte (codes, scales, zero points, ...).
    pub bytes: u64,
    pub bits_per_weight: f64,
    pub metrics: ErrorMetrics,
}

/// Dequantizes `q` and measures it against `original`.
pub fn format_report(original: &[f32], q: &QuantizedTensor) -> Result<FormatReport, QuantError> {
    let reconstructed = q.dequantize()?;
    Ok(FormatReport {
        format: q.scheme().name(),
        bytes: q.storage_bytes(),
        bits_per_weight: q.bits_per_weight(),
        metrics: error_metrics(original, &reconstructed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_values() {
        let m = error_metrics(&[1.0, -2.0, 3.0, 0.0], &[1.0, -2.5, 2.0, 0.0]);
        assert_eq!(m.mse, (0.25 + 1.0) / 4.0);
        assert_eq!(m.max_abs_error, 1.0);
        assert!((m.sqnr_db - 10.0 * (14.0f64 / 1.25).log10()).abs() < 1e-12);
        let cos = (1.0 + 5.0 + 6.0) / (14f64.sqrt() * (1.0 + 6.25 + 4.0f64).sqrt());
        assert!((m.cosine - cos).abs() < 1e-12);
    }

    #[test]
    fn edge_cases() {
        let exact = error_metrics(&[1.0, 2.0], &[1.0, 2.0]);
        assert_eq!((exact.sqnr_db, exact.cosine, exact.mse), (f64::INFINITY, 1.0, 0.0));
        let zero = error_metrics(&[0.0; 3], &[0.0; 3]);
        assert_eq!((zero.sqnr_db, zero.cosine), (f64::INFINITY, 1.0));
        let bad = error_metrics(&[0.0; 3], &[0.0, 1.0, 0.0]);
        assert_eq!((bad.sqnr_db, bad.cosine), (f64::NEG_INFINITY, 0.0));
        let empty = error_metrics(&[], &[]);
        assert_eq!((empty.n, empty.mse, empty.cosine), (0, 0.0, 1.0));
        let json = serde_json::to_string(&exact).unwrap();
        assert!(json.contains(r#""sqnr_db":"inf""#), "{json}");
        assert!(serde_json::to_string(&bad).unwrap().contains(r#""sqnr_db":"-inf""#));
    }

    #[test]
    fn rows_and_chunks() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [1.0, 2.0, 3.0, 4.0, 4.0];
        let rows = chunk_metrics(&x, &y, 2);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2].n, 1);
        assert_eq!(rows[2].max_abs_error, 1.0);
        assert_eq!(rows[0].sqnr_db, f64::INFINITY);
    }
}
