//! SentencePiece-style BPE as llama.cpp runs it for `tokenizer.ggml.model = "llama"`
//! (`llm_tokenizer_spm_session`): start from UTF-8 characters, repeatedly merge the adjacent pair
//! whose concatenation is the vocabulary token with the highest score (leftmost on ties), then
//! emit each final symbol: its token if it is one, else the pieces it was merged from, else its
//! bytes as `<0xXX>` tokens (byte fallback).

use std::collections::{BinaryHeap, HashMap};

/// A queued candidate merge, ordered by score (highest first) and then by left position
/// (smallest first), like llama.cpp's `llm_bigram_spm::comparator`.
#[derive(Debug, Clone, Copy)]
struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    size: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == std::cmp::Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Bigram {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.score.total_cmp(&o.score).then_with(|| o.left.cmp(&self.left))
    }
}

#[derive(Debug, Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: usize,
    next: usize,
}

const NONE: usize = usize::MAX;

/// Tokenizes `text` (spaces already replaced by '▁'). `byte_token(b)` gives the fallback token
/// of a byte that forms no vocabulary token.
pub(super) fn tokenize<'t>(
    text: &'t str,
    token_to_id: &HashMap<String, u32>,
    scores: &[f32],
    byte_token: &dyn Fn(u8) -> Option<u32>,
    out: &mut Vec<u32>,
) {
    let bytes = text.as_bytes();
    let mut syms: Vec<Symbol> = Vec::new();
    for (i, (start, c)) in text.char_indices().enumerate() {
        let next = if start + c.len_utf8() == text.len() { NONE } else { i + 1 };
        syms.push(Symbol { start, len: c.len_utf8(), prev: i.wrapping_sub(1), next });
    }
    if syms.is_empty() {
        return;
    }
    syms[0].prev = NONE;
    let mut queue = BinaryHeap::new();
    // Text of a merged symbol → the two symbols it was made of (the latest such merge).
    let mut rev_merge: HashMap<&'t str, (usize, usize)> = HashMap::new();
    let try_add = |left: usize,
                   right: usize,
                   syms: &[Symbol],
                   queue: &mut BinaryHeap<Bigram>,
                   rev: &mut HashMap<&'t str, (usize, usize)>| {
        if left == NONE || right == NONE {
            return;
        }
        let (s, l) = (syms[left].start, syms[left].len + syms[right].len);
        let piece: &'t str = &text[s..s + l];
        let Some(&id) = token_to_id.get(piece) else { return };
        let Some(&score) = scores.get(id as usize) else { return };
        queue.push(Bigram { score, left, right, size: l });
        rev.insert(piece, (left, right));
    };
    for i in 1..syms.len() {
        try_add(i - 1, i, &syms, &mut queue, &mut rev_merge);
    }
    while let Some(b) = queue.pop() {
        let (l, r) = (syms[b.left], syms[b.right]);
        if l.len == 0 || r.len == 0 || l.len + r.len != b.size {
            continue;
        }
        syms[b.left].len += r.len;
        syms[b.right].len = 0;
        syms[b.left].next = r.next;
        if r.next != NONE {
            syms[r.next].prev = b.left;
        }
        try_add(syms[b.left].prev, b.left, &syms, &mut queue, &mut rev_merge);
        try_add(b.left, syms[b.left].next, &syms, &mut queue, &mut rev_merge);
    }
    let mut i = 0;
    while i != NONE {
        resegment(text, bytes, &syms, syms[i].start, syms[i].len, token_to_id, &rev_merge, byte_token, out);
        i = syms[i].next;
    }
}

#[allow(clippy::too_many_arguments)]
fn resegment(
    text: &str,
    bytes: &[u8],
    syms: &[Symbol],
    start: usize,
    len: usize,
    token_to_id: &HashMap<String, u32>,
    rev_merge: &HashMap<&str, (usize, usize)>,
    byte_token: &dyn Fn(u8) -> Option<u32>,
    out: &mut Vec<u32>,
) {
    let piece = &text[start..start + len];
    if let Some(&id) = token_to_id.get(piece) {
        out.push(id);
        return;
    }
    match rev_merge.get(piece) {
        Some(&(_, right)) => {
            // Unreachable with a consistent vocabulary (merged symbols are tokens), kept as in
            // llama.cpp: split where the right part of the merge started.
            let split = syms[right].start - start;
            resegment(text, bytes, syms, start, split, token_to_id, rev_merge, byte_token, out);
            resegment(text, bytes, syms, start + split, len - split, token_to_id, rev_merge, byte_token, out);
        }
        None => out.extend(bytes[start..start + len].iter().filter_map(|&b| byte_token(b))),
    }
}
