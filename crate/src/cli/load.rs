//! One model loader for the commands that run a model (`generate`, `eval`): a GGUF file, or a
//! Hugging Face model directory (`config.json` + safetensors + `tokenizer.json`), or a
//! `.safetensors` / `model.safetensors.index.json` inside one.
//!
//! For Hugging Face directories the tokenizer comes from `tokenizer.json`
//! ([`Tokenizer::from_tokenizer_json`]) and its BOS/EOS ids from, in order,
//! `generation_config.json`, `config.json` (`bos_token_id`, `eos_token_id`, an id or a list of
//! ids: every one ends generation, the first is the EOS) and `tokenizer_config.json`
//! (`bos_token` / `eos_token`, looked up by text).

use super::{map_file, CliError};
use crate::gguf::GgufFile;
use crate::io::Checkpoint;
use crate::model::Model;
use crate::tokenizer::Tokenizer;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn msg(s: impl Into<String>) -> CliError {
    CliError::Message(s.into())
}

/// Whether `path` names a Hugging Face checkpoint rather than a GGUF file: a `.safetensors` or
/// `.index.json` file, or a directory holding `config.json` or a `.safetensors` file.
pub fn is_hf_checkpoint(path: &Path) -> bool {
    let hf_name = |p: &Path| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        name.ends_with(".safetensors") || name.ends_with(".index.json")
    };
    if path.is_dir() {
        let entries = std::fs::read_dir(path).into_iter().flatten().filter_map(Result::ok);
        path.join("config.json").is_file() || entries.map(|e| e.path()).any(|p| hf_name(&p))
    } else {
        hf_name(path)
    }
}

/// Loads the model and its tokenizer; the string says what was loaded ("m.gguf (GGUF)",
/// "dir (Hugging Face safetensors, 2 shards)").
pub fn load_model(path: &Path) -> Result<(Model, Tokenizer, String), CliError> {
    let shown = path.display();
    if is_hf_checkpoint(path) {
        let ck = Checkpoint::open(path).map_err(|e| msg(e.to_string()))?;
        let model = Model::from_hf_checkpoint(&ck).map_err(|e| msg(format!("{shown}: {e}")))?;
        let dir = if path.is_dir() { path.to_path_buf() } else { parent(path) };
        let tokenizer = hf_tokenizer(&dir)?;
        model.check_tokenizer_vocab(tokenizer.vocab_size()).map_err(|e| msg(format!("{shown}: {e}")))?;
        let shards = match ck.shards.len() {
            1 => String::new(),
            n => format!(", {n} shards"),
        };
        return Ok((model, tokenizer, format!("{shown} (Hugging Face safetensors{shards})")));
    }
    if path.is_dir() {
        return Err(msg(format!(
            "'{shown}' is a directory without config.json or .safetensors files: give a GGUF file or a \
             Hugging Face model directory"
        )));
    }
    let map = map_file(path)?;
    let gguf =
        GgufFile::parse(&map, map.len() as u64).map_err(|source| CliError::Gguf { path: path.into(), source })?;
    let tokenizer = Tokenizer::from_gguf(&gguf).map_err(|e| msg(format!("{shown}: {e}")))?;
    let model = Model::from_gguf(&gguf, &map).map_err(|e| msg(format!("{shown}: {e}")))?;
    model.check_tokenizer_vocab(tokenizer.vocab_size()).map_err(|e| msg(format!("{shown}: {e}")))?;
    Ok((model, tokenizer, format!("{shown} (GGUF)")))
}

fn parent(path: &Path) -> PathBuf {
    path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// `tokenizer.json` of a Hugging Face model directory, with BOS/EOS from the side files.
pub fn hf_tokenizer(dir: &Path) -> Result<Tokenizer, CliError> {
    let path = dir.join("tokenizer.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        msg(format!("cannot read '{}' ({e}): running a Hugging Face model needs its tokenizer.json", path.display()))
    })?;
    let tok = Tokenizer::from_tokenizer_json(&text).map_err(|e| msg(format!("{}: {e}", path.display())))?;
    let side: Vec<(String, Value)> = ["generation_config.json", "config.json"]
        .iter()
        .filter_map(|f| read_json(&dir.join(f)).transpose().map(|j| j.map(|j| (f.to_string(), j))))
        .collect::<Result<_, _>>()?;
    let tok_config = read_json(&dir.join("tokenizer_config.json"))?;

    let check = |file: &str, key: &str, id: u64| -> Result<u32, CliError> {
        if id < tok.vocab_size() as u64 {
            Ok(id as u32)
        } else {
            Err(msg(format!("{file}: {key} {id} is outside the tokenizer's {} tokens", tok.vocab_size())))
        }
    };
    // The first file that sets the id wins; an id may be one number or a list of them.
    let ids = |id_key: &str, text_key: &str| -> Result<Vec<u32>, CliError> {
        for (file, json) in &side {
            match json.get(id_key) {
                Some(Value::Number(n)) => return Ok(vec![check(file, id_key, n.as_u64().unwrap_or(u64::MAX))?]),
                Some(Value::Array(a)) if !a.is_empty() => {
                    return a.iter().map(|v| check(file, id_key, v.as_u64().unwrap_or(u64::MAX))).collect();
                }
                _ => {}
            }
        }
        let text = tok_config.as_ref().and_then(|c| c.get(text_key)).and_then(|v| match v {
            Value::String(s) => Some(s.as_str()),
            Value::Object(o) => o.get("content").and_then(Value::as_str),
            _ => None,
        });
        Ok(text.and_then(|t| tok.token_id(t)).into_iter().collect())
    };
    let bos = ids("bos_token_id", "bos_token")?.first().copied();
    let eos = ids("eos_token_id", "eos_token")?;
    // `with_special_ids` sets the EOS and adds it to the end-of-generation set: applying the
    // extra ids first and the main one last leaves every id in that set and the first as EOS.
    let mut tok = tok.with_special_ids(bos, None);
    for &id in eos.iter().rev() {
        tok = tok.with_special_ids(bos, Some(id));
    }
    Ok(tok)
}

/// A JSON file if it exists (`None` if not); a file that exists but does not parse is an error.
fn read_json(path: &Path) -> Result<Option<Value>, CliError> {
    if !path.is_file() {
        return Ok(None);
    }
    let bytes = std::fs::read(path).map_err(|e| msg(format!("cannot read '{}': {e}", path.display())))?;
    serde_json::from_slice(&bytes).map(Some).map_err(|e| msg(format!("'{}' is not valid JSON: {e}", path.display())))
}
