//! The `tokenizer.*` GGUF keys of a Hugging Face LLaMA checkpoint whose tokenizer is a
//! byte-level BPE `tokenizer.json`, as llama.cpp's `convert_hf_to_gguf.py` writes them
//! (`LlamaModel.set_vocab` → `_set_vocab_gpt2`, then gguf-py's `SpecialVocab`):
//!
//! - `tokenizer.ggml.model` "gpt2"; `.pre` from the pre-tokenizer (below); `.tokens` with one
//!   entry per id below config.json's `vocab_size` (ids the tokenizer does not use become
//!   `[PAD<id>]`, type UNUSED); `.token_type` (added tokens that are special or look special,
//!   `<|…|>`, are CONTROL, other added tokens USER_DEFINED, the rest NORMAL); `.merges` (pairs
//!   written `"a b"`, a space inside a part spelled U+0120 as gguf-py does).
//! - special token ids: from tokenizer_config.json's `bos_token` … (matched to `added_tokens` by
//!   content), else config.json's `bos_token_id` …; `add_bos_token` / `add_eos_token` /
//!   `add_sep_token` from the post-processor (ByteLevel: false; TemplateProcessing: whether its
//!   single template starts with BOS / ends with EOS), else tokenizer_config.json;
//!   `tokenizer.chat_template` from tokenizer_config.json (or chat_template.jinja beside it).
//!
//! `tokenizer.ggml.pre`: convert_hf_to_gguf.py names the pre-tokenizer by hashing the ids a
//! probe text gets, which only works for published tokenizers. Here it is read from the
//! `pre_tokenizer` itself; the two layouts quantlab's tokenizer implements have llama.cpp names:
//! `ByteLevel` → "gpt-2", `Sequence[Digits(individual), ByteLevel]` → "smollm" (what the hash
//! gives SmolLM's tokenizer; llama.cpp splits the same way for "starcoder" and others).
//!
//! What llama.cpp would tokenize differently from the `tokenizers` library is refused, naming
//! the file and key: another model type, a normalizer, byte fallback (SentencePiece-style
//! BPE), `ignore_merges`, a prefix space, a pre-tokenizer other than the two above, a
//! `tokenizer.model` (convert would write a SentencePiece vocabulary from it).
//!
//! Deviations, all so llama.cpp loads the file: `tokenizer.ggml.merges` is written even when
//! empty (convert omits it and llama.cpp then refuses a "gpt2" vocabulary); a special id at or
//! past the vocabulary is an error (convert writes it). Not reproduced: the EOT/EOM guesses
//! gguf-py makes when a TemplateProcessing ends with a token other than EOS, and named chat
//! template lists (an error).

use serde_json::Value;

use super::ModelError;
use crate::gguf::{MetadataArray, MetadataValue};
use crate::tokenizer::{json_pre_tokenizer, PreTokenizer, TokenType, Tokenizer};

/// The tokenizer files of a Hugging Face model directory.
#[derive(Debug, Clone, Default)]
pub struct HfTokenizerFiles {
    /// `tokenizer.json`; required.
    pub tokenizer_json: Option<String>,
    /// `tokenizer_config.json`.
    pub tokenizer_config: Option<String>,
    /// `chat_template.jinja`.
    pub chat_template_jinja: Option<String>,
    /// Whether a SentencePiece `tokenizer.model` is present.
    pub sentencepiece_model: bool,
}

impl HfTokenizerFiles {
    /// Reads the files from the model directory `dir` (absent files are `None`).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read(dir: &std::path::Path) -> Result<HfTokenizerFiles, ModelError> {
        let read = |file: &str| -> Result<Option<String>, ModelError> {
            let path = dir.join(file);
            if !path.is_file() {
                return Ok(None);
            }
            std::fs::read_to_string(&path).map(Some).map_err(|e| bad(file, "(file)", format!("cannot be read: {e}")))
        };
        Ok(HfTokenizerFiles {
            tokenizer_json: read("tokenizer.json")?,
            tokenizer_config: read("tokenizer_config.json")?,
            chat_template_jinja: read("chat_template.jinja")?,
            sentencepiece_model: dir.join("tokenizer.model").is_file(),
        })
    }
}

fn bad(file: &str, key: &str, reason: String) -> ModelError {
    ModelError::HfTokenizer { file: file.into(), key: key.into(), reason }
}

fn unsupported(file: &str, key: &str, reason: String) -> ModelError {
    ModelError::UnsupportedHfTokenizer { file: file.into(), key: key.into(), reason }
}

const TOKENIZER_JSON: &str = "tokenizer.json";
const TOKENIZER_CONFIG: &str = "tokenizer_config.json";

