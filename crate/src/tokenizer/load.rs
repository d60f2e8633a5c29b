//! Building a [`Tokenizer`] from GGUF metadata or a Hugging Face `tokenizer.json`.

use super::*;

/// The most token ids (highest id + 1) a `tokenizer.json` may use. The highest id sizes the
/// token table, so a corrupt id (3·10^9) would otherwise ask for gigabytes; real vocabularies
/// stay below 300k, this is 16 times that. GGUF token lists need no cap: each entry takes bytes
/// of the file.
pub const MAX_TOKEN_IDS: usize = 1 << 22;

/// Ids a `tokenizer.json` may leave unused beyond one per defined token: the table is sized by
/// the highest id, so without this a file of a few hundred bytes with one id just below
/// [`MAX_TOKEN_IDS`] would allocate a table of millions of empty slots. Real tokenizers number
/// their tokens densely (a few reserved gaps at most).
pub const MAX_SPARE_IDS: usize = 1024;

/// Parts that both constructors fill in.
struct Parts {
    model: Model,
    tokens: Vec<String>,
    types: Vec<TokenType>,
    bos: Option<u32>,
    eos: Option<u32>,
    unk: Option<u32>,
    add_bos: bool,
    extra_eog: Vec<u32>,
    chat_template: Option<String>,
}

fn ints(a: &MetadataArray) -> Option<Vec<i64>> {
    Some(match a {
        MetadataArray::I32(v) => v.iter().map(|&x| x.into()).collect(),
        MetadataArray::U32(v) => v.iter().map(|&x| x.into()).collect(),
        MetadataArray::I8(v) => v.iter().map(|&x| x.into()).collect(),
        MetadataArray::U8(v) => v.iter().map(|&x| x.into()).collect(),
        MetadataArray::I16(v) => v.iter().map(|&x| x.into()).collect(),
        MetadataArray::U16(v) => v.iter().map(|&x| x.into()).collect(),
        MetadataArray::I64(v) => v.clone(),
        _ => return None,
    })
}

