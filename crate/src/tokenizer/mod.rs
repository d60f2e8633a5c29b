//! Text ⇄ token ids for the models the lab runs, built from a GGUF's `tokenizer.ggml.*` metadata
//! or from a Hugging Face `tokenizer.json`; plus the streaming UTF-8 decoder and the chat template.
//!
//! Two algorithms, as llama.cpp names them in `tokenizer.ggml.model`:
//! - `"gpt2"`: byte-level BPE (GPT-2, SmolLM2, Llama 3, Qwen…). Text is cut into pre-tokens by
//!   the model's pre-tokenizer ([`PreTokenizer`], chosen by `tokenizer.ggml.pre`), each pre-token's
//!   bytes are spelled with GPT-2's byte→unicode table and merged by rank (`bpe.rs`).
//! - `"llama"`: SentencePiece-style BPE (Llama 1/2, Mistral, TinyLlama): spaces become '▁', an
//!   optional space prefix, score-ordered merges of characters and `<0xXX>` byte fallback (`spm.rs`).
//!
//! Tokens of type CONTROL (and UNKNOWN) are matched whole in the input only when the caller asks
//! (`parse_special`); USER_DEFINED tokens always are (llama.cpp's `tokenizer_st_partition`; the
//! Hugging Face `tokenizers` library matches every added token). At each position the longest
//! such token wins, scanning left to right.
//!
//! This is our own implementation: the `tokenizers` crate builds for wasm32 (`unstable_wasm`,
//! fancy-regex) but adds several times the whole lab core to the optimised wasm module, so it is
//! checked against it (through the Python package) instead; see
//! scripts/dev/make_tokenizer_goldens.py and tests/rust/tokenizer.rs.

mod bpe;
mod chat;
mod letters;
mod load;
mod pretok;
mod spm;

pub use chat::{render_chatml, ChatMessage, ChatTemplate};
pub use load::{json_pre_tokenizer, MAX_SPARE_IDS, MAX_TOKEN_IDS};
pub use pretok::PreTokenizer;

use crate::gguf::{GgufFile, MetadataArray};
use load::parse_byte_token;
use std::collections::HashMap;
use std::sync::Arc;

/// llama.cpp's `llama_token_type` (the values of `tokenizer.ggml.token_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenType {
    Undefined,
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

impl TokenType {
    pub fn from_id(v: i64) -> Option<TokenType> {
        use TokenType::*;
        Some(match v {
            0 => Undefined,
            1 => Normal,
            2 => Unknown,
            3 => Control,
            4 => UserDefined,
            5 => Unused,
            6 => Byte,
            _ => return None,
        })
    }
}

/// Pre-tokenizer names (`tokenizer.ggml.pre`) accepted for `"gpt2"` models.
pub const SUPPORTED_PRE: &str = "\"smollm\", \"starcoder\", \"refact\", \"command-r\", \"codeshell\", \
     \"exaone\", \"minerva\" (digits split, then GPT-2) and \"gpt-2\", \"gpt2\", \"mpt\", \"olmo\" (GPT-2)";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TokenizerError {
    #[error("the model has no tokenizer: metadata key '{0}' is missing")]
    MissingKey(String),
    #[error("bad tokenizer metadata: {0}")]
    BadMetadata(String),
    #[error(
        "unsupported tokenizer model '{0}': supported are \"gpt2\" (byte-level BPE) and \"llama\" \
         (SentencePiece-style BPE)"
    )]
    UnsupportedModel(String),
    #[error("unsupported pre-tokenizer '{0}' for byte-level BPE: supported are {SUPPORTED_PRE}")]
    UnsupportedPreTokenizer(String),
    #[error("tokenizer.json: {0}")]
    Json(String),
    #[error("the model has no chat template")]
    NoChatTemplate,
    #[error(
        "unsupported chat template (only ChatML, `<|im_start|>role\\n…<|im_end|>`, is recognised; \
         there is no Jinja engine): {0}"
    )]
    UnsupportedChatTemplate(String),
}

