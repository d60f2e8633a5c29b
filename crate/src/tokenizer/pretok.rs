//! Pre-tokenization of byte-level BPE: the GPT-2 split, optionally after isolating every digit.
//!
//! The GPT-2 pattern `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
//! needs a look-ahead the `regex` crate lacks, and a regex engine would cost more wasm than this
//! hand-written matcher of the same alternation (in the same priority order, as llama.cpp's
//! `unicode_regex_split_custom_gpt2` also does). Character classes: `\p{L}` from the generated
//! [`super::letters`] table, `\p{N}` = [`char::is_numeric`] (what Hugging Face's `Digits` uses),
//! `\s` = [`char::is_whitespace`] (the Unicode `White_Space` property, as Oniguruma's `\s`).

use super::letters::LETTER_RANGES;

/// The pre-tokenizers supported for byte-level BPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreTokenizer {
    /// The GPT-2 split alone (llama.cpp pre types "gpt2", "mpt", "olmo", ...).
    Gpt2,
    /// Every `\p{N}` character isolated first, then the GPT-2 split on the stretches between
    /// (Hugging Face `Sequence[Digits(individual_digits), ByteLevel]`; llama.cpp pre types
    /// "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva").
    DigitsThenGpt2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Letter,
    Number,
    Space,
    Other,
}

pub(super) fn is_letter(c: char) -> bool {
    let c = c as u32;
    if c < 0x80 {
        return (c as u8).is_ascii_alphabetic();
    }
    LETTER_RANGES
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

fn class(c: char) -> Class {
    if is_letter(c) {
        Class::Letter
    } else if c.is_numeric() {
        Class::Number
    } else if c.is_whitespace() {
        Class::Space
    } else {
        Class::Other
    }
}

impl PreTokenizer {
    /// Splits `text` into the pieces BPE runs on (byte offsets into `text`, in order, covering it).
    pub fn split<'a>(self, text: &'a str, out: &mut Vec<&'a str>) {
        match self {
            PreTokenizer::Gpt2 => gpt2_split(text, out),
            PreTokenizer::DigitsThenGpt2 => {
                let mut start = 0;
                for (i, c) in text.char_indices() {
                    if c.is_numeric() {
                        gpt2_split(&text[start..i], out);
                        let end = i + c.len_utf8();
                        out.push(&text[i..end]);
                        start = end;
                    }
                }
                gpt2_split(&text[start..], out);
            }
        }
    }
}

/// The GPT-2 pattern's matches in `text` (they cover it: every character belongs to some branch).
fn gpt2_split<'a>(text: &'a str, out: &mut Vec<&'a str>) {
    if text.is_empty() {
        return;
    }
    let chars: Vec<(usize, char, Class)> = text.char_indices().map(|(i, c)| (i, c, class(c))).collect();
    let n = chars.len();
    let offset = |k: usize| if k < n { chars[k].0 } else { text.len() };
    let mut i = 0;
    while i < n {
        let (_, c, cls) = chars[i];
        // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive, as in the GPT-2 pattern)
        if c == '\'' && i + 1 < n {
            let c1 = chars[i + 1].1;
            let len = match c1 {
                's' | 't' | 'm' | 'd' => 2,
                'r' | 'v' if i + 2 < n && chars[i + 2].1 == 'e' => 3,
                'l' if i + 2 < n && chars[i + 2].1 == 'l' => 3,
                _ => 0,
            };
            if len > 0 {
                out.push(&text[offset(i)..offset(i + len)]);
                i += len;
                continue;
            }
        }
        // ` ?X+` for X in \p{L}, \p{N}, [^\s\p{L}\p{N}]: an optional ASCII space, then a run.
        let (body, run) =
            if c == ' ' && i + 1 < n && chars[i + 1].2 != Class::Space { (i + 1, chars[i + 1].2) } else { (i, cls) };
        if run != Class::Space {
            let mut j = body + 1;
            while j < n && chars[j].2 == run {
                j += 1;
            }
            out.push(&text[offset(i)..offset(j)]);
            i = j;
            continue;
        }
        // \s+(?!\S) then \s+: a whitespace run followed by a non-space leaves its last character
        // to start the next piece (so " word" keeps its space); at the end it is taken whole.
        let mut j = i + 1;
        while j < n && chars[j].2 == Class::Space {
            j += 1;
        }
        if j < n && j - i > 1 {
            j -= 1;
        }
        out.push(&text[offset(i)..offset(j)]);
        i = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(p: PreTokenizer, s: &str) -> Vec<&str> {
        let mut v = Vec::new();
        p.split(s, &mut v);
        v
    }

    #[test]
    fn gpt2_pattern() {
        let g = PreTokenizer::Gpt2;
        assert_eq!(split(g, "Hello world"), ["Hello", " world"]);
        assert_eq!(split(g, "a   b"), ["a", "  ", " b"]);
        assert_eq!(split(g, "a\t\tb"), ["a", "\t", "\t", "b"]);
        assert_eq!(split(g, "x   "), ["x", "   "]);
        assert_eq!(split(g, "don't 'LL"), ["don", "'t", " '", "LL"]);
        assert_eq!(split(g, "?'s"), ["?'", "s"]);
        assert_eq!(split(g, " 123 !!"), [" 123", " !!"]);
        assert_eq!(split(g, "é中文"), ["é中文"]);
        assert_eq!(split(g, ""), Vec::<&str>::new());
        assert_eq!(split(PreTokenizer::DigitsThenGpt2, "a 12b"), ["a", " ", "1", "2", "b"]);
    }

    #[test]
    fn letters() {
        assert!(is_letter('a') && is_letter('ß') && is_letter('中') && is_letter('Ω'));
        assert!(!is_letter('1') && !is_letter(' ') && !is_letter('\u{301}') && !is_letter('Ⅻ'));
    }
}
