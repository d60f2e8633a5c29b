//! `--activations TYPE-GRANULARITY`, `--act-range`, `--act-head` and `--smoothquant` on
//! `quantlab eval` (and dynamic activations on `generate`): parsing, the errors for options that
//! do not fit together, and an end-to-end eval of W8A8 with SmoothQuant and KL-calibrated static
//! scales on a short run of the default model.

use crate::gguf::model_path;
use clap::Parser;
use quantlab::cli::device::ActivationsArg;
use quantlab::cli::{Cli, Command};
use quantlab::model::ActQuant;
use std::process::Output;

fn quantlab(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_quantlab")).args(args).output().expect("run quantlab")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `eval` with `extra` options fails before opening the model (the path does not exist), saying `want`.
fn refused(extra: &[&str], want: &str) {
    let mut args = vec!["eval", "/nonexistent/m.gguf"];
    args.extend_from_slice(extra);
    let o = quantlab(&args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
    assert!(err.contains(want), "{args:?}: {err}");
}

/// A short eval of the default model (one window of 32, 2 threads, int8-sym-channel weights) with `extra`.
fn short_eval(path: &str, extra: &[&str]) -> Output {
    let mut args =
        vec!["eval", path, "--ctx", "32", "--max-windows", "1", "--threads", "2", "-f", "int8-sym-channel", "--json"];
    args.extend_from_slice(extra);
    quantlab(&args)
}

#[test]
fn activations_parse_every_format() {
    for q in ActQuant::ALL {
        let cli = Cli::try_parse_from(["quantlab", "eval", "m.gguf", "--activations", q.name()]).unwrap();
        let Command::Eval(e) = cli.command else { panic!() };
        assert_eq!(e.gpu.activations, ActivationsArg::Quant(q));
    }
    let o = quantlab(&["eval", "m.gguf", "--activations", "int8"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("int8-token, int8-tensor, int8-static, int4-token"), "{}", stderr(&o));
}

/// Options that do not fit together are refused before the model is opened (the path does not
/// exist), naming what is wrong.
#[test]
fn option_mistakes_are_clear_errors() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["--activations", "int8-token", "--act-range", "kl"],
            "--act-range kl applies to static scales (--activations int8-static)",
        ),
        (&["--act-range", "kl"], "--act-range, --act-head and --smoothquant need --activations TYPE-GRANULARITY"),
        (
            &["--activations", "fp8-static", "--act-range", "kl"],
            "--act-range kl: the KL range rule is defined for integer",
        ),
        (&["--activations", "int8-token", "--smoothquant", "1.5"], "--smoothquant 1.5: alpha must be in [0, 1]"),
        (
            &["--activations", "int8-tensor", "--device", "gpu"],
            "--device gpu: --activations int8-tensor quantizes activations on the CPU forward only",
        ),
    ];
    for (extra, want) in cases {
        refused(extra, want);
    }
    let o = quantlab(&["eval", "m.gguf", "--act-range", "p120"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("percentile 120 is outside (0, 100]"), "{}", stderr(&o));
}

/// W8A8 (int8 per-channel weights, static int8 activations calibrated by KL) with SmoothQuant:
/// the rows, their activations in the JSON, the calibration lines; then generate with
/// per-token activations, and generate refusing static ones.
#[test]
fn eval_runs_w8a8_with_smoothquant_and_static_ranges() {
    let Some(path) = model_path() else { return };
    let path = path.to_str().unwrap();
    let args = ["--activations", "int8-static", "--act-range", "kl", "--smoothquant", "--calib-tokens", "64"];
    let o = short_eval(path, &args);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("device: cpu (--activations int8-static runs on the CPU forward only)"), "{err}");
    assert!(err.contains("SmoothQuant α=0.5: activation maxima from 64 tokens of Moby-Dick chapters 4-"), "{err}");
    assert!(err.contains("int8-sym-channel: static activation ranges (kl) from 64 tokens"), "{err}");
    assert!(!err.contains("base (Q4_1 checkpoint): static activation ranges"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["activations"], "int8-static");
    let rows = v["rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["format"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["base (Q4_1 checkpoint)", "int8-sym-channel", "int8-sym-channel, act int8-static (kl), SmoothQuant α=0.5",]
    );
    let acts: Vec<&str> = rows.iter().map(|r| r["activations"].as_str().unwrap()).collect();
    assert_eq!(acts, ["f32", "f32", "int8-static"]);
    // Weights-only int8 is close to the base; the KL-clipped activations cost far more (KL clips
    // the model's massive activations: BENCHMARKS.md).
    let kl = |i: usize| rows[i]["kl_mean"].as_f64().unwrap();
    assert!(kl(1) > 0.0 && kl(1) < 0.05 && kl(2) > kl(1) && kl(2).is_finite(), "{rows:?}");

    let o = quantlab(&["generate", path, "-p", "The sea", "-n", "2", "--activations", "int8-token", "--device", "cpu"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("KV cache f32 (CPU), activations int8-token"), "{err}");
    let o = quantlab(&["generate", path, "-p", "The sea", "-n", "2", "--activations", "int8-static"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("calibrate its ranges first"), "{}", stderr(&o));
}

/// `--activations llm-int8` and `--matmul int8`: the errors, then eval (W8 vs LLM.int8(), the
/// integer path's rows beside the exact base) and generate saying which path ran.
#[test]
fn llm_int8_and_the_integer_path_from_the_cli() {
    let cases: [(&[&str], &str); 3] = [
        (&["--llm-int8-threshold", "4"], "--llm-int8-threshold applies to --activations llm-int8"),
        (&["--activations", "llm-int8", "--llm-int8-threshold", "0"], "the threshold must be a positive number"),
        (&["--matmul", "int8", "--device", "gpu"], "--device gpu: --matmul int8 runs on the CPU forward only"),
    ];
    for (extra, want) in cases {
        refused(extra, want);
    }
    let Some(path) = model_path() else { return };
    let path = path.to_str().unwrap();
    let o = short_eval(path, &["--activations", "llm-int8", "--matmul", "int8"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("device: cpu (--activations llm-int8 and --matmul int8 runs on the CPU forward only)"),
        "{err}"
    );
    assert!(err.contains("LLM.int8() weights: every layer matrix re-quantized int8 vector-wise"), "{err}");
    assert!(err.contains("base (Q4_1 checkpoint): matmul exact: "), "{err}");
    assert!(err.contains("LLM.int8() outlier columns per product"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v["rows"].as_array().unwrap();
    let field = |k: &str| rows.iter().map(|r| r[k].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(
        field("format"),
        [
            "base (Q4_1 checkpoint)",
            "base (Q4_1 checkpoint), matmul int8",
            "int8-sym-channel, matmul int8",
            "int8-sym-channel, act llm-int8, matmul int8"
        ]
    );
    assert_eq!(field("matmul"), ["exact", "int8", "int8", "int8"]);
    assert_eq!(field("activations"), ["f32", "f32", "f32", "llm-int8"]);
    // The base's Q4_1 layers by integer dots (8-bit activations) cost a little; nothing is free.
    let kl = |i: usize| rows[i]["kl_mean"].as_f64().unwrap();
    assert!(kl(1) > 0.0 && kl(1) < 0.05 && kl(3) > 0.0 && kl(3) < 0.1, "{rows:?}");

    let gen = ["generate", path, "-p", "The sea", "-n", "2", "--device", "cpu", "--matmul", "int8"];
    let o = quantlab(&gen);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    // The Q4_1 layers and the Q8_0 tied classifier all have integer kernels.
    assert!(err.contains("products by integer dots, 0 in f32"), "{err}");
}
