//! GPTQ against an independent numpy port of the published algorithm
//! (scripts/dev/gptq_reference.py, fixtures in tests/fixtures/gptq/).
//!
//! The fixture's XᵀX is exact in f64 in any summation order (int8 inputs times powers of two),
//! the column updates are the same operations in the same order in both, and each weight is
//! rounded in f32 by the format's rule; the only difference is the Cholesky factor of H⁻¹
//! (LAPACK's route through three factorisations there, one factorisation here), a relative
//! difference near 1e-15, far below the f32 rounding of the values handed to the quantizer. So
//! the dequantized weights are compared exactly; a code could only differ for a weight within
//! about 1e-15 of a rounding boundary.

use half::f16;
use quantlab::formats::{GgmlType, QuantScheme, QuantizedTensor, TensorShape};
use quantlab::methods::gptq::{quantize, ColumnOrder, GptqOptions, SecondMomentRef};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Deserialize)]
struct Manifest {
    rows: usize,
    cols: usize,
    samples: usize,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    scheme: String,
    act_order: bool,
    deq: String,
}

fn read(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/gptq").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `Σ xᵀx` of the fixture's inputs, exact.
fn second_moment(m: &Manifest) -> Vec<f64> {
    let x8 = read("x.i8.bin");
    let exp = read("x_exp.i8.bin");
    let x: Vec<f64> =
        x8.iter().enumerate().map(|(i, &v)| f64::from(v as i8) * 2f64.powi(exp[i % m.cols] as i8 as i32)).collect();
    let mut xtx = vec![0f64; m.cols * m.cols];
    for row in x.chunks_exact(m.cols) {
        for i in 0..m.cols {
            for j in 0..m.cols {
                xtx[i * m.cols + j] += row[i] * row[j];
            }
        }
    }
    xtx
}

#[test]
fn gptq_matches_the_numpy_reference() {
    let m: Manifest = serde_json::from_slice(&read("manifest.json")).unwrap();
    let w: Vec<f32> = read("w.f16.bin").chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect();
    let xtx = second_moment(&m);
    let shape = TensorShape::new(m.rows, m.cols);
    assert_eq!(m.cases.len(), 5);
    for case in &m.cases {
        let scheme = QuantScheme::parse(&case.scheme).unwrap();
        let order = if case.act_order { ColumnOrder::ActOrder } else { ColumnOrder::Natural };
        let options = GptqOptions { order, ..Default::default() };
        let out = quantize(&scheme, &w, shape, SecondMomentRef { xtx: &xtx, samples: m.samples }, &options).unwrap();
        let expected: Vec<f32> =
            read(&case.deq).chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        let differing = out.values.iter().zip(&expected).filter(|(a, b)| a != b).count();
        assert_eq!(
            differing,
            0,
            "{} act_order={}: {differing} of {} weights differ",
            case.scheme,
            case.act_order,
            expected.len()
        );
        assert_eq!(out.tensor.dequantize().unwrap(), out.values);
        if scheme.ggml_type() == Some(GgmlType::Q4_0) {
            assert!(matches!(out.tensor, QuantizedTensor::Ggml(_)));
        }
    }
}

/// `Σ_r (w_r − ŵ_r)ᵀ·XᵀX·(w_r − ŵ_r)`: the squared output error ‖(W − Ŵ)Xᵀ‖² over the
/// calibration rows, from their second moment.
fn output_error(w: &[f32], wq: &[f32], xtx: &[f64], cols: usize) -> f64 {
    let mut total = 0.0;
    for (a, b) in w.chunks_exact(cols).zip(wq.chunks_exact(cols)) {
        let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| f64::from(x - y)).collect();
        for i in 0..cols {
            let row = &xtx[i * cols..(i + 1) * cols];
            total += d[i] * row.iter().zip(&d).map(|(h, dj)| h * dj).sum::<f64>();
        }
    }
    total
}

