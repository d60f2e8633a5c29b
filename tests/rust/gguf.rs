//! GGUF reader against the real default model (facts cross-checked with gguf-py's reader) and
//! against small files built in the test.

/// The crate's own test writer, shared with the unit tests (see its header).
#[path = "../../crate/src/gguf/test_builder.rs"]
pub mod builder;

use builder::{sample, tt, GgufBuilder};
use quantlab::gguf::{GgmlType, GgufError, GgufFile, MetadataValue, ModelSummary};
use std::path::{Path, PathBuf};

/// The default model: `$QUANTLAB_MODEL`, else `<repo>/models/SmolLM2-135M-Instruct.Q4_1.gguf`.
/// Missing is a failure (setup did not run) unless `QUANTLAB_ALLOW_MISSING_MODEL=1`.
pub fn model_path() -> Option<PathBuf> {
    let path = std::env::var_os("QUANTLAB_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/SmolLM2-135M-Instruct.Q4_1.gguf"));
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("QUANTLAB_ALLOW_MISSING_MODEL").as_deref() == Ok("1") {
        eprintln!("note: skipping, test model {} not found", path.display());
        return None;
    }
    panic!(
        "test model {} not found: run `npm test` (or the setup script) to download it, set \
         QUANTLAB_MODEL to a copy, or set QUANTLAB_ALLOW_MISSING_MODEL=1 to skip these tests",
        path.display()
    );
}

fn load_model() -> Option<(Vec<u8>, GgufFile)> {
    let bytes = std::fs::read(model_path()?).expect("read the model");
    let f = GgufFile::parse(&bytes, bytes.len() as u64).expect("the default model parses");
    Some((bytes, f))
}

#[test]
fn default_model_header() {
    let Some((_, f)) = load_model() else { return };
    assert_eq!(f.version, 3);
    assert_eq!(f.tensors.len(), 272);
    assert_eq!(f.metadata.len(), 33);
    assert_eq!(f.alignment, 32);
    assert_eq!(f.data_offset, 1_785_664);
    assert_eq!(f.architecture(), Some("llama"));
    assert_eq!(f.get_u64("llama.block_count"), Some(30));
    assert_eq!(f.get_u64("llama.embedding_length"), Some(576));
    assert_eq!(f.get_u64("llama.feed_forward_length"), Some(1536));
    assert_eq!(f.get_u64("llama.attention.head_count"), Some(9));
    assert_eq!(f.get_u64("llama.attention.head_count_kv"), Some(3));
    assert_eq!(f.get_u64("llama.context_length"), Some(8192));
    assert_eq!(f.get_u64("llama.vocab_size"), Some(49152));
    assert_eq!(f.get_f64("llama.rope.freq_base"), Some(100000.0));
    assert_eq!(f.get_str("tokenizer.ggml.model"), Some("gpt2"));
    assert_eq!(f.get_str("tokenizer.ggml.pre"), Some("smollm"));
    let tokens = f.get_array("tokenizer.ggml.tokens").and_then(|a| a.as_strings()).unwrap();
    assert_eq!(tokens.len(), 49152);
    assert_eq!(tokens[0], "<|endoftext|>");
    assert_eq!(f.get_array("tokenizer.ggml.merges").map(|a| a.len()), Some(48900));
    assert_eq!(f.get_array("tokenizer.ggml.token_type").and_then(|a| a.as_i32s()).map(<[i32]>::len), Some(49152));
    assert!(matches!(f.get("tokenizer.ggml.add_bos_token"), Some(MetadataValue::Bool(false))));

    let count = |ty| f.tensors.iter().filter(|t| t.ty == ty).count();
    assert_eq!((count(GgmlType::Q4_1), count(GgmlType::F32), count(GgmlType::Q8_0)), (210, 61, 1));

    let emb = f.tensor("token_embd.weight").unwrap();
    assert_eq!(
        (emb.dims.as_slice(), emb.ty, emb.n_bytes(), emb.offset),
        (&[576, 49152][..], GgmlType::Q8_0, 30_081_024, 0)
    );
    assert_eq!(emb.absolute_offset(&f), 1_785_664);
    assert_eq!((emb.row_len(), emb.n_rows()), (576, 49152));
    let q = f.tensor("blk.0.attn_q.weight").unwrap();
    assert_eq!((q.dims.as_slice(), q.ty, q.n_bytes()), (&[576, 576][..], GgmlType::Q4_1, 207_360));
    assert_eq!(q.bits_per_weight(), 5.0);
    // From gguf-py: the last tensor ends exactly at the end of the file.
    let last = f.tensor("output_norm.weight").unwrap();
    assert_eq!(last.absolute_offset(&f), 98_360_128);
    assert_eq!(last.absolute_offset(&f) + last.n_bytes(), f.file_len);
}

