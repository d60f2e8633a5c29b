//! GPU weight matmuls (quantlab::gpu::matmul) against their CPU twins: `Matrix::matvec` for the
//! products and `Matrix::row` for the embedding gather, for every format with a dedicated
//! kernel and a few that take the generic path, over awkward shapes (1 row, rows not a multiple
//! of the 32-row tile, K = 576 and other K not a multiple of 128, n = 1, 3, 7, 33 tokens), with
//! one-token products (GEMV) checked for every strategy the adapter supports
//! (`GemvStrategy::supported`: the portable ones always, the subgroup ones where the adapter has
//! subgroups, as lavapipe does).
//!
//! Tolerances, and why:
//! - gather_rows decodes with the CPU reference's own f32 operations, so it must be bit-exact,
//!   except where decoding is a multiply followed by an add (Q4_1, Q5_1, Q2_K, Q4_K, Q5_K): Vulkan/WebGPU let the
//!   compiler fuse those into one fma, so one rounding (1 ulp of the larger term) may differ.
//!   The generic path stores f16, so its gather equals the CPU value rounded to f16.
//! - Products sum in a different order than the CPU (8 lanes there, a thread/tile tree here).
//!   Any summation order of K products is within γ_K·Σ|w·x| of the exact sum (γ_K ≈ K·ε), so
//!   two of them differ by at most 2·K·ε·Σ|w·x|; the generic path adds the f16 rounding of each
//!   weight, 2⁻¹¹·Σ|w·x|. A wrong layout or scale errs by O(|w·x|) per term, far above this.
//!   The subgroup GEMV factors block scales and offsets out (e.g. Q4_1 as d·Σq·x + m·Σx, INT as
//!   s·(Σq·x − z·Σx)) and multiplies unshifted nibbles q·16^j by x·16^−j (exact powers of two):
//!   its terms are then at most (|q|+|z|)/|q−z| times larger than |w·x|, but rounding errors of
//!   many terms add like a random walk (≈ √K·ε), so the 2·K·ε bound still holds with margin, and
//!   the tests check exactly that.
//!
//! Sizes are small on purpose: lavapipe runs about 0.7 GFLOP/s.

use quantlab::formats::{can_quantize, quantize, GgmlType, QuantScheme, QuantizedTensor, TensorShape};
use quantlab::gpu::bench::random_blocks;
use quantlab::gpu::matmul::{GemvStrategy, GpuMatrix, MatmulSetup};
use quantlab::gpu::{GpuContext, GpuError};
use quantlab::model::Matrix;
use wgpu::util::DeviceExt;

use crate::gpu::{gpu, values};

/// A weight matrix in `format` ("f32", a ggml type name, or a quantlab scheme name); the
/// decode-only types the lab can't quantize to (IQ4_XS, MXFP4) as random valid blocks.
pub(crate) fn matrix(format: &str, rows: usize, cols: usize, seed: u32) -> Matrix {
    let shape = TensorShape::new(rows, cols);
    let w: Vec<f32> = values(rows * cols, seed).iter().map(|v| v * 0.05).collect();
    if format == "f32" {
        return Matrix::from_f32(w, shape).unwrap();
    }
    if let Some(ty) = GgmlType::from_name(format).filter(|&ty| !can_quantize(ty)) {
        return Matrix::from_quantized(QuantizedTensor::Ggml(random_blocks(ty, shape, seed).unwrap())).unwrap();
    }
    let scheme = QuantScheme::parse(format).unwrap();
    Matrix::from_quantized(quantize(&scheme, &w, shape).unwrap()).unwrap()
}

fn storage(gpu: &GpuContext, data: &[u8]) -> wgpu::Buffer {
    gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("test input"),
        contents: data,
        usage: wgpu::BufferUsages::STORAGE,
    })
}

/// Runs `record` into a fresh output buffer of `len` f32 and reads it back.
fn run(
    gpu: &GpuContext,
    len: usize,
    record: impl FnOnce(&mut wgpu::CommandEncoder, &wgpu::Buffer) -> Result<(), GpuError>,
) -> Vec<f32> {
    let bytes = 4 * len as u64;
    let out = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("test output"),
        size: bytes,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let readback = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("test readback"),
        size: bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    record(&mut enc, &out).expect("encode");
    enc.copy_buffer_to_buffer(&out, 0, &readback, 0, bytes);
    gpu.queue.submit([enc.finish()]);
    bytemuck::pod_collect_to_vec(&pollster::block_on(gpu.read_buffer(&readback)).unwrap())
}