#[derive(Debug, Clone)]
enum Model {
    Bpe {
        bpe: bpe::BpeModel,
        pre: PreTokenizer,
        /// Hugging Face ByteLevel `add_prefix_space`: a space before text that does not start
        /// with one.
        add_prefix_space: bool,
        /// Hugging Face BPE `ignore_merges`: a pre-token that is itself a token is taken whole.
        ignore_merges: bool,
    },
    Spm {
        scores: Vec<f32>,
        add_space_prefix: bool,
    },
}

/// A tokenizer. Cheap to clone (the vocabulary is shared).
#[derive(Debug, Clone)]
pub struct Tokenizer {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    model: Model,
    tokens: Vec<String>,
    types: Vec<TokenType>,
    token_to_id: HashMap<String, u32>,
    /// Tokens matched whole in the input, longest first, grouped by first byte.
    added_by_byte: HashMap<u8, Vec<u32>>,
    bos: Option<u32>,
    eos: Option<u32>,
    unk: Option<u32>,
    add_bos: bool,
    eog: Vec<u32>,
    chat_template: Option<String>,
}

/// One stretch of the input: plain text, or a token matched whole.
enum Fragment<'a> {
    Text(&'a str),
    Token(u32),
}

/// Texts of control tokens that end a turn (llama.cpp's end-of-generation heuristics).
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "<|end_of_text|>",
    "</s>",
];

impl Tokenizer {
    /// The same tokenizer with these BOS/EOS ids (for [`Tokenizer::from_tokenizer_json`]).
    pub fn with_special_ids(&self, bos: Option<u32>, eos: Option<u32>) -> Tokenizer {
        let mut inner = (*self.inner).clone();
        inner.bos = bos;
        inner.eos = eos;
        inner.eog.extend(eos);
        inner.eog.sort_unstable();
        inner.eog.dedup();
        Tokenizer { inner: Arc::new(inner) }
    }

    /// Token ids of `text`: BOS first if `add_bos` (and the model has one); control tokens
    /// written in the text (e.g. `<|im_start|>`) become their ids only if `parse_special`.
    pub fn encode(&self, text: &str, add_bos: bool, parse_special: bool) -> Vec<u32> {
        let inner = &*self.inner;
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_bos {
            out.extend(inner.bos);
        }
        let fragments = self.fragments(text, parse_special);
        match &inner.model {
            Model::Bpe { bpe, pre, add_prefix_space, ignore_merges } => {
                let mut spelled = String::new();
                let chars = bpe::byte_to_char_table();
                for frag in fragments {
                    let s = match frag {
                        Fragment::Token(id) => {
                            out.push(id);
                            continue;
                        }
                        Fragment::Text(s) => s,
                    };
                    let prefixed;
                    let s = if *add_prefix_space && !s.starts_with(' ') {
                        prefixed = format!(" {s}");
                        &prefixed
                    } else {
                        s
                    };
                    let mut pieces = Vec::new();
                    pre.split(s, &mut pieces);
                    for piece in &pieces {
                        if *ignore_merges {
                            spelled.clear();
                            spelled.extend(piece.bytes().map(|b| chars[b as usize]));
                            if let Some(&id) = inner.token_to_id.get(&spelled) {
                                out.push(id);
                                continue;
                            }
                        }
                        bpe.encode_word(piece.as_bytes(), &mut out);
                    }
                }
            }
            Model::Spm { scores, add_space_prefix } => {
                let byte_token = |b: u8| {
                    let hex = format!("<0x{b:02X}>");
                    inner
                        .token_to_id
                        .get(&hex)
                        .or_else(|| std::str::from_utf8(&[b]).ok().and_then(|s| inner.token_to_id.get(s)))
                        .copied()
                        .or(inner.unk)
                };
                let mut prev_special = true;
                for frag in fragments {
                    match frag {
                        Fragment::Token(id) => {
                            out.push(id);
                            prev_special = true;
                        }
                        Fragment::Text(s) => {
                            let mut t = String::with_capacity(s.len() + 3);
                            if *add_space_prefix && prev_special {
                                t.push(' ');
                            }
                            t.push_str(s);
                            let t = t.replace(' ', "\u{2581}");
                            spm::tokenize(&t, &inner.token_to_id, scores, &byte_token, &mut out);
                            prev_special = false;
                        }
                    }
                }
            }
        }
        out
    }

