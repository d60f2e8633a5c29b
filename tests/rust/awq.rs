//! AWQ against an independent numpy port of the published search (scripts/dev/awq_reference.py,
//! fixtures in tests/fixtures/awq/), and against round to nearest on a real layer.
//!
//! What is exact and why: `mean |x|` of the f16-valued inputs is exact in f64 in any order; the
//! scales are the same f64 operations (C `pow`, the normalisation) rounded to f32; `W·s`, the
//! quantizer, `/s`, `x/s` and the clamps are the same single f32 operations. Only the output
//! differences are summed differently (f64 matrix products there, f32 dot products with 8
//! partial sums here), a relative difference near 1e-6 in each loss — far below the margin
//! between the best ratio and the runner-up the script records (checked here) and below any
//! real gap between two clip candidates. So the ratio, the scales, the clip values and the
//! decoded weights are compared exactly; the losses within 1e-4 relative.

use half::f16;
use quantlab::formats::{QuantScheme, TensorShape};
use quantlab::methods::awq::{quantize, Activations, Clip, Linear};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Deserialize)]
struct Manifest {
    rows: usize,
    cols: usize,
    tokens: usize,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    scheme: String,
    ratio_index: usize,
    losses: Vec<f64>,
    best_loss_margin: f64,
}

fn read(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/awq").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn f16s(name: &str) -> Vec<f32> {
    read(name).chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
}

fn f32s(name: &str) -> Vec<f32> {
    read(name).chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

/// `mean |x|` per column in f64 (exact for these inputs), stored as f32.
fn abs_mean(x: &[f32], cols: usize) -> Vec<f32> {
    let mut sum = vec![0f64; cols];
    for row in x.chunks_exact(cols) {
        for (s, &v) in sum.iter_mut().zip(row) {
            *s += f64::from(v.abs());
        }
    }
    let n = (x.len() / cols) as f64;
    sum.iter().map(|&s| (s / n) as f32).collect()
}

#[test]
fn awq_matches_the_numpy_reference() {
    let m: Manifest = serde_json::from_slice(&read("manifest.json")).unwrap();
    let (w, x) = (f16s("w.f16.bin"), f16s("x.f16.bin"));
    assert_eq!((w.len(), x.len()), (m.rows * m.cols, m.tokens * m.cols));
    let mean = abs_mean(&x, m.cols);
    let acts = Activations { rows: &x, abs_mean: &mean };
    assert_eq!(m.cases.len(), 2);
    for case in &m.cases {
        assert!(case.best_loss_margin > 1e-3, "{}: the fixture's best ratio is not clear", case.scheme);
        let scheme = QuantScheme::parse(&case.scheme).unwrap();
        let linear = Linear { scheme: &scheme, weights: &w, shape: TensorShape::new(m.rows, m.cols) };
        let out = quantize(linear, &acts, Clip::Search).unwrap();
        assert_eq!(out.choice.ratio_index, case.ratio_index, "{}", case.scheme);
        for (i, (a, b)) in out.choice.losses.iter().zip(&case.losses).enumerate() {
            assert!((a - b).abs() <= 1e-4 * b, "{} ratio {i}: loss {a} vs {b}", case.scheme);
        }
        assert_eq!(out.choice.scales, f32s(&format!("{}.scales.f32.bin", case.scheme)), "{}", case.scheme);
        assert_eq!(out.clip.as_deref(), Some(&f32s(&format!("{}.clip.f32.bin", case.scheme))[..]), "{}", case.scheme);
        let expected = f32s(&format!("{}.deq.f32.bin", case.scheme));
        let differing = out.values.iter().zip(&expected).filter(|(a, b)| a != b).count();
        assert_eq!(differing, 0, "{}: {differing} of {} weights differ", case.scheme, expected.len());
        assert_eq!(out.tensor.scheme(), scheme);
        // The scales protect the salient channels: AWQ's output error is below the unscaled
        // ratio 0's (round to nearest of the unscaled weights, before clipping).
        assert!(case.losses[case.ratio_index] < case.losses[0]);
    }
}

/// Σ over the rows `x` of ‖x·(W − Ŵ)ᵀ‖²: a matrix's output error on those inputs.
fn output_error(x: &[f32], w: &[f32], w_hat: &[f32], cols: usize) -> f64 {
    let mut total = 0f64;
    for (a, b) in w.chunks_exact(cols).zip(w_hat.chunks_exact(cols)) {
        for xt in x.chunks_exact(cols) {
            let e: f64 = xt.iter().zip(a.iter().zip(b)).map(|(&x, (&p, &q))| f64::from(x) * f64::from(p - q)).sum();
            total += e * e;
        }
    }
    total
}

/// Tokens of a calibration chapter (never the eval chapters 1–3), or None when data/ is absent.
pub fn chapter_tokens(tokenizer: &quantlab::tokenizer::Tokenizer, n: usize) -> Option<Vec<u32>> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../data/moby-dick/chapter_{n}.json"));
    let Ok(raw) = std::fs::read_to_string(&p) else {
        eprintln!("note: skipping, {} not found", p.display());
        return None;
    };
    let text: serde_json::Value = serde_json::from_str(&raw).unwrap();
    Some(tokenizer.encode(text["text"].as_str().unwrap(), false, false))
}

