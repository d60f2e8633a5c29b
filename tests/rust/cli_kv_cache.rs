//! `--kv-cache f32|f16|int8` on `quantlab generate` and `quantlab eval` without a GPU: parsing,
//! the valid values listed for a bad one, the help text's int8 layout, and the error for a
//! format the CPU forward cannot honour (its cache is f32). The GPU side is in `gpu_kv_cache`.

use crate::gguf::model_path;
use clap::Parser;
use quantlab::cli::device::KvCacheArg;
use quantlab::cli::{Cli, Command};
use std::process::Output;

fn quantlab(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_quantlab")).args(args).output().expect("run quantlab")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn kv_of(args: &[&str]) -> KvCacheArg {
    match Cli::try_parse_from(args).unwrap().command {
        Command::Generate(g) => g.gpu.kv_cache,
        Command::Eval(e) => e.gpu.kv_cache,
        other => panic!("{other:?}"),
    }
}

#[test]
fn kv_cache_parses_with_f32_default() {
    assert_eq!(kv_of(&["quantlab", "generate", "m.gguf", "-p", "x"]), KvCacheArg::F32);
    assert_eq!(kv_of(&["quantlab", "eval", "m.gguf"]), KvCacheArg::F32);
    for (name, want) in [("f32", KvCacheArg::F32), ("f16", KvCacheArg::F16), ("int8", KvCacheArg::Int8)] {
        assert_eq!(kv_of(&["quantlab", "generate", "m.gguf", "-p", "x", "--kv-cache", name]), want);
        assert_eq!(kv_of(&["quantlab", "eval", "m.gguf", "--kv-cache", name]), want);
        assert_eq!(want.name(), name);
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
        assert!(err.contains("invalid value") && err.contains("[possible values: f32, f16, int8]"), "{err}");
    }
}

#[test]
fn help_documents_the_int8_layout() {
    for cmd in ["generate", "eval"] {
        let o = quantlab(&[cmd, "--help"]);
        let help = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success());
        assert!(
            help.contains("--kv-cache <KV>")
                && help.contains("one f32 scale per position and KV head")
                && help.contains("scale = max|x| / 127"),
            "{help}"
        );
    }
}

/// f16/int8 on the CPU is refused before the model is even opened (the path does not exist),
/// with a message naming the flag, why, and what to do instead.
#[test]
fn kv_cache_other_than_f32_on_the_cpu_is_a_clear_error() {
    for kv in ["f16", "int8"] {
        for args in [
            vec!["generate", "/nonexistent/m.gguf", "-p", "x", "--device", "cpu", "--kv-cache", kv],
            vec!["eval", "/nonexistent/m.gguf", "--device", "cpu", "--kv-cache", kv],
        ] {
            let o = quantlab(&args);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(1), "{err}");
            let want = format!(
                "quantlab: error: --kv-cache {kv} needs the GPU forward, but --device cpu runs the CPU forward, which \
                 keeps an f32 KV cache (use --device gpu, or --kv-cache f32)"
            );
            assert_eq!(err.trim_end(), want);
            assert!(o.stdout.is_empty());
        }
    }
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