    /// Cuts `text` at the tokens matched whole (leftmost, longest at a position).
    fn fragments<'a>(&self, text: &'a str, parse_special: bool) -> Vec<Fragment<'a>> {
        let inner = &*self.inner;
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let (mut start, mut i) = (0, 0);
        while i < bytes.len() {
            let found = inner.added_by_byte.get(&bytes[i]).and_then(|ids| {
                ids.iter().copied().find(|&id| {
                    let special = inner.types[id as usize] != TokenType::UserDefined;
                    (parse_special || !special) && bytes[i..].starts_with(inner.tokens[id as usize].as_bytes())
                })
            });
            match found {
                Some(id) => {
                    if start < i {
                        out.push(Fragment::Text(&text[start..i]));
                    }
                    out.push(Fragment::Token(id));
                    i += inner.tokens[id as usize].len();
                    start = i;
                }
                None => i += 1,
            }
        }
        if start < bytes.len() {
            out.push(Fragment::Text(&text[start..]));
        }
        out
    }

    /// The bytes token `id` stands for (special tokens as their text; empty for an unknown id).
    /// Byte-level tokens may hold part of a UTF-8 character: see [`StreamDecoder`].
    pub fn token_to_piece(&self, id: u32) -> Vec<u8> {
        let mut out = Vec::new();
        self.append_piece(id, &mut out);
        out
    }

    fn append_piece(&self, id: u32, out: &mut Vec<u8>) {
        let inner = &*self.inner;
        let Some(text) = inner.tokens.get(id as usize) else { return };
        match (inner.types[id as usize], &inner.model) {
            (TokenType::Control | TokenType::UserDefined | TokenType::Unknown, _) => {
                out.extend_from_slice(text.as_bytes())
            }
            (TokenType::Byte, Model::Spm { .. }) => match parse_byte_token(text) {
                Some(b) => out.push(b),
                None => out.extend_from_slice(text.as_bytes()),
            },
            (_, Model::Bpe { bpe, .. }) => bpe.token_bytes(text, out),
            (_, Model::Spm { .. }) => out.extend_from_slice(text.replace('\u{2581}', " ").as_bytes()),
        }
    }

    /// The text of `ids`: pieces joined, then UTF-8 with invalid sequences replaced by U+FFFD
    /// (as Hugging Face and llama.cpp do). Special tokens are written as their text.
    pub fn decode(&self, ids: &[u32]) -> String {
        self.decode_impl(ids, false)
    }

    /// Like [`Tokenizer::decode`] but control tokens (BOS, `<|im_end|>`…) are left out.
    pub fn decode_skip_special(&self, ids: &[u32]) -> String {
        self.decode_impl(ids, true)
    }

    fn decode_impl(&self, ids: &[u32], skip_special: bool) -> String {
        let mut bytes = Vec::new();
        let mut first = true;
        for &id in ids {
            if skip_special && self.is_special(id) {
                continue;
            }
            let at = bytes.len();
            self.append_piece(id, &mut bytes);
            // SentencePiece: the space prefix added when encoding is removed from the first piece.
            if first {
                if let Model::Spm { add_space_prefix: true, .. } = self.inner.model {
                    if bytes.get(at) == Some(&b' ') && self.inner.types[id as usize] == TokenType::Normal {
                        bytes.remove(at);
                    }
                }
            }
            first = false;
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.inner.bos
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.inner.eos
    }

    /// Whether the model wants a BOS in front of a prompt (`tokenizer.ggml.add_bos_token`).
    pub fn add_bos_default(&self) -> bool {
        self.inner.add_bos && self.inner.bos.is_some()
    }

    /// End-of-generation tokens: EOS, EOT/EOM ids and control tokens such as `<|im_end|>`.
    pub fn eog_ids(&self) -> &[u32] {
        &self.inner.eog
    }

    pub fn is_eog(&self, id: u32) -> bool {
        self.inner.eog.contains(&id)
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.tokens.len()
    }

    /// Control tokens (BOS/EOS, `<|im_start|>`…): those `parse_special` matches and
    /// [`Tokenizer::decode_skip_special`] drops.
    pub fn is_special(&self, id: u32) -> bool {
        matches!(self.inner.types.get(id as usize), Some(TokenType::Control))
    }

    pub fn token_type(&self, id: u32) -> Option<TokenType> {
        self.inner.types.get(id as usize).copied()
    }

    /// The vocabulary entry of `id` as stored (byte-level tokens spelled with 'Ġ' etc.).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.inner.tokens.get(id as usize).map(String::as_str)
    }

    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.inner.token_to_id.get(text).copied()
    }

    /// "gpt2" or "llama" (llama.cpp's names).
    pub fn model_name(&self) -> &'static str {
        match self.inner.model {
            Model::Bpe { .. } => "gpt2",
            Model::Spm { .. } => "llama",
        }
    }

    /// The Jinja chat template from the model's metadata, if any.
    pub fn chat_template(&self) -> Option<&str> {
        self.inner.chat_template.as_deref()
    }

    /// The prompt for `messages` in the model's chat format (ChatML only; see [`ChatTemplate`]).
    pub fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, TokenizerError> {
        let template = self.chat_template().ok_or(TokenizerError::NoChatTemplate)?;
        Ok(ChatTemplate::detect(template)?.render(messages, add_generation_prompt))
    }
}