/// Layer 0 of the default model at int4-asym-g64: AWQ (scales and clips from chapter 4, each
/// matrix with its `1/s` folded back in) has a lower output error than round to nearest on
/// held-out chapter 5, for the q/k/v group (scaled together) and for ffn_down.
#[test]
fn awq_beats_rtn_on_real_layers() {
    use quantlab::calib::{collect, CalibHooks, ChunkPlan, LinearInput};
    use quantlab::gguf::GgufFile;
    use quantlab::methods::awq::{clip_and_quantize, scale_columns, scale_inputs, search_scales};
    use quantlab::methods::awq_model::AwqStats;
    use quantlab::model::Model;
    use quantlab::tokenizer::Tokenizer;

    let Some(path) = crate::gguf::model_path() else { return };
    let bytes = std::fs::read(path).unwrap();
    let gguf = GgufFile::parse(&bytes, bytes.len() as u64).unwrap();
    let mut model = Model::from_gguf(&gguf, &bytes).unwrap();
    model.config.n_layers = 1;
    model.weights.layers.truncate(1);
    let tokenizer = Tokenizer::from_gguf(&gguf).unwrap();
    let (Some(calib), Some(heldout)) = (chapter_tokens(&tokenizer, 4), chapter_tokens(&tokenizer, 5)) else { return };
    let observe = |tokens: &[u32], input: LinearInput| {
        // Every other position of one 256-token chunk: 128 rows for the losses.
        let mut stats = AwqStats::new(input, 2);
        let plan = ChunkPlan::new(256, 256, tokenizer.bos_id());
        collect(&model, tokens, &plan, &mut stats, CalibHooks::default()).unwrap();
        stats
    };
    let layer = &model.weights.layers[0];
    let groups = [
        (LinearInput::Attention { layer: 0 }, vec![&layer.wq, &layer.wk, &layer.wv]),
        (LinearInput::FfnDown { layer: 0 }, vec![&layer.w_down]),
    ];
    for (input, matrices) in groups {
        let (stats, test) = (observe(&calib, input), observe(&heldout, input));
        let weights: Vec<Vec<f32>> = matrices.iter().map(|m| m.to_f32()).collect();
        let shape = matrices[0].shape();
        let cols = shape.cols;
        {
            // q4_0 is covered by the golden test; one format keeps this test cheap.
            let format = "int4-asym-g64";
            let scheme = QuantScheme::parse(format).unwrap();
            let linears: Vec<Linear> = weights
                .iter()
                .zip(&matrices)
                .map(|(w, m)| Linear { scheme: &scheme, weights: w, shape: m.shape() })
                .collect();
            let mean = stats.abs_mean();
            let choice = search_scales(&linears, &Activations { rows: stats.sample(), abs_mean: &mean }).unwrap();
            let x = scale_inputs(stats.sample(), &choice.scales);
            let (mut e_awq, mut e_rtn) = (0.0, 0.0);
            for (w, m) in weights.iter().zip(&matrices) {
                let scaled = scale_columns(w, &choice.scales);
                let lin = Linear { scheme: &scheme, weights: &scaled, shape: m.shape() };
                let (t, _) = clip_and_quantize(lin, &x, Clip::Search).unwrap();
                let effective = scale_inputs(&t.dequantize().unwrap(), &choice.scales);
                let rtn = quantlab::formats::quantize(&scheme, w, m.shape()).unwrap().dequantize().unwrap();
                e_awq += output_error(test.sample(), w, &effective, cols);
                e_rtn += output_error(test.sample(), w, &rtn, cols);
            }
            eprintln!(
                "{input:?} {format}: ratio {}/20, held-out output error AWQ/RTN = {:.3}",
                choice.ratio_index,
                e_awq / e_rtn
            );
            assert!(e_awq < e_rtn, "{input:?} {format}: AWQ {e_awq} ≥ RTN {e_rtn}");
        }
    }
}

