//! The malformed-file corpus (tests/fixtures/malformed/, made by scripts/dev/make_malformed.py)
//! through the built CLI: every command ends with a normal error (exit 1, one message naming
//! the problem) or succeeds where the file is fine for that command, never a panic (101) or an
//! abort (134, SIGABRT on a failed allocation).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/malformed").join(name)
}

fn quantlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quantlab")).args(args).output().expect("run quantlab")
}

/// The commands of the corpus run, each on `model` (a file or directory); `out` is the
/// quantize output (a `.gguf` gets q8_0, a `.safetensors` int8).
fn commands(model: &str, out: &str, text: &str) -> Vec<(&'static str, Vec<String>)> {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let format = if out.ends_with(".gguf") { "q8_0" } else { "int8-sym-channel" };
    vec![
        ("info", v(&["info", model])),
        ("stats", v(&["stats", model])),
        ("quantize", v(&["quantize", model, "-f", format, "-o", out])),
        ("generate", v(&["generate", model, "-p", "hi", "-n", "2", "--device", "cpu"])),
        ("eval", v(&["eval", model, "--text", text, "--ctx", "16", "--max-windows", "1", "--device", "cpu"])),
    ]
}

/// What one command must do with one corpus entry.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Exit 1 with a message containing this text.
    Error(&'static str),
    /// Exit 0 or 1 (the file is fine for this command, or fails for an unrelated reason);
    /// never a crash.
    NoCrash,
}

/// Runs `args` and checks the outcome against `expect`.
fn check(label: &str, args: &[String], expect: Expect) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = quantlab(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    let code = o.status.code();
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{label}: {args:?} crashed ({code:?}): {err}"
    );
    assert!(matches!(code, Some(0 | 1)), "{label}: {args:?} ended with {:?}: {err}", o.status);
    if let Expect::Error(needle) = expect {
        assert_eq!(code, Some(1), "{label}: {args:?} should fail: {err}");
        assert!(err.contains("quantlab: error:"), "{label}: {args:?}: {err}");
        assert!(err.contains(needle), "{label}: {args:?}: expected '{needle}' in: {err}");
    }
}

/// A text file long enough for one window of 16 tokens.
fn text_file(dir: &Path) -> String {
    let p = dir.join("text.txt");
    std::fs::write(&p, "Call me Ishmael. Some years ago, never mind how long precisely, ".repeat(8)).unwrap();
    p.display().to_string()
}

#[test]
fn malformed_gguf_files_give_errors_naming_the_problem() {
    use Expect::{Error as E, NoCrash as Ok};
    let dir = tempfile::tempdir().unwrap();
    let text = text_file(dir.path());
    let out = dir.path().join("out.gguf").display().to_string();
    // (file, [info, stats, quantize, generate, eval])
    let table: [(&str, [Expect; 5]); 7] = [
        ("bad_magic.gguf", [E("magic"); 5]),
        ("truncated_header.gguf", [E("truncated_header.gguf"); 5]),
        ("alignment_2p31.gguf", [E("general.alignment"); 5]),
        ("huge_token_count.gguf", [E("tokenizer.ggml.tokens"); 5]),
        ("tensor_past_end.gguf", [E("blk.0.ffn_down.weight"); 5]),
        ("vocab_beyond_embedding.gguf", [Ok, Ok, Ok, E("embedding"), E("embedding")]),
        ("nan_weight.gguf", [Ok, Ok, E("NaN"), Ok, Ok]),
    ];
    for (file, expects) in table {
        let path = corpus(file).display().to_string();
        for ((cmd, args), expect) in commands(&path, &out, &text).into_iter().zip(expects) {
            check(&format!("{file} {cmd}"), &args, expect);
        }
        assert!(!Path::new(&out).exists() || file.starts_with("vocab"), "{file}: no output from a failed run");
        let _ = std::fs::remove_file(&out);
    }
}

#[test]
fn malformed_safetensors_files_give_errors() {
    let dir = tempfile::tempdir().unwrap();
    let text = text_file(dir.path());
    let out = dir.path().join("out.safetensors").display().to_string();
    for file in ["header_len_huge.safetensors", "truncated.safetensors"] {
        let path = corpus(file).display().to_string();
        for (cmd, args) in commands(&path, &out, &text) {
            // `stats` reads GGUF only; its error names the file either way.
            check(&format!("{file} {cmd}"), &args, Expect::Error(file));
        }
        assert!(!Path::new(&out).exists());
    }
}

/// A Hugging Face directory: tests/fixtures/hf/f32-untied's config and weights (vocab_size
/// 256) with a malformed tokenizer.json from the corpus.
fn hf_dir_with_tokenizer(root: &Path, tokenizer: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/hf/f32-untied");
    let dir = root.join(tokenizer.trim_end_matches(".tokenizer.json"));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    std::fs::copy(corpus(tokenizer), dir.join("tokenizer.json")).unwrap();
    dir
}

#[test]
fn malformed_tokenizer_json_gives_errors_not_aborts() {
    let root = tempfile::tempdir().unwrap();
    let text = text_file(root.path());
    for (tokenizer, needle) in [
        ("added_token_id_1e8.tokenizer.json", "added_tokens entry '<big>' has id 100000000"),
        ("added_token_id_u32max.tokenizer.json", "added_tokens entry '<max>' has id 4294967295"),
        ("vocab_id_3e9.tokenizer.json", "model.vocab entry 'zz' has id 3000000000"),
        ("added_token_past_vocab_size.tokenizer.json", "the tokenizer has 301 tokens but the embedding"),
        ("sparse_id_4e6.tokenizer.json", "token ids reach 4000000 but only 257 tokens are defined"),
    ] {
        let dir = hf_dir_with_tokenizer(root.path(), tokenizer).display().to_string();
        let out = root.path().join("out.safetensors").display().to_string();
        for (cmd, args) in commands(&dir, &out, &text) {
            // info, stats and quantize do not read the tokenizer.
            let expect = if matches!(cmd, "generate" | "eval") { Expect::Error(needle) } else { Expect::NoCrash };
            check(&format!("{tokenizer} {cmd}"), &args, expect);
        }
        let _ = std::fs::remove_file(&out);
    }
}