/// Turns byte pieces of a token stream into text, holding back an incomplete UTF-8 character
/// until the tokens that complete it arrive (an emoji is often 2–3 byte-level tokens).
#[derive(Debug, Clone, Default)]
pub struct StreamDecoder {
    pending: Vec<u8>,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds token `id`; returns the text that is now complete (possibly empty).
    pub fn push(&mut self, tokenizer: &Tokenizer, id: u32) -> String {
        let mut bytes = std::mem::take(&mut self.pending);
        tokenizer.append_piece(id, &mut bytes);
        self.take_complete(bytes)
    }

    /// Adds raw bytes; returns the text that is now complete.
    pub fn push_bytes(&mut self, piece: &[u8]) -> String {
        let mut bytes = std::mem::take(&mut self.pending);
        bytes.extend_from_slice(piece);
        self.take_complete(bytes)
    }

    /// Bytes held back (the start of a UTF-8 character).
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    /// Ends the stream: whatever is held back, an incomplete character becoming U+FFFD.
    pub fn finish(&mut self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut self.pending)).into_owned()
    }

    fn take_complete(&mut self, bytes: Vec<u8>) -> String {
        let mut out = String::new();
        let mut rest = bytes.as_slice();
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    out.push_str(std::str::from_utf8(valid).expect("checked"));
                    match e.error_len() {
                        // Incomplete character at the end: wait for more.
                        None => {
                            self.pending = after.to_vec();
                            break;
                        }
                        Some(n) => {
                            out.push('\u{FFFD}');
                            rest = &after[n..];
                        }
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_decoder_holds_partial_characters() {
        let mut d = StreamDecoder::new();
        let thumbs = "👍".as_bytes();
        assert_eq!(d.push_bytes(b"a"), "a");
        assert_eq!(d.push_bytes(&thumbs[..1]), "");
        assert_eq!(d.push_bytes(&thumbs[1..3]), "");
        assert_eq!(d.pending().len(), 3);
        assert_eq!(d.push_bytes(&thumbs[3..]), "👍");
        assert_eq!(d.push_bytes(b"\xffb"), "\u{FFFD}b");
        assert_eq!(d.push_bytes(&thumbs[..2]), "");
        assert_eq!(d.finish(), "\u{FFFD}");
        assert_eq!(d.finish(), "");
    }

    #[test]
    fn byte_tokens() {
        assert_eq!(parse_byte_token("<0x0A>"), Some(10));
        assert_eq!(parse_byte_token("<0xZZ>"), None);
        assert_eq!(parse_byte_token("<0x0A"), None);
    }
}