pub(crate) fn gpu_products(gpu: &GpuContext, m: &GpuMatrix, x: &[f32], n: usize) -> Vec<f32> {
    let xb = storage(gpu, bytemuck::cast_slice(x));
    run(gpu, n * m.rows(), |enc, y| m.encode(gpu, enc, &xb, y, n as u32))
}

fn gpu_gather(gpu: &GpuContext, m: &GpuMatrix, ids: &[u32]) -> Vec<f32> {
    let ib = storage(gpu, bytemuck::cast_slice(ids));
    run(gpu, ids.len() * m.cols(), |enc, out| m.encode_gather_rows(gpu, enc, &ib, out, ids.len() as u32))
}

/// Checks `n` tokens of products against `Matrix::matvec`, with the tolerance of the module docs.
fn check_products(gpu: &GpuContext, label: &str, m: &Matrix, g: &GpuMatrix, n: usize, extra_rel: f64) {
    let TensorShape { rows, cols } = m.shape();
    let x = values(n * cols, 7 + n as u32);
    let got = gpu_products(gpu, g, &x, n);
    let w = m.to_f32();
    let mut want = vec![0f32; rows];
    for t in 0..n {
        let xt = &x[t * cols..(t + 1) * cols];
        m.matvec(xt, &mut want);
        for r in 0..rows {
            let abs_sum: f64 = (0..cols).map(|k| f64::from((w[r * cols + k] * xt[k]).abs())).sum();
            let tol = (2.0 * cols as f64 * f64::from(f32::EPSILON) + extra_rel) * abs_sum + 1e-30;
            let (gv, cv) = (got[t * rows + r], want[r]);
            assert!(
                f64::from((gv - cv).abs()) <= tol,
                "{label} {rows}x{cols} n={n} token {t} row {r}: gpu {gv} vs cpu {cv} (tol {tol:e})"
            );
        }
    }
}

/// Checks gather_rows against `Matrix::row` (bit-exact unless `fma_ulps`, see module docs).
fn check_gather(gpu: &GpuContext, label: &str, m: &Matrix, g: &GpuMatrix, generic: bool, fma: bool) {
    let TensorShape { rows, cols } = m.shape();
    let ids: Vec<u32> = [rows - 1, 0, rows / 2, rows + 5].iter().map(|&r| r as u32).collect();
    let got = gpu_gather(gpu, g, &ids);
    let mut want = vec![0f32; cols];
    for (i, &id) in ids.iter().enumerate() {
        let got_row = &got[i * cols..(i + 1) * cols];
        if id as usize >= rows {
            assert!(got_row.iter().all(|&v| v == 0.0), "{label}: id past the end must give zeros");
            continue;
        }
        m.row(id as usize, &mut want);
        for (k, (&gv, &cv)) in got_row.iter().zip(&want).enumerate() {
            let expect = if generic { half::f16::from_f32(cv).to_f32() } else { cv };
            let ok = if fma {
                (gv - expect).abs() <= expect.abs().max(1e-3) * f32::EPSILON * 2.0
            } else {
                gv.to_bits() == expect.to_bits()
            };
            assert!(ok, "{label} gather row {id} col {k}: gpu {gv} vs cpu {expect}");
        }
    }
}

