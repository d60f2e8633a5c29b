//! f16 activations (`shaders/matmul_f16_activations.wgsl`: `gemv` and `gemm` of the f16 module) against their
//! CPU twin `matvec_f16_activations`, for every format with a dedicated kernel and the generic
//! path, over awkward shapes (1 row, rows past the 32-row tile, K = 576 and K not a multiple of
//! 8), one token (every portable GEMV strategy) and 3 / 33 tokens (GEMM). Runs only where the
//! adapter has shader-f16 (lavapipe does; `npm test` requires it there).
//!
//! Tolerance, and why: the twin rounds each weight and activation to f16 and each product to f16
//! exactly as the GPU does (the f32 product of two f16 values is exact, so rounding it to f16 is
//! the f16 multiply's one rounding), then sums in f64. What may differ:
//! - the f32 sum's order and rounding: ≤ 2·K·ε_f32·Σ|p| (as in gpu_matmul.rs);
//! - f16 subnormals, which Vulkan lets a device flush to zero: every product whose operand or
//!   result is below f16's smallest normal (2⁻¹⁴) may be 0 on the GPU, so its |w·x| is added.
//!
//! A wrong layout, scale or a product left in f32 errs far above this (see the last test).

use half::f16;
use quantlab::gpu::matmul::{matvec_f16_activations, ActivationPrecision, GemvStrategy, GpuMatrix, MatmulSetup};
use quantlab::gpu::GpuContext;
use quantlab::model::Matrix;

use crate::gpu::{gpu, values};
use crate::gpu_matmul::{gpu_products, matrix};

const F16_MIN_NORMAL: f32 = 6.103_515_6e-5; // 2⁻¹⁴

/// The adapter, if it has shader-f16 (else the tests print why they skip).
fn f16_gpu() -> Option<&'static GpuContext> {
    let gpu = gpu()?;
    if !gpu.adapter.shader_f16 {
        if gpu.adapter.name.contains("llvmpipe") {
            panic!("lavapipe has shader-f16, but the device was created without it");
        }
        eprintln!("skipping f16-activation test: adapter '{}' has no shader-f16", gpu.adapter.name);
        return None;
    }
    Some(gpu)
}

fn setup(gemv: GemvStrategy) -> MatmulSetup {
    MatmulSetup { gemv, activations: ActivationPrecision::F16 }
}

/// Checks `n` tokens of f16-activation products against the twin (tolerance in the module docs).
fn check(gpu: &GpuContext, label: &str, m: &Matrix, g: &GpuMatrix, n: usize) {
    let (rows, cols) = (g.rows(), g.cols());
    let x = values(n * cols, 11 + n as u32);
    let got = gpu_products(gpu, g, &x, n);
    let w = m.to_f32();
    let mut want = vec![0f32; rows];
    for t in 0..n {
        let xt = &x[t * cols..(t + 1) * cols];
        matvec_f16_activations(&w, xt, &mut want);
        for r in 0..rows {
            let (mut abs_sum, mut subnormal) = (0f64, 0f64);
            for k in 0..cols {
                let (wh, xh) = (f16::from_f32(w[r * cols + k]).to_f32(), f16::from_f32(xt[k]).to_f32());
                let p = (wh * xh).abs();
                abs_sum += f64::from(p);
                let tiny = |v: f32| v != 0.0 && v.abs() < F16_MIN_NORMAL;
                if tiny(wh) || tiny(xh) || tiny(p) {
                    subnormal += f64::from((w[r * cols + k] * xt[k]).abs()) * 1.01;
                }
            }
            let tol = 2.0 * cols as f64 * f64::from(f32::EPSILON) * abs_sum + subnormal + 1e-30;
            let (gv, cv) = (got[t * rows + r], want[r]);
            assert!(
                f64::from((gv - cv).abs()) <= tol,
                "{label} {rows}x{cols} n={n} token {t} row {r}: gpu {gv} vs twin {cv} (tol {tol:e})"
            );
        }
    }
}