impl Tokenizer {
    /// Builds the tokenizer described by a GGUF's `tokenizer.*` metadata.
    pub fn from_gguf(f: &GgufFile) -> Result<Tokenizer, TokenizerError> {
        let missing = |k: &str| TokenizerError::MissingKey(k.to_string());
        let bad = |m: String| TokenizerError::BadMetadata(m);
        let model_name = f.get_str("tokenizer.ggml.model").ok_or_else(|| missing("tokenizer.ggml.model"))?;
        if model_name != "gpt2" && model_name != "llama" {
            return Err(TokenizerError::UnsupportedModel(model_name.to_string()));
        }
        let tokens = f
            .get_array("tokenizer.ggml.tokens")
            .ok_or_else(|| missing("tokenizer.ggml.tokens"))?
            .as_strings()
            .ok_or_else(|| bad("tokenizer.ggml.tokens is not an array of strings".into()))?
            .to_vec();
        let n = tokens.len();
        if n == 0 || n > u32::MAX as usize {
            return Err(bad(format!("tokenizer.ggml.tokens has {n} entries")));
        }
        let types = match f.get_array("tokenizer.ggml.token_type") {
            None => vec![TokenType::Normal; n],
            Some(a) => {
                let v = ints(a).ok_or_else(|| bad(format!("tokenizer.ggml.token_type is {}", a.type_name())))?;
                if v.len() != n {
                    return Err(bad(format!("{} token types for {n} tokens", v.len())));
                }
                v.iter()
                    .map(|&t| TokenType::from_id(t).ok_or_else(|| bad(format!("unknown token type {t}"))))
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        let id_key = |key: &str| -> Result<Option<u32>, TokenizerError> {
            match f.get(key) {
                None => Ok(None),
                Some(v) => match v.as_u64() {
                    Some(id) if (id as usize) < n => Ok(Some(id as u32)),
                    _ => Err(bad(format!("{key} = {v:?} is not a token id below {n}"))),
                },
            }
        };
        let (bos, eos, unk) = (
            id_key("tokenizer.ggml.bos_token_id")?,
            id_key("tokenizer.ggml.eos_token_id")?,
            id_key("tokenizer.ggml.unknown_token_id")?,
        );
        let mut extra_eog = Vec::new();
        for key in ["tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
            extra_eog.extend(id_key(key)?);
        }
        let chat_template = f.get_str("tokenizer.chat_template").map(str::to_string);
        let (model, add_bos_default) = if model_name == "gpt2" {
            let pre_name = f.get_str("tokenizer.ggml.pre");
            let pre = match pre_name {
                Some("smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva") => {
                    PreTokenizer::DigitsThenGpt2
                }
                // Files converted before `tokenizer.ggml.pre` existed were GPT-2-like. "gpt-2" is
                // the name convert_hf_to_gguf.py writes and llama.cpp reads.
                Some("gpt-2" | "gpt2" | "mpt" | "olmo") | None => PreTokenizer::Gpt2,
                Some(other) => return Err(TokenizerError::UnsupportedPreTokenizer(other.to_string())),
            };
            let merges = f
                .get_array("tokenizer.ggml.merges")
                .ok_or_else(|| missing("tokenizer.ggml.merges"))?
                .as_strings()
                .ok_or_else(|| bad("tokenizer.ggml.merges is not an array of strings".into()))?;
            let pairs = merges
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    m.split_once(' ')
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                        .ok_or_else(|| bad(format!("merge #{i} '{m}' has no space")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let token_to_id = index(&tokens);
            let bpe = bpe::BpeModel::new(&token_to_id, pairs).map_err(bad)?;
            (Model::Bpe { bpe, pre, add_prefix_space: false, ignore_merges: false }, false)
        } else {
            let scores = match f.get_array("tokenizer.ggml.scores") {
                None => vec![0.0; n],
                Some(a) => {
                    let s = a.as_f32s().ok_or_else(|| bad(format!("tokenizer.ggml.scores is {}", a.type_name())))?;
                    if s.len() != n {
                        return Err(bad(format!("{} scores for {n} tokens", s.len())));
                    }
                    s.to_vec()
                }
            };
            let add_space_prefix = f.get_bool("tokenizer.ggml.add_space_prefix").unwrap_or(true);
            (Model::Spm { scores, add_space_prefix }, true)
        };
        let add_bos = f.get_bool("tokenizer.ggml.add_bos_token").unwrap_or(add_bos_default);
        Ok(Self::build(Parts { model, tokens, types, bos, eos, unk, add_bos, extra_eog, chat_template }))
    }

    /// Builds a byte-level BPE tokenizer from a Hugging Face `tokenizer.json` (model "BPE", no
    /// normalizer, pre-tokenizer `ByteLevel` or `Sequence[Digits(individual_digits), ByteLevel]`).
    /// BOS/EOS are not part of that file (they live in tokenizer_config.json): set them with
    /// [`Tokenizer::with_special_ids`].
    pub fn from_tokenizer_json(json: &str) -> Result<Tokenizer, TokenizerError> {
        use serde_json::Value;
        let err = |m: String| TokenizerError::Json(m);
        let root: Value = serde_json::from_str(json).map_err(|e| err(e.to_string()))?;
        let model = root.get("model").ok_or_else(|| err("no \"model\"".into()))?;
        let ty = model.get("type").and_then(Value::as_str).unwrap_or("BPE");
        if ty != "BPE" {
            return Err(err(format!("model type \"{ty}\" is not supported (only \"BPE\")")));
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix", "dropout"] {
            if model.get(key).is_some_and(|v| !v.is_null()) {
                return Err(err(format!("BPE option \"{key}\" is not supported")));
            }
        }
        if model.get("byte_fallback").and_then(Value::as_bool) == Some(true) {
            return Err(
                err("BPE with byte_fallback (SentencePiece-style) is not supported from tokenizer.json".into()),
            );
        }
        let ignore_merges = model.get("ignore_merges").and_then(Value::as_bool).unwrap_or(false);
        if root.get("normalizer").is_some_and(|v| !v.is_null()) {
            return Err(err(format!("normalizer {} is not supported", root["normalizer"])));
        }
        let (pre, add_prefix_space) = json_pre_tokenizer(root.get("pre_tokenizer").unwrap_or(&Value::Null))?;

        let vocab = model.get("vocab").and_then(Value::as_object).ok_or_else(|| err("no BPE vocab".into()))?;
        let mut entries: Vec<(u32, String, TokenType)> = Vec::with_capacity(vocab.len());
        // Ids size the token table, so one is checked against MAX_TOKEN_IDS before it counts.
        let beyond = |what: String, id: u64| {
            err(format!("{what} has id {id}, beyond the limit of {MAX_TOKEN_IDS} token ids (MAX_TOKEN_IDS)"))
        };
        for (text, id) in vocab {
            let id = id.as_u64().ok_or_else(|| err(format!("model.vocab: bad id {id} for '{text}'")))?;
            if id >= MAX_TOKEN_IDS as u64 {
                return Err(beyond(format!("model.vocab entry '{text}'"), id));
            }
            entries.push((id as u32, text.clone(), TokenType::Normal));
        }
        for t in root.get("added_tokens").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]) {
            let id = t.get("id").and_then(Value::as_u64);
            let content = t.get("content").and_then(Value::as_str);
            let (Some(id), Some(content)) = (id, content) else {
                return Err(err(format!("bad added token {t}")));
            };
            if id >= MAX_TOKEN_IDS as u64 {
                return Err(beyond(format!("added_tokens entry '{content}'"), id));
            }
            let special = t.get("special").and_then(Value::as_bool).unwrap_or(false);
            let ty = if special { TokenType::Control } else { TokenType::UserDefined };
            entries.push((id as u32, content.to_string(), ty));
        }
        let n = entries.iter().map(|e| e.0 as usize + 1).max().unwrap_or(0);
        if n == 0 {
            return Err(err("empty vocabulary".into()));
        }
        if n > 2 * entries.len() + MAX_SPARE_IDS {
            return Err(err(format!(
                "token ids reach {} but only {} tokens are defined (model.vocab and added_tokens): the id table \
                 may be at most twice the tokens plus {MAX_SPARE_IDS} (MAX_SPARE_IDS)",
                n - 1,
                entries.len()
            )));
        }
        let mut tokens = vec![String::new(); n];
        let mut types = vec![TokenType::Unused; n];
        for (id, text, ty) in entries {
            tokens[id as usize] = text;
            types[id as usize] = ty;
        }

        let merges = model.get("merges").and_then(Value::as_array).ok_or_else(|| err("no BPE merges".into()))?;
        let mut pairs = Vec::with_capacity(merges.len());
        for (i, m) in merges.iter().enumerate() {
            let pair = match m {
                Value::String(s) => s.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())),
                Value::Array(v) if v.len() == 2 => match (v[0].as_str(), v[1].as_str()) {
                    (Some(a), Some(b)) => Some((a.to_string(), b.to_string())),
                    _ => None,
                },
                _ => None,
            };
            pairs.push(pair.ok_or_else(|| err(format!("bad merge #{i}: {m}")))?);
        }
        let token_to_id = index(&tokens);
        let bpe = bpe::BpeModel::new(&token_to_id, pairs).map_err(err)?;
        let model = Model::Bpe { bpe, pre, add_prefix_space, ignore_merges };
        Ok(Self::build(Parts {
            model,
            tokens,
            types,
            bos: None,
            eos: None,
            unk: None,
            add_bos: false,
            extra_eog: Vec::new(),
            chat_template: None,
        }))
    }

