//! Inputs of the weight-matmul benchmarks (crate/examples/bench_gpu.rs natively,
//! scripts/bench-gpu-browser.mjs through the wasm binding `GpuMatmulBench`), shared so both
//! time the same matrices: deterministic pseudo-random weights in any format, with the model's
//! group rule.

use crate::formats::{quantize, Granularity, QuantScheme, TensorShape};
use crate::model::Matrix;

/// `n` deterministic values in [-0.05, 0.05) (xorshift; no RNG dependency).
pub fn bench_values(n: usize) -> Vec<f32> {
    let mut s = 0x9E37_79B9u32;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32 - 0.5) * 0.1
        })
        .collect()
}

/// A `rows × cols` matrix of [`bench_values`] in `format` ("f32" or a scheme name). Like the
/// model's tensor policy, a group that doesn't divide the row shrinks (g128 → g64 for K = 576);
/// the matrix's kernel label names the scheme that ran.
pub fn bench_matrix(format: &str, rows: usize, cols: usize) -> Result<Matrix, String> {
    let shape = TensorShape::new(rows, cols);
    let w = bench_values(rows * cols);
    if format == "f32" {
        return Matrix::from_f32(w, shape).map_err(|e| e.to_string());
    }
    let mut scheme = QuantScheme::parse(format).map_err(|e| e.to_string())?;
    while let Granularity::Group(g) = scheme.granularity {
        if g <= 1 || cols.is_multiple_of(g as usize) || scheme.ggml_type().is_some() {
            break;
        }
        scheme.granularity = Granularity::Group(g / 2);
    }
    let q = quantize(&scheme, &w, shape).map_err(|e| format!("{format} at {rows}×{cols}: {e}"))?;
    Matrix::from_quantized(q).map_err(|e| e.to_string())
}