/// Special token kinds in gguf-py's order, with the GGUF key of each id (cls has none: gguf-py
/// skips it).
const SPECIAL: [(&str, Option<&str>); 7] = [
    ("bos", Some("tokenizer.ggml.bos_token_id")),
    ("eos", Some("tokenizer.ggml.eos_token_id")),
    ("unk", Some("tokenizer.ggml.unknown_token_id")),
    ("sep", Some("tokenizer.ggml.seperator_token_id")),
    ("pad", Some("tokenizer.ggml.padding_token_id")),
    ("cls", None),
    ("mask", Some("tokenizer.ggml.mask_token_id")),
];

/// The `add_<kind>_token` flags gguf-py writes.
const ADD_FLAGS: [&str; 3] = ["bos", "eos", "sep"];

/// The tokenizer keys, in the order convert_hf_to_gguf.py writes them, for a model whose
/// config.json is `config` (its `vocab_size` sizes the token list).
pub fn tokenizer_metadata(
    config: &Value,
    vocab_size: usize,
    files: &HfTokenizerFiles,
) -> Result<Vec<(String, MetadataValue)>, ModelError> {
    if files.sentencepiece_model {
        return Err(unsupported(
            "tokenizer.model",
            "(SentencePiece model)",
            "is present: convert_hf_to_gguf.py would write a SentencePiece (\"llama\") vocabulary from it".into(),
        ));
    }
    let text = files.tokenizer_json.as_deref().ok_or(ModelError::NoHfTokenizer)?;
    let root: Value = serde_json::from_str(text).map_err(|e| bad(TOKENIZER_JSON, "(JSON)", e.to_string()))?;
    let pre = check_tokenizer_json(&root)?;
    let tok = Tokenizer::from_tokenizer_json(text).map_err(|e| bad(TOKENIZER_JSON, "model", e.to_string()))?;
    let tc: Option<Value> = match &files.tokenizer_config {
        None => None,
        Some(t) => Some(serde_json::from_str(t).map_err(|e| bad(TOKENIZER_CONFIG, "(JSON)", e.to_string()))?),
    };

    let mut meta: Vec<(String, MetadataValue)> = Vec::new();
    let mut put = |k: &str, v: MetadataValue| match meta.iter_mut().find(|(key, _)| key == k) {
        Some((_, old)) => *old = v,
        None => meta.push((k.to_string(), v)),
    };
    if let Some(p) = tc.as_ref().and_then(|c| c.get("add_prefix_space")).and_then(Value::as_bool) {
        put("tokenizer.ggml.add_space_prefix", MetadataValue::Bool(p));
    }
    put("tokenizer.ggml.model", MetadataValue::String("gpt2".into()));
    let pre_name = match pre {
        PreTokenizer::Gpt2 => "gpt-2",
        PreTokenizer::DigitsThenGpt2 => "smollm",
    };
    put("tokenizer.ggml.pre", MetadataValue::String(pre_name.into()));
    let (tokens, types) = token_list(&tok, vocab_size)?;
    put("tokenizer.ggml.tokens", MetadataValue::Array(MetadataArray::String(tokens)));
    put("tokenizer.ggml.token_type", MetadataValue::Array(MetadataArray::I32(types)));
    put("tokenizer.ggml.merges", MetadataValue::Array(MetadataArray::String(merges(&root)?)));

    let special = special_tokens(&root, tc.as_ref(), config, files)?;
    for &(kind, id) in &special.ids {
        if id as usize >= vocab_size {
            return Err(bad(
                special.source(kind),
                &format!("{kind}_token"),
                format!("is token id {id}, beyond the vocabulary of {vocab_size} tokens"),
            ));
        }
        if let Some((_, Some(key))) = SPECIAL.iter().find(|(k, _)| *k == kind) {
            put(key, MetadataValue::U32(id));
        }
    }
    for &(kind, value) in &special.add {
        if ADD_FLAGS.contains(&kind) {
            put(&format!("tokenizer.ggml.add_{kind}_token"), MetadataValue::Bool(value));
        }
    }
    if let Some(t) = special.chat_template.clone() {
        put("tokenizer.chat_template", MetadataValue::String(t));
    }
    // LlamaModel.set_vocab: Granite's small models (this vocabulary size) get no BOS.
    if vocab_size == 49152 {
        put("tokenizer.ggml.add_bos_token", MetadataValue::Bool(false));
    }
    Ok(meta)
}