#[test]
fn default_model_summary() {
    let Some((_, f)) = load_model() else { return };
    let s = ModelSummary::from_gguf(&f);
    assert_eq!(s.architecture.as_deref(), Some("llama"));
    assert_eq!(s.file_type.as_deref(), Some("MOSTLY_Q4_1"));
    assert_eq!((s.context_length, s.embedding_length, s.block_count), (Some(8192), Some(576), Some(30)));
    assert_eq!((s.feed_forward_length, s.head_count, s.head_count_kv), (Some(1536), Some(9), Some(3)));
    assert_eq!((s.rope_freq_base, s.rms_norm_eps), (Some(100000.0), Some(1e-5)));
    assert_eq!(s.vocab_size, Some(49152));
    assert_eq!((s.tokenizer_model.as_deref(), s.tokenizer_pre.as_deref()), (Some("gpt2"), Some("smollm")));
    assert_eq!(s.merges, Some(48900));
    // Sums from gguf-py: n_elements and n_bytes over all tensors.
    assert_eq!((s.parameter_count, s.tensor_bytes), (134_515_008, 96_576_768));
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["types"][1]["type"], "Q4_1");
    assert_eq!(json["types"][1]["tensors"], 210);
}

#[test]
fn default_model_tensor_data() {
    let Some((bytes, f)) = load_model() else {
        return;
    };
    let emb = f.tensor("token_embd.weight").unwrap();
    let data = f.tensor_data(&bytes, emb).unwrap();
    assert_eq!(data.len(), 30_081_024);
    assert_eq!(data.as_ptr(), bytes[1_785_664..].as_ptr());
    // Every Q8_0 block starts with an f16 scale; real scales are finite and small.
    for block in data.chunks_exact(34).take(1000) {
        let d = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
        assert!(d.is_finite() && d.abs() < 10.0, "scale {d}");
    }
    let norm = f.tensor("output_norm.weight").unwrap();
    let w: Vec<f32> = f
        .tensor_data(&bytes, norm)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(w.len(), 576);
    assert!(w.iter().all(|x| x.is_finite()));
    // Given a prefix that stops inside the tensor, the request fails instead of panicking.
    assert!(f.tensor_data(&bytes[..1_000_000], emb).unwrap_err().is_truncated());
}

#[test]
fn default_model_from_growing_prefix() {
    let Some((bytes, full)) = load_model() else {
        return;
    };
    let file_len = bytes.len() as u64;
    let mut len = 64 * 1024;
    let mut tries = 0;
    let f = loop {
        tries += 1;
        match GgufFile::parse(&bytes[..len], file_len) {
            Ok(f) => break f,
            Err(e) => {
                let needed = e.needed_bytes().unwrap_or_else(|| panic!("no retry hint: {e}"));
                // What the browser does: at least double, at least the hint.
                len = (needed as usize).max(len * 2).min(bytes.len());
            }
        }
    };
    assert_eq!(f, full);
    assert!(tries > 1 && len < 4 * 1024 * 1024, "{tries} tries, {len} bytes");
    // The header alone is enough; the tensor bounds are checked against file_len.
    let header = GgufFile::parse(&bytes[..full.data_offset as usize], file_len).unwrap();
    assert_eq!(header, full);
}

#[test]
fn default_model_truncated_copy() {
    let Some((bytes, _)) = load_model() else {
        return;
    };
    let cut = &bytes[..50_000_000];
    let e = GgufFile::parse(cut, cut.len() as u64).unwrap_err();
    assert!(matches!(e, GgufError::TensorOutOfBounds { .. }), "{e}");
    assert!(e.to_string().starts_with("file is truncated: tensor '"), "{e}");
    let e = GgufFile::parse(&bytes[..1_000_000], 1_000_000).unwrap_err();
    assert!(e.is_truncated() && e.needed_bytes().is_none(), "{e}");
}

#[test]
fn built_files_round_trip_through_disk() {
    let dir = tempfile::tempdir().unwrap();
    for version in [2, 3] {
        let mut b = sample();
        b.version = version;
        let path = dir.path().join(format!("v{version}.gguf"));
        std::fs::write(&path, b.build()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let f = GgufFile::parse(&bytes, bytes.len() as u64).unwrap();
        assert_eq!(f.version, version);
        assert_eq!(f.tensors.len(), 4);
        assert_eq!(f.get_str("general.name"), Some("tiny"));
    }
}

#[test]
fn errors_read_well() {
    let bytes = GgufBuilder::new().tensor_raw(b"x", &[33, 2], tt::Q4_1, None, 40).build();
    let e = GgufFile::parse(&bytes, bytes.len() as u64).unwrap_err();
    assert_eq!(e.to_string(), "tensor 'x' has type Q4_1 but its row length 33 is not a multiple of the 32-value block");
    let mut b = sample();
    b.version = 0x0300_0000;
    let e = GgufFile::parse(&b.build(), 10_000).unwrap_err();
    assert!(e.to_string().starts_with("big-endian GGUF files are not supported"), "{e}");
    let e = GgufFile::parse(b"PK\x03\x04rest", 8).unwrap_err();
    assert_eq!(e.to_string(), r"not a GGUF file (magic is 'PK\x03\x04', expected 'GGUF')");
}
