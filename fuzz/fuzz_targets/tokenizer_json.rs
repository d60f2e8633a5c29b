//! The Hugging Face `tokenizer.json` loader on arbitrary text, then encoding and decoding with it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use quantlab::tokenizer::Tokenizer;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else { return };
    if let Ok(tokenizer) = Tokenizer::from_tokenizer_json(json) {
        common::exercise(&tokenizer);
    }
});
