//! `quantlab quantize HF_DIR -o out.gguf` (`quantlab::model::hf_gguf`): the Hugging Face
//! fixtures of tests/rust/hf_load.rs converted to GGUF and read back by our GGUF loader must
//! give transformers' logits (reference.json, same tolerance as loading the checkpoint
//! directly), the same tokens and the same perplexity; what cannot be converted faithfully is
//! refused naming the file and key. The key listing is checked against gguf-py by
//! scripts/dev/check_hf_convert.sh (and llama.cpp loads the file there).

use crate::hf_load::{fixture, ids, quantlab, reference, run, Edited, TOL, VARIANTS};
use quantlab::cli::quantize::{self, QuantizeArgs};
use quantlab::error::{ErrorKind, HasKind};
use quantlab::formats::quantize_row;
use quantlab::gguf::{GgmlType, GgufFile, MetadataValue};
use quantlab::io::export::RoundToNearest;
use quantlab::io::safetensors::Checkpoint;
use quantlab::model::hf_gguf::{convert_hf_to_gguf, HfConvertError, HfQuantize, HfSource};
use quantlab::model::hf_vocab::HfTokenizerFiles;
use quantlab::model::{Model, ModelError};
use quantlab::policy::{Target, TensorPolicy};
use quantlab::tokenizer::Tokenizer;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A copy of fixture `variant` with f32-untied's tokenizer.json (the byte-level BPE all three
/// fixtures' 256-token vocabularies share) when it has none.
fn with_tokenizer(variant: &str) -> Edited {
    let e = Edited::new(variant);
    let tok = e.dir.path().join("tokenizer.json");
    if !tok.exists() {
        std::fs::copy(fixture("f32-untied").join("tokenizer.json"), tok).unwrap();
    }
    e
}

fn convert(dir: &Path, format: &str) -> PathBuf {
    let out = dir.join(format!("converted-{format}.gguf"));
    quantize::run(&QuantizeArgs::new(dir, format, &out)).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    out
}

fn parse(bytes: &[u8]) -> GgufFile {
    GgufFile::parse(bytes, bytes.len() as u64).unwrap()
}

#[test]
fn converted_f32_gguf_gives_transformers_logits() {
    for v in VARIANTS {
        let e = with_tokenizer(v);
        let bytes = std::fs::read(convert(e.dir.path(), "f32")).unwrap();
        let f = parse(&bytes);
        assert_eq!(f.get_str("general.architecture"), Some("llama"));
        // Tied fixtures have no output matrix (llama.cpp then uses token_embd).
        assert_eq!(f.tensors.iter().any(|t| t.name == "output.weight"), v != "bf16-tied-sharded", "{v}");
        assert!(f.tensors.iter().all(|t| t.ty == GgmlType::F32), "{v}: every tensor F32");
        let model = Model::from_gguf(&f, &bytes).unwrap_or_else(|err| panic!("{v}: {err}"));
        let r = reference(&fixture(v));
        let (diff, greedy) = run(&model, &r);
        assert!(diff <= TOL, "{v}: max |Δlogit| = {diff} > {TOL}");
        assert_eq!(greedy, ids(&r["greedy"]), "{v}: greedy continuation");
    }
}

#[test]
fn converted_q8_0_is_the_f32_conversion_quantized() {
    // bf16 in, llama.cpp's q8_0 file type out: every 2-D weight Q8_0, byte-equal to quantizing
    // the f32 conversion's values (so the permutation and names are those checked above); norms
    // F32 as convert_hf_to_gguf.py stores them.
    let e = with_tokenizer("bf16-tied-sharded");
    let f32_bytes = std::fs::read(convert(e.dir.path(), "f32")).unwrap();
    let q_bytes = std::fs::read(convert(e.dir.path(), "q8_0")).unwrap();
    let (f, q) = (parse(&f32_bytes), parse(&q_bytes));
    assert_eq!(q.get_u64("general.file_type"), Some(7), "LLAMA_FTYPE_MOSTLY_Q8_0");
    assert_eq!(f.tensors.len(), q.tensors.len());
    for (a, b) in f.tensors.iter().zip(&q.tensors) {
        assert_eq!((&a.name, &a.dims), (&b.name, &b.dims));
        let values: Vec<f32> = f
            .tensor_data(&f32_bytes, a)
            .unwrap()
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let expected = match a.dims.len() {
            1 => {
                assert_eq!(b.ty, GgmlType::F32, "{}", b.name);
                continue;
            }
            _ => {
                assert_eq!(b.ty, GgmlType::Q8_0, "{}", b.name);
                let mut out = vec![0u8; GgmlType::Q8_0.bytes_for(values.len() as u64).unwrap() as usize];
                quantize_row(GgmlType::Q8_0, &values, &mut out).unwrap();
                out
            }
        };
        assert!(q.tensor_data(&q_bytes, b).unwrap() == expected.as_slice(), "{}", b.name);
    }
    // The shards' index as the input converts the same checkpoint.
    let via_index = e.dir.path().join("via-index.gguf");
    quantize::run(&QuantizeArgs::new(e.dir.path().join("model.safetensors.index.json"), "f32", &via_index)).unwrap();
    assert!(std::fs::read(&via_index).unwrap() == f32_bytes);
    let model = Model::from_gguf(&q, &q_bytes).unwrap();
    let r = reference(&fixture("bf16-tied-sharded"));
    assert_eq!(run(&model, &r).1, ids(&r["greedy"]), "q8_0 keeps the greedy continuation");
}

