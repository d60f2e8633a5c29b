//! `--kv-cache f32|f16|int8|int4|fp8` on `quantlab generate` and `quantlab eval` without a GPU:
//! parsing, the valid values listed for a bad one, the help text's rules, the errors for a type
//! the GPU cannot store, and eval/generate with an int4 cache on the CPU. The GPU side is in
//! `gpu_kv_cache`.

use crate::gguf::model_path;
use clap::Parser;
use quantlab::cli::{Cli, Command};
use quantlab::model::KvType;
use std::process::Output;

fn quantlab(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_quantlab")).args(args).output().expect("run quantlab")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn kv_of(args: &[&str]) -> KvType {
    match Cli::try_parse_from(args).unwrap().command {
        Command::Generate(g) => g.gpu.kv_cache,
        Command::Eval(e) => e.gpu.kv_cache,
        other => panic!("{other:?}"),
    }
}

#[test]
fn kv_cache_parses_with_f32_default() {
    assert_eq!(kv_of(&["quantlab", "generate", "m.gguf", "-p", "x"]), KvType::F32);
    assert_eq!(kv_of(&["quantlab", "eval", "m.gguf"]), KvType::F32);
    for (name, want) in [
        ("f32", KvType::F32),
        ("f16", KvType::F16),
        ("int8", KvType::Int8),
        ("int4", KvType::Int4),
        ("fp8", KvType::Fp8),
        ("fp8-e4m3", KvType::Fp8),
    ] {
        assert_eq!(kv_of(&["quantlab", "generate", "m.gguf", "-p", "x", "--kv-cache", name]), want);
        assert_eq!(kv_of(&["quantlab", "eval", "m.gguf", "--kv-cache", name]), want);
        assert!(want.name() == name || want.aliases().contains(&name));
    }
}

#[test]
fn unknown_kv_cache_lists_the_valid_values() {
    for args in
        [&["generate", "m.gguf", "-p", "x", "--kv-cache", "q4"][..], &["eval", "m.gguf", "--kv-cache", "fp16"][..]]
    {
        let o = quantlab(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("invalid value") && err.contains("[possible values: f32, f16, int8, int4, fp8]"), "{err}");
    }
}

#[test]
fn help_documents_the_rules() {
    for cmd in ["generate", "eval"] {
        let o = quantlab(&[cmd, "--help"]);
        let help = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success());
        assert!(
            help.contains("--kv-cache <KV>")
                && help.contains("one f32 scale per position and KV head")
                && help.contains("scale = max|x| / 127")
                && help.contains("one f32 scale per group of 32 values of a head")
                && help.contains("scale = max|x| / 448"),
            "{help}"
        );
    }
}

/// int4/fp8 on the GPU, or with f16 activations (GPU only), are refused before the model is
/// even opened (the path does not exist), with a message naming the flags and what to do.
#[test]
fn kv_cache_the_gpu_cannot_store_is_a_clear_error() {
    for kv in ["int4", "fp8"] {
        for (args, want) in [
            (
                vec!["generate", "/nonexistent/m.gguf", "-p", "x", "--device", "gpu", "--kv-cache", kv],
                format!(
                    "quantlab: error: --device gpu: KV cache {kv}: the GPU forward stores f32, f16 or int8 only; {kv} \
                     runs on the CPU forward (--device cpu or auto)"
                ),
            ),
            (
                vec!["eval", "/nonexistent/m.gguf", "--kv-cache", kv, "--activations", "f16"],
                format!(
                    "quantlab: error: --activations f16 needs the GPU forward, but --kv-cache {kv} runs on the CPU \
                     forward only (the GPU stores f32, f16 or int8): use --activations f32, or --kv-cache f32|f16|int8"
                ),
            ),
        ] {
            let o = quantlab(&args);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(1), "{err}");
            assert_eq!(err.trim_end(), want);
            assert!(o.stdout.is_empty());
        }
    }
}

/// `eval --kv-cache int4` runs on the CPU under `--device auto` (no GPU asked for), names the
/// cache on the device line and in the report, and adds the f32-cache reference row; generate
/// runs with it too.
#[test]
fn int4_kv_cache_runs_on_the_cpu() {
    let Some(path) = model_path() else { return };
    let path = path.to_str().unwrap();
    let o = quantlab(&["eval", path, "--ctx", "32", "--max-windows", "1", "--threads", "2", "--kv-cache", "int4"]);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(o.status.success(), "{err}");
    assert!(err.contains("device: cpu (--kv-cache int4 runs on the CPU forward only); KV cache int4 (CPU)"), "{err}");
    assert!(!err.contains("GPU adapter"), "{err}");
    assert!(out.contains("device cpu; KV cache int4;"), "{out}");
    assert!(out.contains("KV cache int4: the first row is the base with an f32 KV cache"), "{out}");
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("base (") && l.contains("MiB")).collect();
    assert!(rows.len() == 2 && rows[0].contains("KV f32") && rows[1].contains("KV int4"), "{out}");

    let o = quantlab(&["generate", path, "-p", "The sea", "-n", "2", "--kv-cache", "fp8", "--device", "cpu"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("device: cpu (--device cpu); KV cache fp8 (CPU)"), "{err}");
}

/// The CPU run names its (f32) cache on the device line.
#[test]
fn cpu_generate_names_the_f32_kv_cache() {
    let Some(path) = model_path() else { return };
    let o = quantlab(&["generate", path.to_str().unwrap(), "-p", "The sea", "-n", "2", "--device", "cpu"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("device: cpu (--device cpu); KV cache f32 (CPU)"), "{err}");
}
