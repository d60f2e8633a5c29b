//! The `quantlab` binary: `info` on the default model, on broken files, and usage errors.

use crate::gguf::{builder, model_path};
use quantlab::cli::info::{self, InfoArgs};
use std::path::Path;
use std::process::{Command, Output};

fn quantlab(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quantlab")).args(args).output().expect("run quantlab")
}

fn info_of(path: &Path, json: bool) -> Output {
    let mut args = vec!["info".as_ref(), path.as_os_str()];
    if json {
        args.push("--json".as_ref());
    }
    quantlab(&args)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit code 1, one `quantlab: error:` line containing `needle`, no panic.
fn assert_fails_with(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(err.starts_with("quantlab: error: ") && err.contains(needle), "stderr: {err}");
    assert!(!err.contains("panicked") && !err.contains("internal error"), "stderr: {err}");
    assert!(o.stdout.is_empty());
}

#[test]
fn info_on_default_model() {
    let Some(model) = model_path() else { return };
    let o = info_of(&model, false);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let row = out.lines().find(|l| l.trim_start().starts_with("blk.0.attn_q.weight ")).expect("tensor row");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells, ["blk.0.attn_q.weight", "576", "x", "576", "Q4_1", "207360", "5.00", "32020992"]);
    for needle in [
        "GGUF version  3",
        "architecture  llama",
        "file type     MOSTLY_Q4_1 (3)",
        "tokenizer     gpt2 (pre-tokenizer smollm), 49152 tokens, 48900 merges",
        "parameters    134.52 M (134515008)",
        "tensor types  61 x F32, 210 x Q4_1, 1 x Q8_0",
        "tokenizer.ggml.tokens = [string; 49152] [\"<|endoftext|>\"",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    assert!(out.lines().count() < 400, "long arrays must be abbreviated");
    // The library entry point gives the same text.
    assert_eq!(info::run(&InfoArgs { model, json: false }).unwrap(), out);
}

#[test]
fn info_json_on_default_model() {
    let Some(model) = model_path() else { return };
    let o = info_of(&model, true);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    assert_eq!(v["version"], 3);
    assert_eq!(v["summary"]["architecture"], "llama");
    assert_eq!(v["summary"]["block_count"], 30);
    assert_eq!(v["summary"]["vocab_size"], 49152);
    assert_eq!(v["metadata"]["llama.attention.head_count"], 9);
    let toks = &v["metadata"]["tokenizer.ggml.tokens"];
    assert_eq!((&toks["type"], &toks["len"]), (&"array<string>".into(), &49152.into()));
    assert_eq!(toks["head"].as_array().unwrap().len(), 16);
    assert_eq!(v["metadata"]["general.languages"], serde_json::json!(["en"]));
    let tensors = v["tensors"].as_array().unwrap();
    assert_eq!(tensors.len(), 272);
    assert_eq!(tensors[0]["name"], "token_embd.weight");
    assert_eq!(tensors[0]["dims"], serde_json::json!([576, 49152]));
    assert_eq!(tensors[0]["type"], "Q8_0");
    assert_eq!(tensors[0]["bytes"], 30081024);
    assert_eq!(tensors[0]["bits_per_weight"], 8.5);
    assert_eq!((&tensors[0]["offset"], &tensors[0]["absolute_offset"]), (&0.into(), &1785664.into()));
}

#[test]
fn info_on_truncated_copy() {
    let Some(model) = model_path() else { return };
    let bytes = std::fs::read(&model).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, len) in [("cut-data.gguf", 50_000_000), ("cut-header.gguf", 1_000_000), ("cut-7.gguf", 7)] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes[..len]).unwrap();
        assert_fails_with(&info_of(&path, false), "truncated");
        assert_fails_with(&info_of(&path, true), "truncated");
    }
}

#[test]
fn info_on_bad_paths_and_files() {
    let dir = tempfile::tempdir().unwrap();
    assert_fails_with(&info_of(&dir.path().join("missing.gguf"), false), "no such file");
    assert_fails_with(&info_of(dir.path(), false), "is a directory");
    let empty = dir.path().join("empty.gguf");
    std::fs::write(&empty, b"").unwrap();
    assert_fails_with(&info_of(&empty, false), "is empty");
    let zip = dir.path().join("model.zip");
    std::fs::write(&zip, b"PK\x03\x04 not a model").unwrap();
    assert_fails_with(&info_of(&zip, false), r"not a GGUF file (magic is 'PK\x03\x04', expected 'GGUF')");
    let mut b = builder::sample();
    b.version = 1;
    let v1 = dir.path().join("v1.gguf");
    std::fs::write(&v1, b.build()).unwrap();
    assert_fails_with(&info_of(&v1, false), "GGUF version 1 is not supported");
}

#[test]
fn info_on_built_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    std::fs::write(&path, builder::sample().build()).unwrap();
    let out = info::run(&InfoArgs { model: path.clone(), json: false }).unwrap();
    assert!(out.contains("blk.0.attn_q.weight") && out.contains("64 x 64"), "{out}");
    assert!(out.contains("t.nested = [array; 2] [[u8; 3] [1, 2, 3], [string; 1] [\"x\"]]"), "{out}");
    let o = info_of(&path, true);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["metadata"]["t.nested"], serde_json::json!([[1, 2, 3], ["x"]]));
    assert_eq!(v["metadata"]["t.i8"], -1);
}

#[test]
fn usage_errors_exit_2() {
    for args in [&["info"][..], &["frobnicate"], &["info", "--jsn", "x.gguf"], &[]] {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        let o = quantlab(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("Usage"), "{args:?}");
    }
    let o = quantlab(&["--help".as_ref()]);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("info"));
}