#[test]
fn gptq_beats_rtn_on_real_layers() {
    use quantlab::calib::{collect, CalibHooks, ChunkPlan, InputSelection, LinearInput, SecondMoment};
    use quantlab::gguf::GgufFile;
    use quantlab::model::Model;
    use quantlab::tokenizer::Tokenizer;

    let Some(path) = crate::gguf::model_path() else { return };
    let bytes = std::fs::read(path).unwrap();
    let gguf = GgufFile::parse(&bytes, bytes.len() as u64).unwrap();
    let mut model = Model::from_gguf(&gguf, &bytes).unwrap();
    // Only layer 0's inputs are used, and no later layer changes them: run layer 0 alone.
    model.config.n_layers = 1;
    model.weights.layers.truncate(1);
    let tokenizer = Tokenizer::from_gguf(&gguf).unwrap();
    // Calibration text: chapter 4; the error is measured on chapter 5 (held out, so GPTQ's fit
    // to the calibration rows does not count). Never the eval chapters 1–3.
    let chapter_tokens = |n: usize| crate::awq::chapter_tokens(&tokenizer, n);
    // More calibration rows than ffn_down's 1536 inputs: with fewer, its Hessian is singular
    // but for the damping and GPTQ fits the calibration rows at the held-out rows' expense.
    let mut calib_tokens = Vec::new();
    for n in [4, 6, 7] {
        let Some(t) = chapter_tokens(n) else { return };
        calib_tokens.extend(t);
    }
    let Some(heldout_tokens) = chapter_tokens(5) else { return };
    let inputs = [LinearInput::Attention { layer: 0 }, LinearInput::FfnDown { layer: 0 }];
    let second_moment = |tokens: &[u32]| {
        let mut stats = SecondMoment::new(InputSelection::Only(inputs.to_vec()));
        let plan = ChunkPlan::new(256, 3072, tokenizer.bos_id());
        let run = collect(&model, tokens, &plan, &mut stats, CalibHooks::default()).unwrap();
        assert!(run.tokens >= 256);
        stats
    };
    let (stats, heldout) = (second_moment(&calib_tokens), second_moment(&heldout_tokens));

    for (name, input) in [("blk.0.attn_q.weight", inputs[0]), ("blk.0.ffn_down.weight", inputs[1])] {
        let t = gguf.tensor(name).unwrap();
        let shape = TensorShape::new(t.n_rows() as usize, t.row_len() as usize);
        let mut w = vec![0f32; shape.len()];
        quantlab::formats::dequantize_row(t.ty, gguf.tensor_data(&bytes, t).unwrap(), &mut w).unwrap();
        let (gram, test) = (&stats.inputs[&input], &heldout.inputs[&input].xtx);
        assert_eq!(gram.dim, shape.cols);
        for format in ["int4-sym-g64", "int3-asym-g64", "q4_0"] {
            let scheme = QuantScheme::parse(format).unwrap();
            let rtn = quantlab::formats::quantize(&scheme, &w, shape).unwrap().dequantize().unwrap();
            let e_rtn = output_error(&w, &rtn, test, shape.cols);
            for order in [ColumnOrder::Natural, ColumnOrder::ActOrder] {
                let options = GptqOptions { order, ..Default::default() };
                let stats = SecondMomentRef { xtx: &gram.xtx, samples: gram.rows as usize };
                let out = quantize(&scheme, &w, shape, stats, &options).unwrap();
                let e = output_error(&w, &out.values, test, shape.cols);
                eprintln!("{name} {format} {order:?}: held-out output error GPTQ/RTN = {:.3}", e / e_rtn);
                assert!(e < e_rtn, "{name} {format} {order:?}: GPTQ {e} ≥ RTN {e_rtn}");
            }
        }
    }
}