    fn build(p: Parts) -> Tokenizer {
        let token_to_id = index(&p.tokens);
        let mut added: Vec<u32> = (0..p.tokens.len() as u32)
            .filter(|&i| {
                matches!(p.types[i as usize], TokenType::Control | TokenType::UserDefined | TokenType::Unknown)
                    && !p.tokens[i as usize].is_empty()
            })
            .collect();
        added.sort_by_key(|&i| std::cmp::Reverse(p.tokens[i as usize].len()));
        let mut added_by_byte: HashMap<u8, Vec<u32>> = HashMap::new();
        for id in added {
            added_by_byte.entry(p.tokens[id as usize].as_bytes()[0]).or_default().push(id);
        }
        let mut eog: Vec<u32> = p.eos.into_iter().chain(p.extra_eog).collect();
        for (i, t) in p.tokens.iter().enumerate() {
            if p.types[i] == TokenType::Control && EOG_TEXTS.contains(&t.as_str()) {
                eog.push(i as u32);
            }
        }
        eog.sort_unstable();
        eog.dedup();
        Tokenizer {
            inner: Arc::new(Inner {
                model: p.model,
                tokens: p.tokens,
                types: p.types,
                token_to_id,
                added_by_byte,
                bos: p.bos,
                eos: p.eos,
                unk: p.unk,
                add_bos: p.add_bos,
                eog,
                chat_template: p.chat_template,
            }),
        }
    }
}

fn index(tokens: &[String]) -> HashMap<String, u32> {
    let mut m = HashMap::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        // The first id of a duplicated text wins (as in llama.cpp's token_to_id).
        m.entry(t.clone()).or_insert(i as u32);
    }
    m
}

/// `<0xAB>` → 0xAB.
pub(super) fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// The pre-tokenizer of a tokenizer.json (its `pre_tokenizer` value): (kind, ByteLevel
/// add_prefix_space).
pub fn json_pre_tokenizer(v: &serde_json::Value) -> Result<(PreTokenizer, bool), TokenizerError> {
    use serde_json::Value;
    let unsupported = || TokenizerError::UnsupportedPreTokenizer(v.to_string().chars().take(300).collect());
    let byte_level = |p: &Value| -> Option<bool> {
        (p.get("type")?.as_str()? == "ByteLevel" && p.get("use_regex").and_then(Value::as_bool).unwrap_or(true))
            .then(|| p.get("add_prefix_space").and_then(Value::as_bool).unwrap_or(true))
    };
    match v.get("type").and_then(Value::as_str) {
        Some("ByteLevel") => byte_level(v).map(|a| (PreTokenizer::Gpt2, a)).ok_or_else(unsupported),
        Some("Sequence") => {
            let list = v.get("pretokenizers").and_then(Value::as_array).ok_or_else(unsupported)?;
            match list.as_slice() {
                [d, b]
                    if d.get("type").and_then(Value::as_str) == Some("Digits")
                        && d.get("individual_digits").and_then(Value::as_bool) == Some(true) =>
                {
                    byte_level(b).map(|a| (PreTokenizer::DigitsThenGpt2, a)).ok_or_else(unsupported)
                }
                [b] => byte_level(b).map(|a| (PreTokenizer::Gpt2, a)).ok_or_else(unsupported),
                _ => Err(unsupported()),
            }
        }
        _ => Err(unsupported()),
    }
}
