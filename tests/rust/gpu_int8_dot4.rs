//! W8A8 integer products on the GPU (`quantlab::gpu::int8_dot4`, shaders/matmul_int8_dot4.wgsl)
//! against their CPU twin, the CPU integer path (`--matmul int8 --activations int8-token`:
//! `TokenCodes::per_token` and `Σq_x·q_w` in i32 times `s_x·s_w`), for both variants
//! (dot4I8Packed and the unpacked fallback) and GEMV splits (4 and 1 rows per invocation, 32 threads
//! per row) on awkward shapes: K not a multiple of 4 or 16, rows
//! not a multiple of the 64-thread workgroup, 1, 3, 7 and 33 tokens (33: a GEMM with a partial
//! last group of 4 tokens), an all-zero token row and a token of tiny values.
//!
//! Everything is compared bit for bit: the codes, the token scales and the outputs. The module
//! docs of `gpu::int8_dot4` derive why that holds (exact integer sums, correctly rounded division
//! by integer steps, the epilogue's operations in the CPU's order); a wrong sign extension, byte
//! order, padding or scale shows up as a difference of whole codes.

use quantlab::formats::{quantize, QuantScheme, TensorShape};
use quantlab::gpu::int8_dot4::{div_rn, idot4, pack_codes, GpuInt8Matrix, Int8Gemv, IntDotVariant, MAX_COLS};
use quantlab::gpu::GpuError;
use quantlab::model::int_path::product_as_forward;
use quantlab::model::llm_int8::TokenCodes;
use quantlab::model::{
    ActGranularity, ActHead, ActQuant, ActQuantizer, ActType, LinearInput, MatmulPath, Matrix, PathStats,
};

use crate::gpu::{gpu, values};
use crate::gpu_matmul::matrix;

fn int8_token() -> ActQuantizer {
    let quant = ActQuant { ty: ActType::Int8, granularity: ActGranularity::PerToken };
    ActQuantizer::new(quant, ActHead::Float, None, 1).unwrap()
}

/// `n` token rows of `cols` values: row 0 all zero when `zero_row`, row 1 (if any) scaled to
/// ~1e-30 (a normal but tiny scale), the rest of varied magnitudes.
fn tokens(n: usize, cols: usize, seed: u32, zero_row: bool) -> Vec<f32> {
    let mut x = values(n * cols, seed);
    if zero_row {
        x[..cols].fill(0.0);
    }
    if n > 1 {
        x[cols..2 * cols].iter_mut().for_each(|v| *v *= 1e-30);
    }
    x
}

#[test]
fn w8a8_products_equal_the_cpu_integer_path_bit_for_bit() {
    let Some(gpu) = gpu() else { return };
    let variants = IntDotVariant::supported(gpu);
    // naga implements the extension natively (OpSDot or its polyfill): both variants run here.
    assert_eq!(variants, IntDotVariant::ALL, "adapter {}", gpu.adapter.label());
    assert_eq!(IntDotVariant::default_for(gpu), IntDotVariant::Dot4I8Packed);
    let act = int8_token();
    let input = LinearInput::Attention { layer: 0 };
    for (i, &(rows, cols, n)) in
        [(1, 5, 1), (67, 77, 1), (130, 1001, 1), (33, 77, 3), (70, 204, 7), (5, 300, 33)].iter().enumerate()
    {
        let m = matrix("int8-sym-channel", rows, cols, 10 + i as u32);
        let x = tokens(n, cols, 20 + i as u32, i % 2 == 1);
        let mut stats = PathStats::default();
        let want = product_as_forward(&m, Some(&act), MatmulPath::Int8, input, &x, 1, &mut stats);
        assert_eq!((stats.integer, stats.float), (1, 0), "the CPU twin ran its integer path");
        let codes = TokenCodes::per_token(&x, cols);
        let gemvs = [Int8Gemv::RowRun { rows: 4 }, Int8Gemv::RowRun { rows: 1 }, Int8Gemv::Threads { threads: 32 }];
        for (variant, gemv) in variants.iter().flat_map(|v| gemvs.map(|g| (*v, g))) {
            let g = pollster::block_on(GpuInt8Matrix::upload_with(gpu, "w", &m, variant, gemv)).unwrap();
            let got = pollster::block_on(g.product(gpu, &x, n)).unwrap();
            let what = format!("{} {gemv:?} {rows}×{cols}, n = {n}", variant.name());
            assert_eq!(got.codes, codes.codes, "codes, {what}");
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got.scales), bits(&codes.scales), "token scales, {what}");
            assert_eq!(bits(&got.y), bits(&want), "outputs, {what}");
        }
    }
}

