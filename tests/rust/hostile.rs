//! Regressions of issue #17 at the library level: numbers from a file that used to size an
//! allocation or index a table unchecked (alignment, token ids, vocabulary against embedding
//! rows), now errors naming the field.

use crate::gguf::builder::GgufBuilder;
use quantlab::gguf::{GgufError, GgufFile, MAX_ALIGNMENT};
use quantlab::model::eval::{evaluate, plan, EvalError, EvalHooks, LogitSource, Protocol};
use quantlab::model::{Model, ModelError};
use quantlab::tokenizer::{Tokenizer, MAX_SPARE_IDS, MAX_TOKEN_IDS};
use std::path::Path;

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/malformed").join(name)).unwrap()
}

#[test]
fn alignment_above_the_cap_is_an_error_naming_the_key() {
    for a in [1u32 << 31, MAX_ALIGNMENT * 2] {
        let b = GgufBuilder::new().kv_u32("general.alignment", a).build();
        let e = GgufFile::parse(&b, b.len() as u64).unwrap_err();
        assert!(matches!(e, GgufError::BadAlignment(_)), "{a}: {e:?}");
        assert!(e.to_string().contains("general.alignment") && e.to_string().contains(&a.to_string()), "{e}");
    }
    let b = GgufBuilder::new().kv_u32("general.alignment", MAX_ALIGNMENT).build();
    assert_eq!(GgufFile::parse(&b, b.len() as u64).unwrap().alignment, u64::from(MAX_ALIGNMENT));
    let file = corpus("alignment_2p31.gguf");
    assert!(matches!(GgufFile::parse(&file, file.len() as u64), Err(GgufError::BadAlignment(_))));
}

fn tokenizer_json(extra_vocab: &str, added: &str) -> String {
    format!(
        r#"{{"added_tokens": [{added}], "normalizer": null,
            "pre_tokenizer": {{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}},
            "model": {{"type": "BPE", "vocab": {{"a": 0, "b": 1, "ab": 2 {extra_vocab}}}, "merges": ["a b"]}}}}"#
    )
}

#[test]
fn token_ids_beyond_the_cap_are_errors_naming_the_entry() {
    let cases = [
        (tokenizer_json(r#", "zz": 3000000000"#, ""), "model.vocab entry 'zz' has id 3000000000"),
        (tokenizer_json("", r#"{"id": 100000000, "content": "<x>"}"#), "added_tokens entry '<x>' has id 100000000"),
        (tokenizer_json("", r#"{"id": 4294967295, "content": "<y>"}"#), "added_tokens entry '<y>' has id 4294967295"),
        (tokenizer_json("", r#"{"id": 4294967296, "content": "<z>"}"#), "added_tokens entry '<z>' has id 4294967296"),
    ];
    for (json, needle) in cases {
        let e = Tokenizer::from_tokenizer_json(&json).unwrap_err().to_string();
        assert!(e.contains(needle) && e.contains(&MAX_TOKEN_IDS.to_string()), "{e}");
    }
    // An id below the cap is accepted (a sparse table, but a legal one).
    let sparse = tokenizer_json("", r#"{"id": 1000, "content": "<n>"}"#);
    assert_eq!(Tokenizer::from_tokenizer_json(&sparse).unwrap().vocab_size(), 1001);
    // Below the cap but mostly holes: 4 tokens cannot claim a table of 4·10^6 ids.
    let holes = tokenizer_json("", r#"{"id": 4000000, "content": "<far>"}"#);
    let e = Tokenizer::from_tokenizer_json(&holes).unwrap_err().to_string();
    assert!(e.contains("token ids reach 4000000 but only 4 tokens are defined") && e.contains("MAX_SPARE_IDS"), "{e}");
    let edge = |id: usize| tokenizer_json("", &format!(r#"{{"id": {id}, "content": "<e>"}}"#));
    assert!(Tokenizer::from_tokenizer_json(&edge(2 * 4 + MAX_SPARE_IDS - 1)).is_ok());
    assert!(Tokenizer::from_tokenizer_json(&edge(2 * 4 + MAX_SPARE_IDS)).is_err());
}

#[test]
fn a_tokenizer_larger_than_the_embedding_is_refused_at_load() {
    let file = corpus("vocab_beyond_embedding.gguf");
    let f = GgufFile::parse(&file, file.len() as u64).unwrap();
    let model = Model::from_gguf(&f, &file).unwrap();
    let tok = Tokenizer::from_gguf(&f).unwrap();
    assert_eq!((tok.vocab_size(), model.config.vocab_size), (300, 256));
    let e = model.check_tokenizer_vocab(tok.vocab_size()).unwrap_err();
    assert_eq!(e, ModelError::VocabExceedsEmbedding { tokenizer: 300, embedding_rows: 256 });
    // A padded embedding (more rows than tokens) is normal.
    model.check_tokenizer_vocab(200).unwrap();
}

/// Logits over 4 tokens whatever the input.
struct FourTokens([f32; 4]);

impl LogitSource for FourTokens {
    fn begin_window(&mut self) {}
    fn logits(&mut self, _token: u32, _pos: usize) -> Result<&[f32], ModelError> {
        Ok(&self.0)
    }
}

#[test]
fn eval_target_beyond_the_logits_is_an_error_not_a_panic() {
    // The target at position 2 (id 9) has no logit: it used to index past the softmax.
    let p = plan(&[0, 1, 9, 2], 4, Protocol::Default, false, None, None).unwrap();
    let mut src = FourTokens([0.1, 0.2, 0.3, 0.4]);
    let e = evaluate(&p, &mut [&mut src as &mut dyn LogitSource], EvalHooks::default()).unwrap_err();
    assert!(matches!(e, EvalError::Model(ModelError::TokenOutOfRange { token: 9, vocab_size: 4 })), "{e:?}");
}

#[test]
fn a_block_count_beyond_the_tensors_is_refused_before_allocating() {
    use crate::gguf::builder::tt;
    let file = GgufBuilder::new()
        .kv_str("general.architecture", "llama")
        .kv_u32("llama.block_count", 1 << 20)
        .kv_u32("llama.embedding_length", 32)
        .kv_u32("llama.feed_forward_length", 32)
        .kv_u32("llama.attention.head_count", 2)
        .tensor("token_embd.weight", &[32, 8], tt::F32)
        .build();
    let e = Model::from_gguf_bytes(&file).unwrap_err();
    assert!(matches!(&e, ModelError::BadMetadata { key, .. } if key == "llama.block_count"), "{e:?}");
    assert!(e.to_string().contains("1048576 blocks"), "{e}");
}