/// Products for n in {1, 3, 7, 33} and the gather with the default strategy, and the one-token
/// product with every other GEMV strategy the adapter supports, over each shape.
fn check_format(format: &str, shapes: &[(usize, usize)], expect_label: &str) {
    let Some(gpu) = gpu() else { return };
    let generic = expect_label.contains("generic");
    let fma = matches!(format, "q4_1" | "q5_1" | "q2_k" | "q4_k" | "q5_k");
    let extra = if generic { 1.0 / 2048.0 } else { 0.0 };
    for (i, &(rows, cols)) in shapes.iter().enumerate() {
        let m = matrix(format, rows, cols, 100 + i as u32);
        let g = pollster::block_on(GpuMatrix::upload(gpu, format, &m)).expect("upload");
        assert_eq!((g.rows(), g.cols()), (rows, cols));
        assert_eq!(g.gemv_strategy(), GemvStrategy::default_for(gpu));
        assert!(g.kernel_label().contains(expect_label), "{format}: label {}", g.kernel_label());
        for n in [1, 3, 7, 33] {
            check_products(gpu, format, &m, &g, n, extra);
        }
        check_gather(gpu, format, &m, &g, generic, fma);
        for strategy in GemvStrategy::supported(gpu).into_iter().filter(|&s| s != g.gemv_strategy()) {
            let g = pollster::block_on(GpuMatrix::upload_with(gpu, format, &m, MatmulSetup::f32(strategy)))
                .expect("upload");
            check_products(gpu, &format!("{format} gemv {}", strategy.label()), &m, &g, 1, extra);
        }
    }
}

/// Shapes for 32-value block formats: 1 row, rows past a 32-row tile, K = 576 (SmolLM2) and 96.
const BLOCK32_SHAPES: &[(usize, usize)] = &[(1, 576), (37, 576), (70, 96)];
/// K-quants need K a multiple of 256; K = 768 is 3 super-blocks (rows end on an odd one, and the
/// subgroup GEMV's lanes cross super-blocks mid-row).
const K_SHAPES: &[(usize, usize)] = &[(1, 256), (37, 512), (9, 768)];

#[test]
fn f32_matches_cpu_including_k_not_a_multiple_of_8() {
    check_format("f32", &[(1, 5), (33, 577), (37, 576)], "F32 (dedicated)");
}

#[test]
fn q8_0_matches_cpu() {
    check_format("q8_0", BLOCK32_SHAPES, "Q8_0 (dedicated)");
}

#[test]
fn q4_1_matches_cpu() {
    check_format("q4_1", BLOCK32_SHAPES, "Q4_1 (dedicated)");
}

#[test]
fn q4_0_matches_cpu() {
    check_format("q4_0", BLOCK32_SHAPES, "Q4_0 (dedicated)");
}

/// Q5_0/Q5_1 also at K = 64 (one pair of blocks, so one f16 scale word) and K = 32 (one block:
/// half a scale word, and the subgroup GEMV's lanes past the row's only chunk pair).
#[test]
fn q5_0_matches_cpu() {
    check_format("q5_0", BLOCK32_SHAPES, "Q5_0 (dedicated)");
    check_format("q5_0", &[(33, 32), (5, 64)], "Q5_0 (dedicated)");
}

#[test]
fn q5_1_matches_cpu() {
    check_format("q5_1", BLOCK32_SHAPES, "Q5_1 (dedicated)");
    check_format("q5_1", &[(33, 32)], "Q5_1 (dedicated)");
}

#[test]
fn iq4_nl_matches_cpu() {
    check_format("iq4_nl", BLOCK32_SHAPES, "IQ4_NL (dedicated)");
}

/// IQ4_XS and MXFP4 (decode-only: random valid blocks, see `matrix`). IQ4_XS at K = 768 ends
/// rows on an odd super-block; MXFP4 at K = 96 (3 blocks: the scale word half used) and 32.
#[test]
fn iq4_xs_matches_cpu() {
    check_format("iq4_xs", K_SHAPES, "IQ4_XS (dedicated)");
}

#[test]
fn mxfp4_matches_cpu() {
    check_format("mxfp4", BLOCK32_SHAPES, "MXFP4 (dedicated)");
    check_format("mxfp4", &[(33, 32)], "MXFP4 (dedicated)");
}

#[test]
fn f16_matches_cpu() {
    check_format("f16", &[(1, 5), (37, 576)], "F16 (dedicated)");
}

#[test]
fn q4_k_matches_cpu() {
    check_format("q4_k", K_SHAPES, "Q4_K (dedicated)");
}

#[test]
fn q5_k_matches_cpu() {
    check_format("q5_k", K_SHAPES, "Q5_K (dedicated)");
}

/// Q3_K's and Q2_K's sub-blocks of 16 take one scale per chunk pair.
#[test]
fn q3_k_matches_cpu() {
    check_format("q3_k", K_SHAPES, "Q3_K (dedicated)");
}

#[test]
fn q2_k_matches_cpu() {
    check_format("q2_k", K_SHAPES, "Q2_K (dedicated)");
}

