//! Inputs of the weight-matmul benchmarks (crate/examples/bench_gpu.rs natively,
//! scripts/bench-gpu-browser.mjs through the wasm binding `GpuMatmulBench`), shared so both
//! time the same matrices: deterministic pseudo-random weights in any format, with the model's
//! group rule, and random valid blocks of the decode-only ggml types with a kernel (the lab can't
//! quantize to them; the GPU tests use these blocks too).

use half::f16;

use crate::formats::quantized::GgmlTensor;
use crate::formats::{can_quantize, quantize, GgmlType, Granularity, QuantScheme, QuantizedTensor, TensorShape};
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
    if let Some(ty) = GgmlType::from_name(format).filter(|&ty| !can_quantize(ty)) {
        let t = random_blocks(ty, shape, 1)?;
        return Matrix::from_quantized(QuantizedTensor::Ggml(t)).map_err(|e| e.to_string());
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

/// A `shape` tensor of pseudo-random valid IQ4_XS or MXFP4 blocks (`seed` picks the stream): every
/// index byte and IQ4_XS sub-block scale drawn uniformly; block scales normal numbers (IQ4_XS d
/// in [2⁻¹⁴, 2⁻¹⁰), MXFP4 e in 110..=126, d = 2^(e − 128)), since Vulkan and WebGPU let a
/// device flush subnormal scales to zero where the CPU keeps them. Other types are an error.
pub fn random_blocks(ty: GgmlType, shape: TensorShape, seed: u32) -> Result<GgmlTensor, String> {
    let (block, block_bytes) = ty.block_layout();
    if !matches!(ty, GgmlType::IQ4_XS | GgmlType::MXFP4) {
        return Err(format!("random blocks are made for IQ4_XS and MXFP4 only, not {ty}"));
    }
    if !shape.cols.is_multiple_of(block) {
        return Err(format!("{ty} rows must be whole blocks of {block}, not {} values", shape.cols));
    }
    let mut s = seed.wrapping_mul(0x9E37_79B9) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        s
    };
    let mut data = vec![0u8; shape.len() / block * block_bytes];
    for b in data.chunks_exact_mut(block_bytes) {
        b.iter_mut().for_each(|v| *v = next() as u8);
        if ty == GgmlType::IQ4_XS {
            let d = f16::from_f32(2f32.powi(-14) * (1.0 + 15.0 * (next() as f32 / u32::MAX as f32)));
            b[..2].copy_from_slice(&d.to_le_bytes());
        } else {
            b[0] = 110 + (next() % 17) as u8;
        }
    }
    Ok(GgmlTensor { ty, shape, data })
}
