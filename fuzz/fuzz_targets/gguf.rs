//! The GGUF reader on arbitrary bytes, and what the CLI and the lab do next with a header it
//! accepts: the summary, the model config, the tokenizer, and decoding each small tensor.
#![no_main]
use libfuzzer_sys::fuzz_target;
use quantlab::formats::{can_dequantize, dequantize_row};
use quantlab::gguf::{GgufFile, ModelSummary};
use quantlab::model::Config;
use quantlab::tokenizer::Tokenizer;

#[path = "common.rs"]
mod common;

/// Tensors above this many values are skipped: decoding cost, not coverage.
const MAX_DECODED: u64 = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::parse(data, data.len() as u64) else { return };
    let _ = ModelSummary::from_gguf(&file);
    let _ = Config::from_gguf(&file);
    if let Ok(tokenizer) = Tokenizer::from_gguf(&file) {
        common::exercise(&tokenizer);
    }
    for t in &file.tensors {
        let n = t.n_elements();
        if n > MAX_DECODED || !can_dequantize(t.ty) {
            continue;
        }
        if let Ok(bytes) = file.tensor_data(data, t) {
            let mut out = vec![0f32; n as usize];
            let _ = dequantize_row(t.ty, bytes, &mut out);
        }
    }
});