#[test]
fn cli_quantize_with_gptq_writes_a_loadable_q4_0_gguf() {
    use quantlab::cli::quantize::{self, Method, MethodArgs, QuantizeArgs};
    use quantlab::gguf::GgufFile;

    let Some(input) = crate::gguf::model_path() else { return };
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("gptq.q4_0.gguf");
    let method = MethodArgs { method: Method::Gptq, calib_tokens: 256, ..MethodArgs::default() };
    let args = QuantizeArgs { method, ..QuantizeArgs::new(&input, "q4_0", &output) };
    let report = quantize::run(&args).unwrap();
    assert!(report.contains("GPTQ quantized 210 tensors"), "{report}");
    assert!(report.contains("layer-sequential"), "{report}");
    let bytes = std::fs::read(&output).unwrap();
    let f = GgufFile::parse(&bytes, bytes.len() as u64).unwrap();
    let t = f.tensor("blk.0.attn_q.weight").unwrap();
    assert_eq!(t.ty, GgmlType::Q4_0);
    // The model runs from the written file.
    let model = quantlab::model::Model::from_gguf(&f, &bytes).unwrap();
    assert_eq!(model.config.n_layers, 30);
    // GPTQ's codes are not round-to-nearest's.
    let src = std::fs::read(&input).unwrap();
    let g = GgufFile::parse(&src, src.len() as u64).unwrap();
    let ti = g.tensor("blk.0.attn_q.weight").unwrap();
    let mut w = vec![0f32; ti.n_elements() as usize];
    quantlab::formats::dequantize_row(ti.ty, g.tensor_data(&src, ti).unwrap(), &mut w).unwrap();
    let shape = TensorShape::new(ti.n_rows() as usize, ti.row_len() as usize);
    let rtn = quantlab::formats::quantize(&QuantScheme::ggml(GgmlType::Q4_0), &w, shape).unwrap();
    let QuantizedTensor::Ggml(rtn) = rtn else { panic!("a ggml tensor") };
    assert_ne!(f.tensor_data(&bytes, t).unwrap(), &rtn.data[..]);
}

/// `eval --method gptq`'s in-memory quantization on the first layers of the default model: every
/// layer matrix goes through GPTQ (the q4_0 file type keeps them all Q4_0), and the first step —
/// layer 0's q/k/v, whose input no quantized layer precedes — equals GPTQ run directly on the
/// float model's statistics of the same calibration chunks.
#[test]
fn in_memory_gptq_quantizes_every_layer_matrix_sequentially() {
    use quantlab::calib::{collect, CalibHooks, ChunkPlan, InputSelection, LinearInput, SecondMoment};
    use quantlab::cli::quantize::{Method, MethodArgs};
    use quantlab::model::{Model, TensorPolicy};
    use quantlab::policy::Target;
    use quantlab::tokenizer::Tokenizer;

    let Some(path) = crate::gguf::model_path() else { return };
    let bytes = std::fs::read(path).unwrap();
    let gguf = quantlab::gguf::GgufFile::parse(&bytes, bytes.len() as u64).unwrap();
    let tokenizer = Tokenizer::from_gguf(&gguf).unwrap();
    let mut model = Model::from_gguf(&gguf, &bytes).unwrap();
    model.config.n_layers = 2;
    model.weights.layers.truncate(2);
    let target = Target::parse("q4_0").unwrap();
    let policy = TensorPolicy { mix: target.mix, ..TensorPolicy::default() };
    let args = MethodArgs { method: Method::Gptq, calib_tokens: 128, ..MethodArgs::default() };
    let (q, report, line) =
        quantlab::cli::gptq::quantize_model_gptq(&model, &tokenizer, &target.scheme, &policy, &args).unwrap();
    assert!(line.contains("GPTQ quantized 14 tensors"), "{line}");
    assert!(report.tensors.iter().filter(|t| t.name.starts_with("blk.")).all(|t| t.actual == "q4_0"));

    // The same chunks through the float model: layer 0's attention input.
    let (text, _) = quantlab::cli::calib_text::calibration_text(None, 128).unwrap();
    let ids = tokenizer.encode(&text, false, false);
    let bos = if tokenizer.add_bos_default() { tokenizer.bos_id() } else { None };
    let plan = ChunkPlan::new(128, 128, bos);
    let input = LinearInput::Attention { layer: 0 };
    let mut stats = SecondMoment::new(InputSelection::Only(vec![input]));
    collect(&model, &ids, &plan, &mut stats, CalibHooks::default()).unwrap();
    let gram = &stats.inputs[&input];
    let w = model.weights.layers[0].wq.to_f32();
    let shape = model.weights.layers[0].wq.shape();
    let s = SecondMomentRef { xtx: &gram.xtx, samples: gram.rows as usize };
    let want = quantize(&QuantScheme::ggml(GgmlType::Q4_0), &w, shape, s, &GptqOptions::default()).unwrap();
    assert_eq!(q.weights.layers[0].wq.to_f32(), want.values);
    let rtn = quantlab::formats::quantize(&QuantScheme::ggml(GgmlType::Q4_0), &w, shape).unwrap();
    assert_ne!(want.values, rtn.dequantize().unwrap(), "GPTQ's codes are not round-to-nearest's");
}
