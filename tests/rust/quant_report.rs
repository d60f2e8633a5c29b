//! The per-tensor error in `quantize_model`'s report (what the comparison panel's per-layer
//! bars show) against `stats::metrics` recomputed here on the decoded matrices, and the
//! levels of an FP4 tensor (ascending, ±0 once) against bitsandbytes' published FP4 table.

use crate::gguf::model_path;
use quantlab::formats::{quantize, QuantScheme, TensorShape};
use quantlab::model::{quantize_model, Model, TensorPolicy};
use quantlab::stats::error_metrics;

#[test]
fn report_error_equals_metrics_of_the_dequantized_tensor() {
    let Some(path) = model_path() else { return };
    let base = Model::from_gguf_bytes(&std::fs::read(path).unwrap()).unwrap();
    let (q, report) = quantize_model(&base, &QuantScheme::parse("q4_0").unwrap(), &TensorPolicy::default()).unwrap();
    // Every weight matrix with its llama.cpp name, in the report's order.
    let (before, after) = (base.weights.matrices(), q.weights.matrices());
    assert_eq!(report.tensors.len(), before.len());
    let mut quantized = 0;
    // Every 7th tensor and the first/last (decoding all 211 twice is slow in a test build).
    for (i, t) in report.tensors.iter().enumerate().filter(|(i, _)| i % 7 == 0 || *i + 1 == before.len()) {
        assert_eq!(t.name, before[i].0);
        let expected = error_metrics(&before[i].1.to_f32(), &after[i].1.to_f32());
        assert_eq!(t.error, expected, "{}", t.name);
        if t.actual == "q4_0" {
            quantized += 1;
            // A 4-bit grid on real weights: a finite, plausible SQNR (tens of dB at most).
            assert!(t.error.sqnr_db > 5.0 && t.error.sqnr_db < 40.0, "{}: {}", t.name, t.error.sqnr_db);
            assert!(t.error.mse > 0.0);
        }
    }
    assert!(quantized > 10, "only {quantized} sampled tensors became q4_0");
    // Copied tensors (none here unless the policy copies) would be exact: SQNR +inf, MSE 0.
    for t in report.tensors.iter().filter(|t| t.actual == t.source.to_lowercase()) {
        assert_eq!(t.error.mse, 0.0);
        assert_eq!(t.error.sqnr_db, f64::INFINITY);
    }
}

#[test]
fn fp4_levels_are_ascending_without_duplicates() {
    // One block of 64 with absmax 2: levels = 2 × bitsandbytes' FP4 table (codes 0–7 positive
    // 0, 0.0052083, 0.6667, 1, 0.3333, 0.5, 0.1667, 0.25; codes 8–15 their negatives).
    let mut values: Vec<f32> = (0..64).map(|i| ((i as f32) * 0.37).sin()).collect();
    values[5] = 2.0;
    let t = quantize(&QuantScheme::parse("fp4-b64").unwrap(), &values, TensorShape::new(1, 64)).unwrap();
    let levels = t.levels(0);
    let table = [0.0f32, 0.005_208_333, 0.666_666_7, 1.0, 0.333_333_3, 0.5, 0.166_666_7, 0.25];
    let mut expected: Vec<f32> = table.iter().flat_map(|&v| [2.0 * v, -2.0 * v]).collect();
    expected.sort_by(f32::total_cmp);
    expected.dedup_by(|a, b| a == b); // +0 and -0 once
    assert_eq!(levels.len(), 15, "{levels:?}");
    assert!(levels.windows(2).all(|w| w[0] < w[1]), "not strictly ascending: {levels:?}");
    for (l, e) in levels.iter().zip(&expected) {
        assert!((l - e).abs() < 1e-5, "{levels:?} vs {expected:?}");
    }
    // NF4's table is already ascending: still 16 distinct levels.
    let nf4 = quantize(&QuantScheme::parse("nf4-b64").unwrap(), &values, TensorShape::new(1, 64)).unwrap();
    let l = nf4.levels(0);
    assert_eq!(l.len(), 16);
    assert!(l.windows(2).all(|w| w[0] < w[1]));
}