#[test]
fn w8a8_refuses_what_it_cannot_multiply() {
    let Some(gpu) = gpu() else { return };
    let v = IntDotVariant::Unpacked;
    for format in ["int4-sym-channel", "int8-sym-g32", "int8-asym-channel", "q8_0", "f32"] {
        let m = matrix(format, 2, 64, 1);
        match pollster::block_on(GpuInt8Matrix::upload(gpu, "w", &m, v)) {
            Err(GpuError::Validation { message, .. }) => assert!(message.contains("int8-sym-channel"), "{message}"),
            other => panic!("{format}: {:?}", other.map(|g| g.kernel_label())),
        }
    }
    // A row long enough to overflow the i32 sums.
    let cols = MAX_COLS + 1;
    let shape = TensorShape::new(1, cols);
    let q = quantize(&QuantScheme::parse("int8-sym-channel").unwrap(), &vec![1.0; cols], shape).unwrap();
    let long = Matrix::from_quantized(q).unwrap();
    let Err(GpuError::Validation { message, .. }) = pollster::block_on(GpuInt8Matrix::upload(gpu, "w", &long, v))
    else {
        panic!("a row of {cols} values was accepted")
    };
    assert!(message.contains("overflow"), "{message}");
    // GEMV splits the shader cannot run.
    for gemv in [Int8Gemv::RowRun { rows: 5 }, Int8Gemv::RowRun { rows: 0 }, Int8Gemv::Threads { threads: 48 }] {
        let m = matrix("int8-sym-channel", 2, 64, 1);
        assert!(matches!(
            pollster::block_on(GpuInt8Matrix::upload_with(gpu, "w", &m, v, gemv)),
            Err(GpuError::Validation { .. })
        ));
    }
    // Activations of the wrong length, and no tokens.
    let g = pollster::block_on(GpuInt8Matrix::upload(gpu, "w", &matrix("int8-sym-channel", 3, 8, 2), v)).unwrap();
    assert!(matches!(pollster::block_on(g.product(gpu, &[0.0; 7], 1)), Err(GpuError::Validation { .. })));
    assert!(matches!(pollster::block_on(g.product(gpu, &[], 0)), Err(GpuError::Validation { .. })));
}

/// The integer division equals IEEE division over a spread of mantissas and exponents,
/// including the quotients the kernel takes (max|x| / 127 and 1 / s).
#[test]
fn div_rn_is_ieee_division() {
    let mut s = 0x1234_5678u32;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        s
    };
    for _ in 0..200_000 {
        // Exponents within ±40 of 1 keep every quotient normal.
        let a = f32::from_bits((next() & 0x7F_FFFF) | ((87 + next() % 80) << 23));
        let b = f32::from_bits((next() & 0x7F_FFFF) | ((87 + next() % 80) << 23));
        assert_eq!(div_rn(a, b).to_bits(), (a / b).to_bits(), "{a:e} / {b:e}");
        assert_eq!(div_rn(a, 127.0).to_bits(), (a / 127.0).to_bits(), "{a:e} / 127");
        assert_eq!(div_rn(1.0, a).to_bits(), (1.0 / a).to_bits(), "1 / {a:e}");
    }
    // Exact quotients and the smallest normal scale.
    assert_eq!(div_rn(127.0, 127.0), 1.0);
    assert_eq!(div_rn(3.0, 2.0), 1.5);
    let tiny = f32::from_bits(0x03FE_0000);
    assert_eq!(div_rn(tiny, 127.0), f32::MIN_POSITIVE);
}

#[test]
fn idot4_and_packing() {
    let a = pack_codes([1i8, -2, 127, -127, 5].into_iter());
    let b = pack_codes([3i8, 4, -127, -127, 7].into_iter());
    assert_eq!(a.len(), 2);
    assert_eq!(idot4(a[0], b[0]), 3 - 8 - 127 * 127 + 127 * 127);
    assert_eq!(idot4(a[1], b[1]), 35);
}

// ---- the GPU forward with int8-token inputs ---------------------------------------------------