#[test]
fn f16_activations_match_their_cpu_twin_for_every_kernel() {
    let Some(gpu) = f16_gpu() else { return };
    let block32: &[(usize, usize)] = &[(1, 576), (37, 576), (70, 96)];
    let k_quants: &[(usize, usize)] = &[(1, 256), (37, 512)];
    // (format, shapes as (rows, cols), the kernel label the upload must report)
    type Case<'a> = (&'a str, &'a [(usize, usize)], &'a str);
    let cases: &[Case] = &[
        ("f32", &[(1, 5), (37, 577), (33, 64)], "F32 (dedicated)"),
        ("f16", block32, "F16 (dedicated)"),
        ("q8_0", block32, "Q8_0 (dedicated)"),
        ("q4_0", block32, "Q4_0 (dedicated)"),
        ("q4_1", block32, "Q4_1 (dedicated)"),
        ("q5_0", &[(1, 576), (37, 96)], "Q5_0 (dedicated)"),
        ("q5_1", &[(1, 576), (37, 96)], "Q5_1 (dedicated)"),
        ("iq4_nl", &[(1, 576), (37, 96)], "IQ4_NL (dedicated)"),
        ("iq4_xs", k_quants, "IQ4_XS (dedicated)"),
        ("mxfp4", &[(1, 576), (37, 96)], "MXFP4 (dedicated)"),
        ("q4_k", k_quants, "Q4_K (dedicated)"),
        ("q5_k", k_quants, "Q5_K (dedicated)"),
        ("q6_k", k_quants, "Q6_K (dedicated)"),
        ("q3_k", k_quants, "Q3_K (dedicated)"),
        ("q2_k", k_quants, "Q2_K (dedicated)"),
        ("int8-sym-channel", block32, "(dedicated)"),
        ("int4-asym-g64", &[(1, 576), (37, 128)], "(dedicated)"),
        ("nf4", &[(1, 576), (37, 128)], "(dedicated)"),
        ("int3-asym-g32", &[(1, 576), (37, 96)], "(dedicated)"),
        ("int2-sym-g64", &[(37, 128)], "(dedicated)"),
        ("int3-sym-channel", &[(37, 100)], "generic"),
        ("int4-sym-tensor", &[(1, 576), (37, 96)], "int4-sym-tensor (dedicated)"),
        ("int8-asym-tensor", &[(37, 96)], "int8-asym-tensor (dedicated)"),
        ("fp8-e4m3-channel", &[(1, 576), (37, 77)], "fp8-e4m3-channel (dedicated)"),
        ("fp8-e5m2-tensor", &[(1, 576), (37, 96)], "fp8-e5m2-tensor (dedicated)"),
        ("bf16", &[(1, 576), (37, 77)], "BF16 (dedicated)"),
    ];
    for &(format, shapes, expect_label) in cases {
        for (i, &(rows, cols)) in shapes.iter().enumerate() {
            let m = matrix(format, rows, cols, 300 + i as u32);
            let default = MatmulSetup::default_for(gpu, ActivationPrecision::F16);
            let g = pollster::block_on(GpuMatrix::upload_with(gpu, format, &m, default)).expect("upload");
            assert_eq!(g.activations(), ActivationPrecision::F16);
            assert!(g.kernel_label().contains(expect_label), "{format}: label {}", g.kernel_label());
            for n in [1, 3, 33] {
                check(gpu, format, &m, &g, n);
            }
            for row_threads in [1, 4, 64] {
                let strategy = GemvStrategy::Workgroup { row_threads };
                let g = pollster::block_on(GpuMatrix::upload_with(gpu, format, &m, setup(strategy))).expect("upload");
                check(gpu, &format!("{format} f16 gemv {}", strategy.label()), &m, &g, 1);
            }
        }
    }
}

/// Activations f16 can't represent: x = 1 + 2⁻¹² rounds to 1 in f16, so with unit weights the
/// f16 products sum to K while f32 activations give K·(1 + 2⁻¹²). Both are exact in f32, so this
/// tells the two paths apart with no tolerance at all (a kernel silently left in f32 fails).
#[test]
fn f16_activations_are_really_f16_and_f32_stays_f32() {
    let Some(gpu) = f16_gpu() else { return };
    let (rows, cols) = (5, 1000);
    let m = Matrix::from_f32(vec![1.0; rows * cols], quantlab::formats::TensorShape::new(rows, cols)).unwrap();
    for n in [1, 4] {
        let x = vec![1.0 + 2f32.powi(-12); n * cols];
        for (activations, want) in
            [(ActivationPrecision::F16, cols as f32), (ActivationPrecision::F32, cols as f32 * (1.0 + 2f32.powi(-12)))]
        {
            let s = MatmulSetup::default_for(gpu, activations);
            let g = pollster::block_on(GpuMatrix::upload_with(gpu, "ones", &m, s)).expect("upload");
            let got = gpu_products(gpu, &g, &x, n);
            assert!(got.iter().all(|&v| v == want), "{activations:?} n={n}: {got:?}, want {want}");
        }
    }
}

#[test]
fn f16_activations_are_refused_where_they_cannot_run() {
    let Some(gpu) = f16_gpu() else { return };
    let m = matrix("q4_0", 4, 64, 1);
    // No subgroup or rows-per-thread variant of the f16 GEMV.
    let mut row_sharing = vec![GemvStrategy::Rows { rows: 4 }];
    if gpu.adapter.subgroups {
        row_sharing.push(GemvStrategy::Subgroup { rows: 4 });
    }
    for gemv in row_sharing {
        let err =
            pollster::block_on(GpuMatrix::upload_with(gpu, "w", &m, setup(gemv))).err().expect("refused").to_string();
        assert!(err.contains("no f16-activation variant") && err.contains(&gemv.label()), "{err}");
    }
    // A device that reports no shader-f16 (a second device with the flag cleared, as
    // SwiftShader in Chromium): refused before any f16 module is created, naming the adapter.
    let mut without = GpuContext::acquire_blocking().expect("second device");
    without.adapter.shader_f16 = false;
    let s = MatmulSetup::default_for(&without, ActivationPrecision::F16);
    let err = pollster::block_on(GpuMatrix::upload_with(&without, "w", &m, s)).err().expect("refused").to_string();
    assert!(err.contains("shader-f16") && err.contains(&without.adapter.name), "{err}");
    // f32 activations still work there.
    let s = MatmulSetup::default_for(&without, ActivationPrecision::F32);
    pollster::block_on(GpuMatrix::upload_with(&without, "w", &m, s)).expect("f32 upload");
}
