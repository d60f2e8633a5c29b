// Shared by the targets: what to do with a tokenizer once a loader accepted it.
use quantlab::tokenizer::Tokenizer;

/// Text that reaches the byte-level, special-token and non-ASCII paths of every tokenizer.
const SAMPLE: &str = "Call me Ishmael. <|im_start|>user\n¿Qué? 12345 \u{1F40B}\t\r\n<s></s>  x";

/// Encodes and decodes a fixed sample and every token, so a loader that accepts a table the
/// encoder cannot use is found here rather than in `generate`.
pub fn exercise(tokenizer: &Tokenizer) {
    for parse_special in [false, true] {
        let ids = tokenizer.encode(SAMPLE, true, parse_special);
        let _ = tokenizer.decode(&ids);
        let _ = tokenizer.decode_skip_special(&ids);
    }
    // Past the end too: token_to_piece must not panic on an unknown id.
    let n = tokenizer.vocab_size().min(4096) as u32;
    for id in 0..n + 2 {
        let _ = tokenizer.token_to_piece(id);
    }
}