#[test]
fn q6_k_matches_cpu() {
    check_format("q6_k", K_SHAPES, "Q6_K (dedicated)");
}

#[test]
fn int8_per_channel_matches_cpu() {
    check_format("int8-sym-channel", BLOCK32_SHAPES, "(dedicated)");
    check_format("int8-asym-channel", &[(37, 96)], "(dedicated)");
}

#[test]
fn int4_groups_match_cpu() {
    check_format("int4-sym-g32", BLOCK32_SHAPES, "(dedicated)");
    check_format("int4-asym-g64", &[(37, 576)], "(dedicated)");
    check_format("int4-asym-g128", &[(37, 640)], "(dedicated)");
    check_format("int4-sym-g128", &[(1, 384)], "(dedicated)");
}

/// Codes across word boundaries (matmul_int_packed.wgsl). Rows of K = 40 or 88 INT3 codes are 15
/// or 33 bytes (the stored stream's rows start mid-word); INT7 chunks span 3 words; groups of 8
/// (one scale per chunk) and 16, per channel (f32 scales), sym and asym.
#[test]
fn int2_int3_and_int5_to_7_match_cpu() {
    check_format("int3-asym-g64", &[(37, 576)], "int3-asym-g64 (dedicated)");
    check_format("int3-sym-g8", &[(1, 96), (33, 40)], "(dedicated)");
    check_format("int3-asym-g8", &[(9, 88)], "(dedicated)");
    check_format("int3-sym-channel", &[(37, 88)], "(dedicated)");
    check_format("int2-asym-g32", &[(70, 96)], "(dedicated)");
    check_format("int2-sym-channel", &[(9, 40)], "(dedicated)");
    check_format("int5-asym-g16", &[(37, 80)], "(dedicated)");
    check_format("int6-sym-g32", &[(9, 96)], "(dedicated)");
    check_format("int7-asym-channel", &[(37, 88)], "(dedicated)");
}

/// BF16 rows of any length (K = 77: mid-chunk; 96: mid-vec4): the kernel's decoding (the high half of
/// an f32) is exact, so the products match the CPU's f32 reference like F16's.
#[test]
fn bf16_matches_cpu() {
    check_format("bf16", &[(1, 576), (37, 77), (70, 96)], "BF16 (dedicated)");
}

/// Per-tensor INT runs the INT kernels with its one scale (and zero point) read at stride 0.
#[test]
fn int_per_tensor_matches_cpu() {
    check_format("int4-sym-tensor", &[(37, 576)], "int4-sym-tensor (dedicated)");
    check_format("int8-asym-tensor", &[(9, 88)], "int8-asym-tensor (dedicated)");
    check_format("int3-asym-tensor", &[(9, 88)], "int3-asym-tensor (dedicated)");
    check_format("int2-sym-tensor", &[(37, 96)], "int2-sym-tensor (dedicated)");
}

/// FP8 rows of any length (K = 5, 77: rows end mid-chunk; 96: mid-vec4), per tensor (one scale
/// read at stride 0) and per channel.
#[test]
fn fp8_matches_cpu() {
    check_format("fp8-e4m3-channel", &[(1, 576), (37, 96)], "fp8-e4m3-channel (dedicated)");
    check_format("fp8-e4m3-tensor", &[(33, 5)], "fp8-e4m3-tensor (dedicated)");
    check_format("fp8-e5m2-channel", &[(9, 77)], "fp8-e5m2-channel (dedicated)");
    check_format("fp8-e5m2-tensor", &[(70, 96)], "fp8-e5m2-tensor (dedicated)");
}

