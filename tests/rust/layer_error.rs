//! The per-layer output error (crate/src/methods/layer_error.rs): the formula against a numpy
//! golden computed on the input rows themselves (scripts/dev/layer_error_reference.py,
//! tests/fixtures/layer_error/), and on the default model's first layer GPTQ's error below
//! round to nearest's for every matrix, AWQ's not above it.

use quantlab::calib::{ActivationObserver, CalibError, CalibHooks, InputSelection, LinearInput, SecondMoment};
use quantlab::formats::QuantScheme;
use quantlab::methods::gptq::GptqOptions;
use quantlab::methods::layer_error::{
    layer_errors, relative_output_error, Compared, LayerErrorError, LayerErrorOptions, TensorSelection,
};
use quantlab::model::{Model, TensorPolicy};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Deserialize)]
struct Golden {
    rows: usize,
    cols: usize,
    w: Vec<f32>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    x: Vec<f32>,
    w_hat: Vec<f32>,
    error: f64,
}

#[test]
fn relative_output_error_matches_the_numpy_definition() {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/layer_error/cases.json");
    let g: Golden = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    assert_eq!(g.w.len(), g.rows * g.cols);
    assert_eq!(g.cases.len(), 4);
    for case in &g.cases {
        // XᵀX from the collector calibration uses, fed the rows in two blocks.
        let input = LinearInput::Attention { layer: 0 };
        let mut stats = SecondMoment::new(InputSelection::Only(vec![input]));
        let half = (case.x.len() / g.cols / 2) * g.cols;
        stats.observe(input, &case.x[..half], g.cols);
        stats.observe(input, &case.x[half..], g.cols);
        let e = relative_output_error(&stats.inputs[&input], &g.w, &case.w_hat);
        if case.error == 0.0 {
            assert_eq!(e, 0.0, "{}", case.name);
        } else {
            let rel = (e - case.error).abs() / case.error;
            assert!(rel < 1e-9, "{}: {e} vs numpy {} (relative difference {rel:e})", case.name, case.error);
        }
    }
}

fn options(tensors: TensorSelection, methods: Vec<Compared>) -> LayerErrorOptions {
    LayerErrorOptions { tensors, methods, gptq: GptqOptions::default() }
}

/// Layer 0 of the default model at int4-sym-g64 on 512 calibration tokens (chapter 4, one chunk:
/// layer 0 alone keeps the two layer-sequential runs cheap): GPTQ < RTN for all 7 matrices,
/// AWQ ≤ RTN; the progress ends at its total; a cancel, an
/// unknown tensor and a format GPTQ does not take are clear errors.
#[test]
fn gptq_and_awq_beat_rtn_on_the_default_models_first_layers() {
    use quantlab::gguf::GgufFile;
    use quantlab::tokenizer::Tokenizer;

    let Some(path) = crate::gguf::model_path() else { return };
    let bytes = std::fs::read(path).unwrap();
    let gguf = GgufFile::parse(&bytes, bytes.len() as u64).unwrap();
    let model = Model::from_gguf(&gguf, &bytes).unwrap();
    let tokenizer = Tokenizer::from_gguf(&gguf).unwrap();
    let Some(tokens) = crate::awq::chapter_tokens(&tokenizer, 4) else { return };
    let (_, plan) = quantlab::calib::gptq_tokens(&tokenizer, "", 512, model.config.seq_len);
    let scheme = QuantScheme::parse("int4-sym-g64").unwrap();
    let policy = TensorPolicy::default();
    let names: Vec<String> =
        (0..1).flat_map(|l| model.weights.layers[l].matrices().map(|(k, _)| format!("blk.{l}.{k}.weight"))).collect();

    let mut last = (0, 0);
    let mut progress = |done: usize, total: usize| {
        last = (done, total);
        true
    };
    let hooks = CalibHooks { progress: Some(&mut progress) };
    let sel = TensorSelection::Only(names.clone());
    let out =
        layer_errors(&model, &tokens, &plan, &scheme, &policy, &options(sel, Compared::ALL.to_vec()), hooks).unwrap();
    assert_eq!(out.run.tokens, 512);
    assert_eq!(last.0, last.1, "the progress ends at its total");
    assert_eq!(last.1, 512 * (1 + 2 * 6));
    assert_eq!(out.rows.iter().map(|r| r.tensor.clone()).collect::<Vec<_>>(), names);
    for r in &out.rows {
        let (gptq, awq) = (r.gptq.unwrap(), r.awq.unwrap());
        eprintln!("{}: RTN {:.3e} GPTQ/RTN {:.3} AWQ/RTN {:.3}", r.tensor, r.rtn, gptq / r.rtn, awq / r.rtn);
        assert!(r.rtn.is_finite() && r.rtn > 0.0 && r.rtn < 1.0, "{}: RTN {}", r.tensor, r.rtn);
        assert!(gptq < r.rtn, "{}: GPTQ {gptq} ≥ RTN {}", r.tensor, r.rtn);
        assert!(awq <= r.rtn, "{}: AWQ {awq} > RTN {}", r.tensor, r.rtn);
    }

    // Cancelled halfway through: the count is over the whole run.
    let mut calls = 0;
    let mut cancel = |_: usize, _: usize| {
        calls += 1;
        calls < 3
    };
    let one = TensorSelection::Only(vec!["blk.0.attn_q.weight".into()]);
    let hooks = CalibHooks { progress: Some(&mut cancel) };
    let err = layer_errors(&model, &tokens, &plan, &scheme, &policy, &options(one, vec![Compared::Gptq]), hooks);
    assert!(
        matches!(err, Err(LayerErrorError::Calib(CalibError::Cancelled { total, .. })) if total == 512 * 7),
        "{err:?}"
    );

    let bad = TensorSelection::Only(vec!["blk.0.attn_q.weight".into(), "blk.99.attn_q.weight".into()]);
    let err = layer_errors(&model, &tokens, &plan, &scheme, &policy, &options(bad, vec![]), CalibHooks::default());
    assert!(
        matches!(&err, Err(LayerErrorError::UnknownTensor { name, .. }) if name == "blk.99.attn_q.weight"),
        "{err:?}"
    );
    let q4k = QuantScheme::parse("q4_k").unwrap();
    let err = layer_errors(
        &model,
        &tokens,
        &plan,
        &q4k,
        &policy,
        &options(TensorSelection::All, vec![Compared::Gptq]),
        CalibHooks::default(),
    );
    assert!(matches!(err, Err(LayerErrorError::Unsupported { method: "GPTQ", .. })), "{err:?}");
}