#[test]
fn tokenizer_and_perplexity_survive_the_conversion() {
    let dir = fixture("f32-untied");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m.gguf");
    quantize::run(&QuantizeArgs::new(&dir, "f32", &out)).unwrap();
    let bytes = std::fs::read(&out).unwrap();
    let f = parse(&bytes);
    assert_eq!(f.get_str("tokenizer.ggml.model"), Some("gpt2"));
    assert_eq!(f.get_str("tokenizer.ggml.pre"), Some("gpt-2"));
    // From config.json (the fixture has no tokenizer_config.json).
    assert_eq!(f.get_u64("tokenizer.ggml.bos_token_id"), Some(1));
    assert_eq!(f.get_u64("tokenizer.ggml.eos_token_id"), Some(2));
    let from_gguf = Tokenizer::from_gguf(&f).unwrap();
    let from_json =
        Tokenizer::from_tokenizer_json(&std::fs::read_to_string(dir.join("tokenizer.json")).unwrap()).unwrap();
    let r = reference(&dir);
    for text in [r["text"]["prompt"].as_str().unwrap(), r["eval"]["text"].as_str().unwrap(), "naïve 🚀 x\n\t 33"] {
        assert_eq!(from_gguf.encode(text, false, false), from_json.encode(text, false, false), "{text}");
    }
    assert_eq!(from_gguf.encode(r["text"]["prompt"].as_str().unwrap(), false, false), ids(&r["text"]["ids"]));

    // quantlab eval: the checkpoint and its conversion score the same text the same.
    let text = tmp.path().join("text.txt");
    std::fs::write(&text, r["eval"]["text"].as_str().unwrap()).unwrap();
    let ctx = r["eval"]["ctx"].to_string();
    let eval = |model: &Path| -> Value {
        let o = quantlab(&[
            "eval".as_ref(),
            model.as_os_str(),
            "--text".as_ref(),
            text.as_os_str(),
            "--ctx".as_ref(),
            ctx.as_ref(),
            "--json".as_ref(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let (hf, gguf) = (eval(&dir), eval(&out));
    assert_eq!(hf["tokens_scored"], gguf["tokens_scored"]);
    let (a, b) = (hf["rows"][0]["ppl"].as_f64().unwrap(), gguf["rows"][0]["ppl"].as_f64().unwrap());
    assert!(((a - b) / a).abs() < 1e-6, "ppl {a} (checkpoint) vs {b} (converted)");
}

/// Converts `dir` to f32 in memory.
fn convert_dir(dir: &Path) -> Result<Vec<u8>, HfConvertError> {
    let ck = Checkpoint::open(dir).unwrap();
    let files = HfTokenizerFiles::read(dir)?;
    let target = Target::parse("f32").unwrap();
    let policy = TensorPolicy::default();
    let q = HfQuantize {
        scheme: &target.scheme,
        policy: &policy,
        saturation: Default::default(),
        method: &mut RoundToNearest,
    };
    let mut out = Vec::new();
    convert_hf_to_gguf(&HfSource { checkpoint: &ck, name: "m", tokenizer: &files }, q, &mut out, &mut |_, _, _| true)?;
    Ok(out)
}

fn edit_json(path: &Path, edit: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(path, serde_json::to_vec(&v).unwrap()).unwrap();
}

#[test]
fn what_cannot_be_converted_faithfully_is_refused() {
    let model_err = |r: Result<Vec<u8>, HfConvertError>| match r {
        Err(HfConvertError::Model(e)) => e,
        other => panic!("expected a model error, got {:?}", other.map(|b| b.len())),
    };
    // No tokenizer.json.
    let r = convert_dir(&fixture("f16-mqa-headdim"));
    assert_eq!(r.as_ref().map_err(HasKind::kind).err(), Some(ErrorKind::bad(quantlab::error::Input::Model)));
    let e = model_err(r);
    assert!(matches!(e, ModelError::NoHfTokenizer), "{e}");
    assert_eq!(e.kind(), ErrorKind::bad(quantlab::error::Input::Model));

    // A tokenizer model other than BPE, a normalizer, a prefix space, a SentencePiece model.
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit); 3] = [
        ("model.type", |v| v["model"]["type"] = "WordPiece".into()),
        ("normalizer", |v| v["normalizer"] = serde_json::json!({"type": "NFC"})),
        ("pre_tokenizer.add_prefix_space", |v| v["pre_tokenizer"]["add_prefix_space"] = true.into()),
    ];
    for (key, edit) in cases {
        let d = with_tokenizer("f32-untied");
        edit_json(&d.dir.path().join("tokenizer.json"), edit);
        let e = model_err(convert_dir(d.dir.path()));
        assert!(
            matches!(&e, ModelError::UnsupportedHfTokenizer { file, key: k, .. } if file == "tokenizer.json" && k == key),
            "{key}: {e}"
        );
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(e.to_string().starts_with(&format!("tokenizer.json: '{key}'")), "{e}");
    }
    let d = with_tokenizer("f32-untied");
    std::fs::write(d.dir.path().join("tokenizer.model"), b"spm").unwrap();
    let e = model_err(convert_dir(d.dir.path()));
    assert!(matches!(&e, ModelError::UnsupportedHfTokenizer { file, .. } if file == "tokenizer.model"), "{e}");

    // A vocabulary larger than config.json's vocab_size.
    let d = with_tokenizer("f32-untied");
    edit_json(&d.dir.path().join("tokenizer.json"), |v| {
        v["added_tokens"] = serde_json::json!([{"id": 300, "content": "<|x|>", "special": true}]);
    });
    let e = model_err(convert_dir(d.dir.path()));
    assert!(
        matches!(&e, ModelError::HfTokenizer { file, key, .. } if file == "tokenizer.json" && key == "model.vocab")
    );

    // Another architecture (the loader's config checks), through the CLI: exit 1, one line.
    let d = with_tokenizer("f32-untied");
    d.config(|c| {
        c.insert("architectures".into(), serde_json::json!(["MistralForCausalLM"]));
        c.insert("model_type".into(), "mistral".into());
    });
    let out = d.dir.path().join("x.gguf");
    let o = quantlab(&[
        "quantize".as_ref(),
        d.dir.path().as_os_str(),
        "-f".as_ref(),
        "q8_0".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("MistralForCausalLM") && err.contains("LlamaForCausalLM"), "{err}");
    assert!(!out.exists());
}

#[test]
fn tokenizer_config_sets_special_ids_flags_and_template() {
    let d = with_tokenizer("f32-untied");
    edit_json(&d.dir.path().join("tokenizer.json"), |v| {
        v["added_tokens"] = serde_json::json!([
            {"id": 250, "content": "<|im_start|>", "special": true},
            {"id": 251, "content": "<|im_end|>", "special": true},
            {"id": 252, "content": "<|user|>", "special": false},
            {"id": 253, "content": "word", "special": false}
        ]);
    });
    let template = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}";
    let tc = serde_json::json!({"bos_token": "<|im_start|>", "eos_token": {"content": "<|im_end|>"},
        "add_bos_token": true, "chat_template": template});
    std::fs::write(d.dir.path().join("tokenizer_config.json"), tc.to_string()).unwrap();
    let bytes = convert_dir(d.dir.path()).unwrap();
    let f = parse(&bytes);
    // tokenizer_config.json wins over config.json's bos/eos ids.
    assert_eq!(f.get_u64("tokenizer.ggml.bos_token_id"), Some(250));
    assert_eq!(f.get_u64("tokenizer.ggml.eos_token_id"), Some(251));
    assert_eq!(f.get("tokenizer.ggml.add_bos_token"), Some(&MetadataValue::Bool(true)));
    assert_eq!(f.get_str("tokenizer.chat_template"), Some(template));
    let types = f.get_array("tokenizer.ggml.token_type").unwrap().as_i32s().unwrap();
    // special → CONTROL (3); "<|user|>" looks special → CONTROL; a plain added token USER_DEFINED (4).
    assert_eq!(types[250..254], [3, 3, 3, 4]);
    let tok = Tokenizer::from_gguf(&f).unwrap();
    assert_eq!(tok.encode("<|im_start|>hi", tok.add_bos_default(), true), [250, 250, b'h' as u32, b'i' as u32]);
}