/// Every finite FP8 code of both variants (subnormals, ±0, the largest), one row each at scale 1:
/// the kernel's decoding (built from the codes' bits) must give ml_dtypes' values bit for bit
/// (`tests/fixtures/fp8/decode_*.f32.bin`, scripts/dev/make_fp8_goldens.py), and the products of
/// every GEMV strategy must match the CPU. A code that is not finite sends the tensor to the
/// generic path (the kernel's decoding assumes finite codes; the quantizer never writes others).
#[test]
fn fp8_kernel_decodes_every_finite_code_like_ml_dtypes() {
    use quantlab::formats::fp8::{Fp8Format, Fp8Tensor};
    use quantlab::formats::QuantizedTensor;
    let Some(gpu) = gpu() else { return };
    for (format, name, finite) in [
        (Fp8Format::E4M3, "e4m3", (|c: u8| c & 0x7F != 0x7F) as fn(u8) -> bool),
        (Fp8Format::E5M2, "e5m2", |c: u8| c & 0x7C != 0x7C),
    ] {
        let golden = crate::int_fp8::read_f32("fp8", &format!("decode_{name}.f32.bin"));
        let codes: Vec<u8> = (0..=255u8).filter(|&c| finite(c)).collect();
        let tensor = |data: Vec<u8>| {
            let cols = data.len();
            let scheme = QuantScheme::parse(&format!("fp8-{name}-tensor")).unwrap();
            let t = Fp8Tensor {
                scheme,
                shape: TensorShape::new(1, cols),
                format,
                group_len: cols,
                data,
                scales: vec![1.0],
            };
            Matrix::from_quantized(QuantizedTensor::Fp8(t)).unwrap()
        };
        let m = tensor(codes.clone());
        let g = pollster::block_on(GpuMatrix::upload(gpu, name, &m)).expect("upload");
        assert!(g.kernel_label().contains("(dedicated)"), "{name}: {}", g.kernel_label());
        let got = gpu_gather(gpu, &g, &[0]);
        for (&c, v) in codes.iter().zip(&got) {
            let want = golden[c as usize];
            assert_eq!(v.to_bits(), want.to_bits(), "{name} code {c:#04x}: gpu {v} vs ml_dtypes {want}");
        }
        for strategy in GemvStrategy::supported(gpu) {
            let g = pollster::block_on(GpuMatrix::upload_with(gpu, name, &m, MatmulSetup::f32(strategy))).unwrap();
            check_products(gpu, &format!("{name} every code, gemv {}", strategy.label()), &m, &g, 1, 0.0);
        }
        let not_finite = (0..=255u8).find(|&c| !finite(c)).unwrap();
        let g = pollster::block_on(GpuMatrix::upload(gpu, name, &tensor(vec![0x38, not_finite, 0x01, 0x80])))
            .expect("upload");
        assert!(g.kernel_label().contains("generic"), "{name}: {}", g.kernel_label());
    }
}

#[test]
fn nf4_matches_cpu_with_and_without_double_quant() {
    check_format("nf4", &[(1, 576), (37, 576), (70, 128)], "(dedicated)");
    check_format("nf4-b64-dq", &[(37, 576)], "(dedicated)");
    check_format("fp4-b32", &[(37, 96)], "(dedicated)");
}

#[test]
fn other_formats_take_the_generic_f16_path() {
    // Rows of 100 INT3 codes are not whole 8-code chunks.
    check_format("int3-sym-channel", &[(37, 100)], "→ f16 (generic dequantize path)");
    // The INT kernels decode whole 8-code chunks: rows must be whole chunks.
    check_format("int4-sym-tensor", &[(37, 36)], "generic");
    // Blocks of 64 straddle rows of 96: the per-row kernel can't index them.
    check_format("nf4-b64", &[(37, 96)], "generic");
}

