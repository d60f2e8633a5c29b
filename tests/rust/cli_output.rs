//! `quantlab quantize` never destroys an input or someone else's file (issue #17): an output
//! that is an input (directly, through a symlink or a hard link, or any shard of a checkpoint)
//! is refused; the data goes to a fresh temporary renamed at the end; an existing
//! `OUT.partial` is left alone; nothing stays behind after an error or Ctrl-C.

use crate::io::write_sharded;
use quantlab::formats::GgmlType;
use quantlab::io::gguf_writer::GgufWriter;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn quantlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quantlab")).args(args).output().expect("run quantlab")
}

/// A GGUF file with one `[rows, cols]` F32 weight.
fn write_gguf(path: &Path, rows: u64, cols: u64) {
    let mut w = GgufWriter::new();
    w.add_tensor("blk.0.attn_q.weight", &[cols, rows], GgmlType::F32).unwrap();
    let f = std::fs::File::create(path).unwrap();
    let mut out = std::io::BufWriter::new(f);
    w.write(&mut out, |_, _| {
        let bytes: Vec<u8> =
            (0..rows * cols).flat_map(|i| (((i * 37 % 101) as f32) / 50.5 - 1.0).to_le_bytes()).collect();
        Ok(bytes)
    })
    .unwrap();
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// Runs quantize and expects the refusal naming the input.
fn assert_refused(input: &Path, output: &Path, format: &str) {
    let r = quantlab(&["quantize", input.to_str().unwrap(), "-f", format, "-o", output.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{}: {err}", output.display());
    assert!(err.contains("would overwrite the input"), "{err}");
}

#[test]
fn an_output_that_is_an_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("in.gguf");
    write_gguf(&input, 4, 64);
    let original = std::fs::read(&input).unwrap();
    std::os::unix::fs::symlink(&input, d.join("sym.gguf")).unwrap();
    std::fs::hard_link(&input, d.join("hard.gguf")).unwrap();
    for out in ["in.gguf", "sym.gguf", "hard.gguf"] {
        assert_refused(&input, &d.join(out), "q8_0");
        // The same through a symlinked input.
        assert_refused(&d.join("sym.gguf"), &d.join(out), "q8_0");
    }
    assert_eq!(std::fs::read(&input).unwrap(), original);
    assert_eq!(listing(d), ["hard.gguf", "in.gguf", "sym.gguf"]);
}

#[test]
fn every_shard_of_a_checkpoint_counts_as_an_input() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    std::fs::create_dir(&ck).unwrap();
    write_sharded(&ck);
    let shard2 = ck.join("model-00002-of-00002.safetensors");
    let before = std::fs::read(&shard2).unwrap();
    let link = dir.path().join("link.safetensors");
    std::os::unix::fs::symlink(&shard2, &link).unwrap();
    for input in [ck.clone(), ck.join("model.safetensors.index.json")] {
        for out in [ck.join("model-00001-of-00002.safetensors"), shard2.clone(), link.clone()] {
            assert_refused(&input, &out, "int8-sym-channel");
        }
    }
    assert_eq!(std::fs::read(&shard2).unwrap(), before);
    // A fresh output next to the shards is fine and leaves no temporary.
    let r = quantlab(&["quantize", ck.to_str().unwrap(), "-f", "int8-sym-channel", "-o", "/dev/null/x.safetensors"]);
    assert_eq!(r.status.code(), Some(1), "an unwritable output is an error");
    let out = ck.join("q.safetensors");
    let r = quantlab(&["quantize", ck.to_str().unwrap(), "-f", "int8-sym-channel", "-o", out.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(listing(&ck).iter().all(|n| !n.contains("quantlab-")), "{:?}", listing(&ck));
}

#[test]
fn files_named_like_temporaries_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Someone else's OUT.partial stays as it was, after a success and after a failure.
    let input = d.join("in.gguf");
    write_gguf(&input, 4, 64);
    std::fs::write(d.join("out.gguf.partial"), b"not ours").unwrap();
    let r = quantlab(&["quantize", input.to_str().unwrap(), "-f", "q8_0", "-o", d.join("out.gguf").to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let bad = d.join("bad.gguf");
    std::fs::write(&bad, b"GGUF\x03\0\0\0 truncated").unwrap();
    let r = quantlab(&["quantize", bad.to_str().unwrap(), "-f", "q8_0", "-o", d.join("out2.gguf").to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(1));
    assert_eq!(std::fs::read(d.join("out.gguf.partial")).unwrap(), b"not ours");
    assert_eq!(listing(d), ["bad.gguf", "in.gguf", "out.gguf", "out.gguf.partial"]);

    // An input called OUT.partial (the old temporary name) is read, not truncated.
    let other = tempfile::tempdir().unwrap();
    let input = other.path().join("m.gguf.partial");
    write_gguf(&input, 4, 64);
    let original = std::fs::read(&input).unwrap();
    let out = other.path().join("m.gguf");
    let r = quantlab(&["quantize", input.to_str().unwrap(), "-f", "q8_0", "-o", out.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(std::fs::read(&input).unwrap(), original);
    assert!(out.exists());
}

/// The temporary of a run writing `out` in `dir`, once it exists.
fn wait_for_temporary(dir: &Path, out: &str, child: &mut std::process::Child) -> Option<PathBuf> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        if let Some(name) = listing(dir).into_iter().find(|n| n.starts_with(&format!(".{out}.quantlab-"))) {
            return Some(dir.join(name));
        }
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn ctrl_c_mid_write_leaves_neither_output_nor_temporary() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("big.gguf");
    // 8M weights: long enough to quantize to Q4_K that the signal lands mid-run.
    write_gguf(&input, 2048, 4096);
    let out = d.join("out.gguf");
    let mut child = Command::new(env!("CARGO_BIN_EXE_quantlab"))
        .args(["quantize", input.to_str().unwrap(), "-f", "q4_k", "-o", out.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let tmp = wait_for_temporary(d, "out.gguf", &mut child).expect("the run creates its temporary");
    std::thread::sleep(Duration::from_millis(100));
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(2), "ended by SIGINT before finishing: {status:?}");
    assert!(!tmp.exists() && !out.exists(), "{:?}", listing(d));
    assert_eq!(listing(d), ["big.gguf"]);
}