/// Refuses what llama.cpp would tokenize differently; returns the pre-tokenizer.
fn check_tokenizer_json(root: &Value) -> Result<PreTokenizer, ModelError> {
    let model = root.get("model").ok_or_else(|| bad(TOKENIZER_JSON, "model", "is missing".into()))?;
    let ty = model.get("type").and_then(Value::as_str).unwrap_or("BPE");
    if ty != "BPE" {
        return Err(unsupported(TOKENIZER_JSON, "model.type", format!("is \"{ty}\"")));
    }
    if model.get("byte_fallback").and_then(Value::as_bool) == Some(true) {
        return Err(unsupported(
            TOKENIZER_JSON,
            "model.byte_fallback",
            "is true (SentencePiece-style BPE; convert_hf_to_gguf.py writes a \"llama\" vocabulary for it)".into(),
        ));
    }
    if model.get("ignore_merges").and_then(Value::as_bool) == Some(true) {
        return Err(unsupported(
            TOKENIZER_JSON,
            "model.ignore_merges",
            "is true (llama.cpp ignores merges only for its llama3 pre-tokenizer)".into(),
        ));
    }
    if root.get("normalizer").is_some_and(|v| !v.is_null()) {
        return Err(unsupported(TOKENIZER_JSON, "normalizer", format!("is {}", root["normalizer"])));
    }
    let (pre, add_prefix_space) = json_pre_tokenizer(root.get("pre_tokenizer").unwrap_or(&Value::Null))
        .map_err(|e| unsupported(TOKENIZER_JSON, "pre_tokenizer", format!("is not supported ({e})")))?;
    if add_prefix_space {
        return Err(unsupported(
            TOKENIZER_JSON,
            "pre_tokenizer.add_prefix_space",
            "is true (llama.cpp's byte-level BPE adds no prefix space)".into(),
        ));
    }
    Ok(pre)
}

/// convert_hf_to_gguf.py's `TokenType` numbers (gguf-py `TokenType`).
fn type_id(t: TokenType) -> i32 {
    match t {
        TokenType::Undefined => 0,
        TokenType::Normal => 1,
        TokenType::Unknown => 2,
        TokenType::Control => 3,
        TokenType::UserDefined => 4,
        TokenType::Unused => 5,
        TokenType::Byte => 6,
    }
}

/// gguf-py's `does_token_look_special`.
fn looks_special(t: &str) -> bool {
    matches!(t, "<pad>" | "<mask>" | "<2mass>" | "[@BOS@]")
        || (t.starts_with("<|") && t.ends_with("|>"))
        || (t.starts_with("<\u{ff5c}") && t.ends_with("\u{ff5c}>"))
        || (t.starts_with("<unused") && t.ends_with('>'))
}

/// One text and type per id below `vocab_size` (convert_hf_to_gguf.py's `get_vocab_base`).
fn token_list(tok: &Tokenizer, vocab_size: usize) -> Result<(Vec<String>, Vec<i32>), ModelError> {
    let n = tok.vocab_size();
    if n > vocab_size {
        return Err(bad(
            TOKENIZER_JSON,
            "model.vocab",
            format!("uses token id {}, beyond config.json's vocab_size {vocab_size}", n - 1),
        ));
    }
    let mut tokens = Vec::with_capacity(vocab_size);
    let mut types = Vec::with_capacity(vocab_size);
    for id in 0..vocab_size as u32 {
        let text = tok.token_text(id).unwrap_or_default();
        let (text, ty) = match tok.token_type(id).unwrap_or(TokenType::Unused) {
            TokenType::Unused => (format!("[PAD{id}]"), TokenType::Unused),
            // Added tokens: `from_tokenizer_json` types special ones CONTROL, others USER_DEFINED.
            TokenType::Control => (text.to_string(), TokenType::Control),
            TokenType::UserDefined if looks_special(text) => (text.to_string(), TokenType::Control),
            TokenType::UserDefined => (text.replace('\u{2581}', " "), TokenType::UserDefined),
            other => (text.to_string(), other),
        };
        tokens.push(text);
        types.push(type_id(ty));
    }
    Ok((tokens, types))
}

/// `model.merges` as gguf-py writes them: strings as they are, pairs joined by a space with
/// any space inside a part spelled U+0120.
fn merges(root: &Value) -> Result<Vec<String>, ModelError> {
    let list = root["model"].get("merges").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    let spell = |s: &str| s.replace(' ', "\u{120}");
    list.iter()
        .enumerate()
        .map(|(i, m)| match m {
            Value::String(s) => Ok(s.clone()),
            Value::Array(p) if p.len() == 2 && p.iter().all(Value::is_string) => {
                Ok(format!("{} {}", spell(p[0].as_str().unwrap_or("")), spell(p[1].as_str().unwrap_or(""))))
            }
            other => Err(bad(TOKENIZER_JSON, &format!("model.merges[{i}]"), format!("is {other}, expected a pair"))),
        })
        .collect()
}