#[test]
fn every_gemv_strategy_covers_rows_past_its_workgroup() {
    let Some(gpu) = gpu() else { return };
    // Row counts around each strategy's rows per workgroup (64 / threads, 8·SG_ROWS,
    // 64·ROWS_PER_THREAD), a single row, and K shorter than one subgroup's stride (8 lanes × 8
    // values) or not a multiple of 8.
    // The subgroup GEMV takes 4 chunks per lane and step for INT and FP8 (2 for the others): K = 88
    // and 80 end on 3 and 2 chunks, through the per-chunk and per-pair scale paths of int4-asym-g8
    // (11 code words per row, padded to 12), int4-sym-g16 and FP8's half-vec4 dot8_row; f32 at K = 577 ends on 1. gemv_rows
    // walks K the same way (runs of 4 for INT at 16 rows/thread): 1031 rows (past 1024, not a
    // multiple of 4) and 259 rows end mid-thread and mid-workgroup on odd chunk counts.
    for (format, rows, cols) in [
        ("f32", 1, 5),
        ("q4_0", 33, 32),
        ("int4-sym-g32", 65, 96),
        ("f32", 97, 577),
        ("f32", 3, 80),
        ("int4-asym-g8", 9, 88),
        ("int4-sym-g16", 9, 80),
        ("fp8-e5m2-tensor", 9, 88),
        ("int4-asym-g8", 1031, 88),
        ("int3-asym-g8", 65, 88),
        ("int7-sym-g16", 9, 80),
        ("f32", 259, 40),
    ] {
        let m = matrix(format, rows, cols, 5);
        for strategy in GemvStrategy::supported(gpu) {
            let g = pollster::block_on(GpuMatrix::upload_with(gpu, format, &m, MatmulSetup::f32(strategy))).unwrap();
            check_products(gpu, &format!("{format} gemv {}", strategy.label()), &m, &g, 1, 0.0);
        }
    }
    let m = matrix("f32", 2, 8, 1);
    let odd = GemvStrategy::Workgroup { row_threads: 3 };
    let err = pollster::block_on(GpuMatrix::upload_with(gpu, "odd", &m, MatmulSetup::f32(odd)))
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("power of two") && err.contains('3'), "{err}");
    let too_many = GemvStrategy::Subgroup { rows: 65 };
    let err = pollster::block_on(GpuMatrix::upload_with(gpu, "too many", &m, MatmulSetup::f32(too_many)))
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("1 to 64") && err.contains("65"), "{err}");
    for rows in [0, 17] {
        let bad = GemvStrategy::Rows { rows };
        let err = pollster::block_on(GpuMatrix::upload_with(gpu, "bad rows", &m, MatmulSetup::f32(bad)))
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("1 to 16") && err.contains(&rows.to_string()), "{err}");
    }
}

#[test]
fn the_gemv_strategy_follows_the_adapter_features() {
    let Some(gpu) = gpu() else { return };
    let subgroup_strategies = |g: &GpuContext| {
        GemvStrategy::supported(g).into_iter().filter(|s| matches!(s, GemvStrategy::Subgroup { .. })).count()
    };
    // This adapter as it is: subgroups (lavapipe has them) → the subgroup GEMV by default.
    let has = gpu.adapter.subgroups;
    let default = GemvStrategy::default_for(gpu);
    assert_eq!(matches!(default, GemvStrategy::Subgroup { .. }), has, "{:?}: {default:?}", gpu.adapter);
    assert_eq!(subgroup_strategies(gpu) > 0, has);
    if gpu.adapter.name.contains("llvmpipe") {
        assert!(has, "lavapipe exposes subgroups, but the device was created without them");
    }
    if has {
        // With subgroups the row count depends on the adapter type (see default_for).
        let mut gpu_like = GpuContext::acquire_blocking().expect("second device");
        for (fallback, rows) in [(true, 64), (false, 1)] {
            gpu_like.adapter.is_fallback = fallback;
            assert_eq!(GemvStrategy::default_for(&gpu_like), GemvStrategy::Subgroup { rows });
        }
        let m = matrix("q4_1", 37, 96, 2);
        let g = pollster::block_on(GpuMatrix::upload(&gpu_like, "gpu-like", &m)).expect("upload");
        assert_eq!(g.gemv_strategy(), GemvStrategy::Subgroup { rows: 1 });
        check_products(&gpu_like, "q4_1 subgroup/row", &m, &g, 1, 0.0);
    }
    // A device that reports no subgroups (a second device with the flag cleared, as on adapters
    // without the feature): portable strategies only, the subgroup one refused before any
    // subgroup module is created, and the per-adapter-type default.
    let mut without = GpuContext::acquire_blocking().expect("second device");
    without.adapter.subgroups = false;
    assert_eq!(subgroup_strategies(&without), 0);
    let m = matrix("q4_0", 37, 64, 3);
    let sub = GemvStrategy::Subgroup { rows: 1 };
    let err = pollster::block_on(GpuMatrix::upload_with(&without, "w", &m, MatmulSetup::f32(sub)))
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("needs subgroups") && err.contains(&without.adapter.name), "{err}");
    // Software adapter (SwiftShader in Chromium) → 16 rows per thread; GPU → 64 threads per row.
    for (fallback, strategy) in
        [(true, GemvStrategy::Rows { rows: 16 }), (false, GemvStrategy::Workgroup { row_threads: 64 })]
    {
        without.adapter.is_fallback = fallback;
        assert_eq!(GemvStrategy::default_for(&without), strategy);
        let g = pollster::block_on(GpuMatrix::upload(&without, "w", &m)).expect("upload");
        assert_eq!(g.gemv_strategy(), strategy);
        check_products(&without, "q4_0 without subgroups", &m, &g, 1, 0.0);
    }
}