/// The GPU forward with int8-token layer inputs (`LayerInputs::Int8Token`, what `quantlab
/// generate --device gpu --activations int8-token` runs) on a model whose block matrices are
/// int8-sym-channel (LLM.int8()'s vector-wise weights of act_quant's two-layer model, with
/// outlier channels) against the CPU forward's integer path (int8-token, `MatmulPath::Int8`):
/// every block product ran as an integer product (the counter), the greedy continuation is the
/// CPU's, and the logits agree to float-reordering distance. They are not bit-equal: the rest of
/// the GPU forward (RMSNorm, attention, the f32 classifier) sums in other orders, and a 1-ulp
/// difference in an input may move one activation code by 1. Measured on lavapipe (2026-12-07):
/// max |Δ| 1.9e-6 over the logits, both variants; the bound is 50× that, far below what a wrong
/// code or scale does (whole units of a logit).
#[test]
fn gpu_forward_with_int8_token_inputs_follows_the_cpu_integer_path() {
    use quantlab::gpu::forward::{GpuModel, KvFormat, LayerInputs};
    use quantlab::gpu::matmul::ActivationPrecision;
    use quantlab::model::llm_int8::llm_int8_model;
    use quantlab::model::sampler::argmax;
    use quantlab::model::{forward, State};

    let Some(gpu) = gpu() else { return };
    let m = llm_int8_model(&crate::act_quant::model(8.0)).unwrap();
    let prompt = crate::act_quant::tokens(5, 3);
    let steps = 12;
    let positions = prompt.len() + steps - 1;
    // The CPU's greedy continuation, one position at a time.
    let mut state = State::new(&m.config, positions);
    state.act = Some(int8_token());
    state.matmul = MatmulPath::Int8;
    let mut seq = prompt.clone();
    let mut cpu_logits = Vec::new();
    for pos in 0..positions {
        let l = forward(&m.config, &m.weights, &mut state, seq[pos], pos).to_vec();
        if pos + 1 >= prompt.len() {
            seq.push(argmax(&l));
        }
        cpu_logits.push(l);
    }
    assert!(state.stats.integer > 0 && state.stats.float > 0, "{:?}", state.stats);
    let per_position = 7 * m.config.n_layers as u64;
    for variant in IntDotVariant::supported(gpu) {
        let g = |m| {
            let inputs = LayerInputs::Int8Token(variant);
            GpuModel::new_with_blocking(gpu, m, positions, KvFormat::F32, ActivationPrecision::F32, inputs)
        };
        let mut g = g(&m).unwrap();
        assert!(
            g.kernel_summary().contains(&format!("INT8 W8A8 ({}, i32 sums) x14", variant.name())),
            "{}",
            g.kernel_summary()
        );
        // Prefill of the prompt in one batch (the integer GEMM), then decode (the GEMV).
        pollster::block_on(g.forward(&prompt, 0)).unwrap();
        let last = pollster::block_on(g.read_logits()).unwrap().to_vec();
        let mut worst = max_diff(&last, &cpu_logits[prompt.len() - 1]);
        let mut gpu_seq = prompt.clone();
        gpu_seq.push(argmax(&last));
        for pos in prompt.len()..positions {
            let l = pollster::block_on(g.logits(gpu_seq[pos], pos)).unwrap().to_vec();
            worst = worst.max(max_diff(&l, &cpu_logits[pos]));
            gpu_seq.push(argmax(&l));
        }
        eprintln!("{}: max |Δ logit| {worst:e}", variant.name());
        assert_eq!(gpu_seq, seq, "{}: greedy tokens", variant.name());
        assert!(worst < 1e-4, "{}: max |Δ logit| {worst}", variant.name());
        assert_eq!(g.integer_products(), per_position * (1 + steps as u64 - 1), "one batch, then a product per step");
    }
    // Weights the integer products cannot take are refused, naming the matrix.
    let f32_model = crate::act_quant::model(8.0);
    let inputs = LayerInputs::Int8Token(IntDotVariant::Unpacked);
    let err = GpuModel::new_with_blocking(gpu, &f32_model, 8, KvFormat::F32, ActivationPrecision::F32, inputs)
        .err()
        .expect("f32 block matrices with int8-token inputs");
    assert!(err.to_string().contains("blk.0.attn_q is F32") && err.to_string().contains("int8-sym-channel"), "{err}");
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

/// `quantlab generate --device gpu --activations int8-token` on the default model quantized to
/// int8-sym-channel: the kernel line names the integer kernel for all 210 block matrices, and the
/// greedy text equals the CPU integer path's (`--device cpu --matmul int8`). Two loads and
/// quantizations of the default model (a few seconds of CPU each; on a loaded machine lavapipe's
/// decode makes the GPU run the longer one).
#[test]
fn cli_generate_runs_w8a8_on_the_gpu() {
    if gpu().is_none() {
        return;
    }
    let Some(path) = crate::gguf::model_path() else { return };
    let run = |device: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_quantlab"))
            .arg("generate")
            .arg(&path)
            .args(["-p", "The whale", "-n", "6", "-f", "int8-sym-channel", "--activations", "int8-token"])
            .args(device)
            .output()
            .expect("run quantlab")
    };
    let (g, c) = (run(&["--device", "gpu"]), run(&["--device", "cpu", "--matmul", "int8"]));
    let err = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(g.status.success() && c.status.success(), "{}\n{}", err(&g), err(&c));
    assert!(err(&g).contains("INT8 W8A8 (dot4I8Packed, i32 sums) x210"), "{}", err(&g));
    assert!(err(&g).contains("device: gpu (--device gpu); KV cache f32 (GPU), activations int8-token"), "{}", err(&g));
    assert!(err(&c).contains("matmul int8: 1260 products by integer dots"), "{}", err(&c));
    assert!(!g.stdout.is_empty());
    assert_eq!(String::from_utf8_lossy(&g.stdout), String::from_utf8_lossy(&c.stdout));
}