/// gguf-py's `SpecialVocab` results.
struct Special {
    /// (kind, id) in the order they were found.
    ids: Vec<(&'static str, u32)>,
    /// (kind, add flag) in the order they were found.
    add: Vec<(&'static str, bool)>,
    chat_template: Option<String>,
    /// Kinds whose id came from config.json (the others from tokenizer_config.json).
    from_config: Vec<&'static str>,
}

impl Special {
    fn set_id(&mut self, kind: &'static str, id: u32) {
        if !self.ids.iter().any(|(k, _)| *k == kind) {
            self.ids.push((kind, id));
        }
    }

    fn set_add_default(&mut self, kind: &'static str, value: bool) {
        if !self.add.iter().any(|(k, _)| *k == kind) {
            self.add.push((kind, value));
        }
    }

    fn set_add(&mut self, kind: &'static str, value: bool) {
        match self.add.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, v)) => *v = value,
            None => self.add.push((kind, value)),
        }
    }

    fn source(&self, kind: &str) -> &'static str {
        if self.from_config.contains(&kind) {
            "config.json"
        } else {
            TOKENIZER_CONFIG
        }
    }
}

/// A special token entry's content: a string or `{"content": …}`.
fn content(v: Option<&Value>) -> Option<&str> {
    match v? {
        Value::String(s) => Some(s),
        Value::Object(o) => o.get("content").and_then(Value::as_str),
        _ => None,
    }
}

fn special_tokens(
    root: &Value,
    tc: Option<&Value>,
    config: &Value,
    files: &HfTokenizerFiles,
) -> Result<Special, ModelError> {
    let mut s = Special { ids: Vec::new(), add: Vec::new(), chat_template: None, from_config: Vec::new() };
    let entry = |k: &str| content(tc.and_then(|c| c.get(format!("{k}_token").as_str()))).map(str::to_string);
    let mut special_bos = entry("bos").or_else(|| entry("cls"));
    let mut special_eos = entry("eos").or_else(|| entry("sep"));
    let special_cls = entry("cls");
    let pp = root.get("post_processor").filter(|v| !v.is_null());
    let processors: Vec<&Value> = match pp.and_then(|p| p.get("processors")).and_then(Value::as_array) {
        Some(list) => list.iter().collect(),
        None => pp.into_iter().collect(),
    };
    for p in processors {
        match p.get("type").and_then(Value::as_str) {
            Some("ByteLevel") => {
                s.set_add_default("bos", false);
                s.set_add_default("eos", false);
            }
            Some("RobertaProcessing") => {
                for k in ["bos", "eos", "sep"] {
                    s.set_add(k, true);
                }
            }
            Some("TemplateProcessing") => {
                let single = p.get("single").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
                if single.len() > 1 {
                    if let Some(first) = special_id(single.first()) {
                        if tc.is_none() {
                            special_bos = Some(first.to_string());
                        }
                        let is_bos = [&special_bos, &special_cls].iter().any(|t| t.as_deref() == Some(first));
                        s.set_add("bos", is_bos);
                    }
                    if let Some(last) = special_id(single.last()) {
                        if tc.is_none() {
                            special_eos = Some(last.to_string());
                        }
                        s.set_add("eos", special_eos.as_deref() == Some(last));
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(tc) = tc {
        let template = tc.get("chat_template").filter(|v| !v.is_null());
        s.chat_template = match template {
            Some(Value::String(t)) => Some(t.clone()),
            Some(other) => {
                return Err(unsupported(
                    TOKENIZER_CONFIG,
                    "chat_template",
                    format!("is {} (only a single template string is converted)", other_kind(other)),
                ))
            }
            None => files.chat_template_jinja.clone(),
        };
        let added = root.get("added_tokens").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        for (kind, _) in SPECIAL {
            if let Some(flag) = tc.get(format!("add_{kind}_token").as_str()).and_then(Value::as_bool) {
                s.set_add_default(kind, flag);
            }
            // bos/eos fall back to cls/sep, as gguf-py fills tokenizer_config in.
            let text = match kind {
                "bos" => special_bos.as_deref(),
                "eos" => special_eos.as_deref(),
                _ => content(tc.get(format!("{kind}_token").as_str())),
            };
            let Some(text) = text else { continue };
            let id = added.iter().find(|t| t.get("content").and_then(Value::as_str) == Some(text));
            if let Some(id) = id.and_then(|t| t.get("id")).and_then(Value::as_u64) {
                s.set_id(kind, u32::try_from(id).unwrap_or(u32::MAX));
            }
        }
    }
    for (kind, _) in SPECIAL {
        if let Some(id) = config.get(format!("{kind}_token_id").as_str()).and_then(Value::as_u64) {
            if !s.ids.iter().any(|(k, _)| *k == kind) {
                s.from_config.push(kind);
            }
            s.set_id(kind, u32::try_from(id).unwrap_or(u32::MAX));
        }
    }
    Ok(s)
}

/// The id (token text) of a TemplateProcessing entry that is a special token.
fn special_id(v: Option<&Value>) -> Option<&str> {
    v?.get("SpecialToken")?.get("id")?.as_str()
}

fn other_kind(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "a list of named templates",
        _ => "not a string",
    }
}