/// The default model cut to its first layer, written as a GGUF in `dir` (None without the model).
fn one_layer_copy(dir: &std::path::Path) -> Option<PathBuf> {
    use quantlab::gguf::{GgufFile, MetadataValue};
    use quantlab::io::gguf_writer::GgufWriter;

    let bytes = std::fs::read(crate::gguf::model_path()?).unwrap();
    let f = GgufFile::parse(&bytes, bytes.len() as u64).unwrap();
    let mut w = GgufWriter::with_metadata(f.metadata.clone()).unwrap();
    let arch = f.get_str("general.architecture").unwrap().to_string();
    w.set(&format!("{arch}.block_count"), MetadataValue::U32(1)).unwrap();
    let mut data = Vec::new();
    for t in f.tensors.iter().filter(|t| !t.name.starts_with("blk.") || t.name.starts_with("blk.0.")) {
        w.add_tensor(&t.name, &t.dims, t.ty).unwrap();
        data.push(f.tensor_data(&bytes, t).unwrap());
    }
    let path = dir.join("one-layer.gguf");
    std::fs::write(&path, w.to_bytes(&data).unwrap()).unwrap();
    Some(path)
}

/// `quantlab quantize --method awq` on a one-layer copy of the default model: every layer
/// matrix comes from AWQ, the norms carry the folded scales, the file loads and runs, and
/// `eval --method awq`'s in-memory model is the same model.
#[test]
fn cli_quantize_and_eval_with_awq_agree() {
    use quantlab::cli::quantize::{self, Method, MethodArgs, QuantizeArgs};
    use quantlab::formats::GgmlType;
    use quantlab::gguf::GgufFile;
    use quantlab::model::{Model, TensorPolicy};
    use quantlab::policy::Target;
    use quantlab::tokenizer::Tokenizer;

    let dir = tempfile::tempdir().unwrap();
    let Some(input) = one_layer_copy(dir.path()) else { return };
    let output = dir.path().join("awq.q4_0.gguf");
    // A 32-token calibration run: this checks the plumbing, not AWQ's quality.
    let method = MethodArgs { method: Method::Awq, calib_tokens: 32, ..MethodArgs::default() };
    let args = QuantizeArgs { method: method.clone(), ..QuantizeArgs::new(&input, "q4_0", &output) };
    let report = quantize::run(&args).unwrap();
    assert!(report.contains("AWQ quantized 7 tensors"), "{report}");
    assert!(report.contains("3 groups scaled, 1 clipped only"), "{report}");

    let src = std::fs::read(&input).unwrap();
    let original = Model::from_gguf_bytes(&src).unwrap();
    let bytes = std::fs::read(&output).unwrap();
    let f = GgufFile::parse(&bytes, bytes.len() as u64).unwrap();
    assert_eq!(f.tensor("blk.0.attn_q.weight").unwrap().ty, GgmlType::Q4_0);
    let written = Model::from_gguf(&f, &bytes).unwrap();
    let (a, b) = (&written.weights.layers[0], &original.weights.layers[0]);
    assert_ne!(a.attn_norm, b.attn_norm, "the attention scales are folded into attn_norm");
    assert_ne!(a.ffn_norm, b.ffn_norm, "the FFN scales are folded into ffn_norm");
    let mut state = quantlab::model::State::new(&written.config, 8);
    for pos in 0..4 {
        let logits = quantlab::model::forward(&written.config, &written.weights, &mut state, 100 + pos as u32, pos);
        assert!(logits.iter().all(|v| v.is_finite()));
    }

    // eval's in-memory quantization: the same norms and matrices.
    let gguf = GgufFile::parse(&src, src.len() as u64).unwrap();
    let tokenizer = Tokenizer::from_gguf(&gguf).unwrap();
    let target = Target::parse("q4_0").unwrap();
    let policy = TensorPolicy { mix: target.mix, ..TensorPolicy::default() };
    let (q, _, line) =
        quantlab::cli::awq::quantize_model_awq(&original, &tokenizer, &target.scheme, &policy, &method).unwrap();
    assert!(line.contains("AWQ quantized 7 tensors"), "{line}");
    let m = &q.weights.layers[0];
    assert_eq!((&m.attn_norm, &m.ffn_norm), (&a.attn_norm, &a.ffn_norm));
    for ((name, x), (_, y)) in m.matrices().iter().zip(a.matrices()) {
        assert_eq!(x.to_f32(), y.to_f32(), "{name}");
    }
}