#[test]
fn matrices_of_one_format_share_pipelines() {
    let Some(gpu) = gpu() else { return };
    let a = matrix("q4_0", 3, 64, 1);
    let b = matrix("q4_0", 40, 128, 2);
    pollster::block_on(GpuMatrix::upload(gpu, "a", &a)).unwrap();
    let before = gpu.cached_pipeline_count();
    pollster::block_on(GpuMatrix::upload(gpu, "b", &b)).unwrap();
    assert_eq!(gpu.cached_pipeline_count(), before, "a second Q4_0 matrix compiled new pipelines");
}

/// A second device whose binding limit is lowered to `limit` bytes.
fn device_with_limit(limit: u64) -> GpuContext {
    let mut small = GpuContext::acquire_blocking().expect("second device");
    small.adapter.max_storage_buffer_binding_size = limit;
    small
}

#[test]
fn a_matrix_over_the_binding_limit_is_split_into_row_ranges() {
    let Some(_) = gpu() else { return };
    // 70 rows of 576 Q8_0 values: 144 code words per row; 4 KiB fits 7 rows → 10 ranges.
    let small = device_with_limit(4096);
    let m = matrix("q8_0", 70, 576, 9);
    let g = pollster::block_on(GpuMatrix::upload(&small, "split", &m)).expect("split upload");
    assert!(g.kernel_label().contains("split into 10 row ranges"), "{}", g.kernel_label());
    for n in [1, 7] {
        check_products(&small, "split q8_0", &m, &g, n, 0.0);
    }
    check_gather(&small, "split q8_0", &m, &g, false, false);
    // A per-tensor scale (and zero point) is one shared array every range binds whole.
    for format in ["fp8-e4m3-tensor", "int8-asym-tensor"] {
        let m = matrix(format, 70, 576, 9);
        let g = pollster::block_on(GpuMatrix::upload(&small, "split", &m)).expect("split upload");
        assert!(g.kernel_label().contains("(dedicated), split into 10 row ranges"), "{}", g.kernel_label());
        check_products(&small, &format!("split {format}"), &m, &g, 1, 0.0);
        check_products(&small, &format!("split {format}"), &m, &g, 7, 0.0);
        check_gather(&small, &format!("split {format}"), &m, &g, false, false);
    }
}

#[test]
fn a_row_over_the_binding_limit_is_refused_with_sizes() {
    let Some(_) = gpu() else { return };
    let small = device_with_limit(1024);
    let m = matrix("f32", 2, 576, 3);
    let err = pollster::block_on(GpuMatrix::upload(&small, "wide", &m)).err().expect("refused");
    let msg = err.to_string();
    assert!(matches!(err, GpuError::BufferTooLarge { .. }), "{msg}");
    assert!(msg.contains("one row of wide") && msg.contains("2304") && msg.contains("1024"), "{msg}");
}

#[test]
fn too_small_io_buffers_are_an_error_not_a_gpu_fault() {
    let Some(gpu) = gpu() else { return };
    let m = matrix("q4_1", 8, 64, 4);
    let g = pollster::block_on(GpuMatrix::upload(gpu, "q", &m)).unwrap();
    let x = storage(gpu, bytemuck::cast_slice(&values(64, 1)));
    let y = storage(gpu, &[0u8; 32]);
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    let err = g.encode(gpu, &mut enc, &x, &y, 2).unwrap_err().to_string();
    assert!(err.contains("x") && err.contains("512"), "{err}");
}

#[test]
fn empty_matrices_are_refused() {
    let Some(gpu) = gpu() else { return };
    let empty = Matrix::from_f32(Vec::new(), TensorShape::new(0, 8)).unwrap();
    let err = pollster::block_on(GpuMatrix::upload(gpu, "empty", &empty)).err().expect("refused");
    assert!(err.to_string().contains("empty 0×8"), "{err}");
}
