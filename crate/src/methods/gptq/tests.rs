use super::*;
use crate::formats::{Granularity, Mapping, QuantScheme};

/// Deterministic values in about [-1, 1) (xorshift; the tests need variety, not quality).
fn noise(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect()
}

/// `Σ xᵀx` of `n` rows of correlated inputs (each input mixes its neighbours, some scaled up),
/// as f64, plus the rows themselves.
fn inputs(cols: usize, n: usize) -> (Vec<f64>, Vec<f32>) {
    let z = noise(7, cols * n);
    let mut x = vec![0f32; cols * n];
    for s in 0..n {
        for c in 0..cols {
            let gain = if c % 7 == 0 { 4.0 } else { 1.0 };
            x[s * cols + c] = gain * (z[s * cols + c] + 0.6 * z[s * cols + (c + 1) % cols]);
        }
    }
    let mut xtx = vec![0f64; cols * cols];
    for s in 0..n {
        let row = &x[s * cols..(s + 1) * cols];
        for i in 0..cols {
            for j in 0..cols {
                xtx[i * cols + j] += f64::from(row[i]) * f64::from(row[j]);
            }
        }
    }
    (xtx, x)
}

/// ‖W Xᵀ − Ŵ Xᵀ‖² over the sample rows.
fn output_error(w: &[f32], wq: &[f32], x: &[f32], rows: usize, cols: usize) -> f64 {
    let n = x.len() / cols;
    let mut total = 0.0;
    for r in 0..rows {
        for s in 0..n {
            let d: f64 =
                (0..cols).map(|c| f64::from(w[r * cols + c] - wq[r * cols + c]) * f64::from(x[s * cols + c])).sum();
            total += d * d;
        }
    }
    total
}

fn schemes() -> Vec<QuantScheme> {
    vec![
        QuantScheme::int(4, Mapping::Symmetric, Granularity::Group(32)),
        QuantScheme::int(3, Mapping::Asymmetric, Granularity::Group(64)),
        QuantScheme::int(2, Mapping::Asymmetric, Granularity::Group(32)),
        QuantScheme::int(8, Mapping::Symmetric, Granularity::Channel),
        QuantScheme::ggml(GgmlType::Q4_0),
        QuantScheme::ggml(GgmlType::Q4_1),
        QuantScheme::ggml(GgmlType::Q5_0),
        QuantScheme::ggml(GgmlType::Q5_1),
        QuantScheme::ggml(GgmlType::Q8_0),
    ]
}

use crate::formats::GgmlType;

#[test]
fn output_decodes_to_its_values_and_beats_rtn() {
    let (rows, cols, n) = (12, 192, 400);
    let w = noise(3, rows * cols);
    let (xtx, x) = inputs(cols, n);
    let shape = TensorShape::new(rows, cols);
    for scheme in schemes() {
        for order in [ColumnOrder::Natural, ColumnOrder::ActOrder] {
            let options = GptqOptions { order, ..Default::default() };
            let out = quantize(&scheme, &w, shape, SecondMomentRef { xtx: &xtx, samples: n }, &options).unwrap();
            assert_eq!(out.tensor.scheme(), scheme);
            assert_eq!(out.tensor.dequantize().unwrap(), out.values, "{} {order:?}", scheme.name());
            let rtn = crate::formats::quantize(&scheme, &w, shape).unwrap().dequantize().unwrap();
            let (e_gptq, e_rtn) =
                (output_error(&w, &out.values, &x, rows, cols), output_error(&w, &rtn, &x, rows, cols));
            assert!(e_gptq < e_rtn, "{} {order:?}: GPTQ {e_gptq} vs RTN {e_rtn}", scheme.name());
        }
    }
}

#[test]
fn identity_hessian_is_round_to_nearest() {
    // H = I: no column's error is spread to another, so GPTQ's INT codes are RTN's.
    let (rows, cols) = (4, 128);
    let w = noise(11, rows * cols);
    let mut xtx = vec![0f64; cols * cols];
    for i in 0..cols {
        xtx[i * cols + i] = 1.0;
    }
    let shape = TensorShape::new(rows, cols);
    for scheme in &schemes()[..4] {
        let out =
            quantize(scheme, &w, shape, SecondMomentRef { xtx: &xtx, samples: 2 }, &GptqOptions::default()).unwrap();
        assert_eq!(out.tensor, crate::formats::quantize(scheme, &w, shape).unwrap(), "{}", scheme.name());
    }
}

#[test]
fn dead_inputs_zero_their_column() {
    let (rows, cols, n) = (3, 64, 100);
    let w = noise(5, rows * cols);
    let (mut xtx, _) = inputs(cols, n);
    for j in 0..cols {
        xtx[5 * cols + j] = 0.0;
        xtx[j * cols + 5] = 0.0;
    }
    let scheme = QuantScheme::int(4, Mapping::Asymmetric, Granularity::Group(32));
    for order in [ColumnOrder::Natural, ColumnOrder::ActOrder] {
        let options = GptqOptions { order, ..Default::default() };
        let out =
            quantize(&scheme, &w, TensorShape::new(rows, cols), SecondMomentRef { xtx: &xtx, samples: n }, &options)
                .unwrap();
        for r in 0..rows {
            assert_eq!(out.values[r * cols + 5], 0.0);
        }
    }
}

#[test]
fn refusals() {
    let shape = TensorShape::new(2, 64);
    let w = noise(1, 128);
    let xtx = vec![0f64; 64 * 64];
    let stats = SecondMomentRef { xtx: &xtx, samples: 1 };
    let tensor = QuantScheme::int(4, Mapping::Symmetric, Granularity::Tensor);
    assert!(matches!(
        quantize(&tensor, &w, shape, stats, &GptqOptions::default()),
        Err(GptqError::Quant(QuantError::Scheme { .. }))
    ));
    let q4k = QuantScheme::ggml(GgmlType::Q4_K);
    assert!(matches!(
        quantize(&q4k, &w, shape, stats, &GptqOptions::default()),
        Err(GptqError::UnsupportedScheme { .. })
    ));
    let short = SecondMomentRef { xtx: &xtx[..10], samples: 1 };
    let q4 = QuantScheme::ggml(GgmlType::Q4_0);
    assert!(matches!(quantize(&q4, &w, shape, short, &GptqOptions::default()), Err(GptqError::Statistics { .. })));
}