/// Multi-head attention (attn_v and attn_output of one shape), where the reference also scales
/// attn_output and folds `1/s` into the rows of attn_v: the tiny f32 checkpoint of
/// tests/fixtures/hf made multi-head (its key/value heads repeated), quantized with AWQ at 8
/// bits, computes the float model's logits as closely as round to nearest does — a fold on the
/// wrong side (or forgotten) would not.
#[test]
fn awq_folds_attn_output_scales_into_attn_v_with_multi_head_attention() {
    use quantlab::calib::sequential::run_sequential_with;
    use quantlab::calib::{CalibHooks, ChunkPlan, LinearInput};
    use quantlab::methods::awq_model::AwqLayers;
    use quantlab::model::{forward, Matrix, Model, State};
    use std::collections::BTreeMap;

    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/hf/f32-untied");
    let mut model = Model::from_hf_path(&dir).unwrap();
    let c = model.config.clone();
    let (hd, kv_mul) = (c.head_dim, c.n_heads / c.n_kv_heads);
    for layer in &mut model.weights.layers {
        for m in [&mut layer.wk, &mut layer.wv] {
            // Query head h reads key/value head h / kv_mul: repeat each kv head's rows.
            let (w, cols) = (m.to_f32(), m.shape().cols);
            let rows: Vec<f32> =
                (0..c.n_heads).flat_map(|h| w[(h / kv_mul) * hd * cols..][..hd * cols].to_vec()).collect();
            *m = Matrix::from_f32(rows, TensorShape::new(c.n_heads * hd, cols)).unwrap();
        }
    }
    model.config.n_kv_heads = c.n_heads;

    let scheme = QuantScheme::parse("int8-asym-g32").unwrap();
    let schemes: BTreeMap<String, QuantScheme> = (0..c.n_layers)
        .flat_map(|l| model.weights.layers[l].matrices().map(|(n, _)| format!("blk.{l}.{n}.weight")))
        .map(|n| (n, scheme))
        .collect();
    let tokens: Vec<u32> = (0..64u32).map(|i| (i * 37 + 11) % c.vocab_size as u32).collect();
    let mut awq = AwqLayers::new(&schemes, tokens.len());
    let (_, weights) =
        run_sequential_with(&model, &tokens, &ChunkPlan::new(64, 64, None), &mut awq, CalibHooks::default()).unwrap();
    assert_eq!(awq.awq_tensors, 7 * c.n_layers);
    let outputs = awq.choices.iter().filter(|g| matches!(g.input, LinearInput::AttentionOutput { .. }));
    let ratios: Vec<Option<usize>> = outputs.map(|g| g.ratio_index).collect();
    eprintln!("attn_output ratios: {ratios:?}");
    assert!(ratios.iter().all(Option::is_some) && ratios.iter().any(|r| *r != Some(0)), "{ratios:?}");

    let logit_error = |q: &Model| {
        let (mut s1, mut s2) = (State::new(&model.config, 16), State::new(&model.config, 16));
        let (mut err, mut norm) = (0f64, 0f64);
        for (pos, &t) in tokens[..16].iter().enumerate() {
            let a = forward(&model.config, &model.weights, &mut s1, t + 1, pos).to_vec();
            let b = forward(&q.config, &q.weights, &mut s2, t + 1, pos);
            err += a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum::<f64>();
            norm += a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>();
        }
        (err / norm).sqrt()
    };
    let quantized = Model { config: model.config.clone(), weights };
    let rtn = quantlab::model::quantize_model(&model, &scheme, &quantlab::model::TensorPolicy::default()).unwrap().0;
    let (e_awq, e_rtn) = (logit_error(&quantized), logit_error(&rtn));
    eprintln!("relative logit error at int8: AWQ {e_awq:.2e}, RTN {e_rtn:.2e}");
    // At 8 bits both stay near the float model (this small random model amplifies rounding to
    // about 2e-2 either way); the norms left unscaled give 0.27, a fold on the wrong side more.
    assert!(e_awq < 1.5 * e_rtn, "AWQ {e_awq}, RTN {e_rtn}");
}

/// `--method awq` needs a GGUF input (it runs the model) and is not combined with `--imatrix`.
#[test]
fn cli_refuses_awq_without_a_gguf_model_or_with_an_imatrix() {
    use quantlab::cli::quantize::{self, Method, MethodArgs, QuantizeArgs};

    let dir = tempfile::tempdir().unwrap();
    let method = MethodArgs { method: Method::Awq, ..MethodArgs::default() };
    let st = dir.path().join("model.safetensors");
    std::fs::write(&st, b"not read").unwrap();
    let args = QuantizeArgs { method: method.clone(), ..QuantizeArgs::new(&st, "q4_0", dir.path().join("o.gguf")) };
    let e = quantize::run(&args).unwrap_err().to_string();
    assert!(e.contains("--method awq needs a GGUF model"), "{e}");
    let gguf = dir.path().join("model.gguf");
    std::fs::write(&gguf, b"not read").unwrap();
    let imatrix = Some(dir.path().join("imatrix.gguf"));
    let args = QuantizeArgs { method, imatrix, ..QuantizeArgs::new(&gguf, "q4_0", dir.path().join("o.gguf")) };
    let e = quantize::run(&args).unwrap_err().to_string();
    assert!(e.contains("--imatrix and --method awq"), "{e}");
}
