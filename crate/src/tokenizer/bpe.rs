//! Byte-level BPE (GPT-2 style): every byte of a pre-token is a symbol spelled with GPT-2's
//! byte→unicode table, then adjacent pairs are merged, lowest merge rank first (leftmost on
//! ties), as Hugging Face `tokenizers` and llama.cpp do.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// GPT-2's `bytes_to_unicode`: printable Latin-1 bytes map to themselves, the other 68 bytes to
/// U+0100.. in byte order (so the space 0x20 is 'Ġ' U+0120, the newline 'Ċ' U+010A).
pub(super) fn byte_to_char_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..256u32 {
        let printable = (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
        let c = if printable {
            b
        } else {
            n += 1;
            0xFF + n
        };
        table[b as usize] = char::from_u32(c).expect("below U+0144");
    }
    table
}

/// The merge table and byte symbols of a byte-level BPE vocabulary.
#[derive(Debug, Clone)]
pub(super) struct BpeModel {
    /// Token id of each byte's one-character symbol (`None` if the vocabulary lacks it).
    pub byte_token: Vec<Option<u32>>,
    /// `(left, right)` → `(rank, merged id)`.
    pub merges: HashMap<(u32, u32), (u32, u32)>,
    /// Character → byte, the inverse of [`byte_to_char_table`] (indexed by code point < 0x144).
    pub char_byte: Vec<Option<u8>>,
}

#[derive(Debug, Clone, Copy)]
struct Symbol {
    id: u32,
    prev: usize,
    next: usize,
    alive: bool,
}

const NONE: usize = usize::MAX;

impl BpeModel {
    /// `merges` are `(left, right)` token texts in rank order; a merge whose parts or result is
    /// not in the vocabulary is an error (it could never fire consistently).
    pub fn new(
        token_to_id: &HashMap<String, u32>,
        merges: impl IntoIterator<Item = (String, String)>,
    ) -> Result<BpeModel, String> {
        let chars = byte_to_char_table();
        let mut byte_token = vec![None; 256];
        let mut char_byte = vec![None; 0x144];
        for (b, &c) in chars.iter().enumerate() {
            byte_token[b] = token_to_id.get(c.encode_utf8(&mut [0; 4]) as &str).copied();
            char_byte[c as usize] = Some(b as u8);
        }
        let mut table = HashMap::new();
        let mut joined = String::new();
        for (rank, (a, b)) in merges.into_iter().enumerate() {
            let missing = |t: &str| format!("merge #{rank} '{a} {b}': token '{t}' is not in the vocabulary");
            let ia = *token_to_id.get(&a).ok_or_else(|| missing(&a))?;
            let ib = *token_to_id.get(&b).ok_or_else(|| missing(&b))?;
            joined.clear();
            joined.push_str(&a);
            joined.push_str(&b);
            let ij = *token_to_id.get(&joined).ok_or_else(|| missing(&joined))?;
            // The first (lowest-rank) occurrence of a duplicated pair wins.
            table.entry((ia, ib)).or_insert((rank as u32, ij));
        }
        Ok(BpeModel { byte_token, merges: table, char_byte })
    }

    /// Appends the ids of one pre-token to `out`. Bytes with no symbol in the vocabulary are
    /// dropped (Hugging Face does the same without an unk token; GPT-2 vocabularies have all 256).
    pub fn encode_word(&self, word: &[u8], out: &mut Vec<u32>) {
        let mut syms: Vec<Symbol> = Vec::with_capacity(word.len());
        for &b in word {
            if let Some(id) = self.byte_token[b as usize] {
                let i = syms.len();
                syms.push(Symbol { id, prev: i.wrapping_sub(1), next: i + 1, alive: true });
            }
        }
        let n = syms.len();
        if n == 0 {
            return;
        }
        syms[0].prev = NONE;
        syms[n - 1].next = NONE;
        if n == 1 {
            out.push(syms[0].id);
            return;
        }
        // Min-heap of (rank, left position, left id, right id); stale entries are skipped.
        let mut heap = BinaryHeap::with_capacity(n);
        for i in 0..n - 1 {
            if let Some(&(rank, _)) = self.merges.get(&(syms[i].id, syms[i + 1].id)) {
                heap.push(Reverse((rank, i, syms[i].id, syms[i + 1].id)));
            }
        }
        while let Some(Reverse((_, left, left_id, right_id))) = heap.pop() {
            let right = syms[left].next;
            if !syms[left].alive || right == NONE || syms[left].id != left_id || syms[right].id != right_id {
                continue;
            }
            let (_, merged) = self.merges[&(left_id, right_id)];
            syms[left].id = merged;
            syms[right].alive = false;
            let after = syms[right].next;
            syms[left].next = after;
            if after != NONE {
                syms[after].prev = left;
                if let Some(&(rank, _)) = self.merges.get(&(merged, syms[after].id)) {
                    heap.push(Reverse((rank, left, merged, syms[after].id)));
                }
            }
            let before = syms[left].prev;
            if before != NONE {
                if let Some(&(rank, _)) = self.merges.get(&(syms[before].id, merged)) {
                    heap.push(Reverse((rank, before, syms[before].id, merged)));
                }
            }
        }
        let mut i = 0;
        while i != NONE {
            out.push(syms[i].id);
            i = syms[i].next;
        }
    }

    /// The bytes a byte-level token text stands for. Characters outside the byte table (not
    /// produced by GPT-2 vocabularies) are kept as their UTF-8.
    pub fn token_bytes(&self, text: &str, out: &mut Vec<u8>) {
        for c in text.chars() {
            match self.char_byte.get(c as usize).copied().flatten() {
                Some(b) => out.push(b),
                None => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table() {
        let t = byte_to_char_table();
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[b'A' as usize], 'A');
        assert_eq!(t[0xAD], '\u{143}');
        let mut sorted = t.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 256);
    }

    #[test]
    fn merges_by_rank() {
        let t = byte_to_char_table();
        let mut vocab: HashMap<String, u32> = (0..256).map(|b| (t[b].to_string(), b as u32)).collect();
        for (i, s) in ["ab", "bc", "abc", "aa"].iter().enumerate() {
            vocab.insert(s.to_string(), 256 + i as u32);
        }
        let merges = [("b", "c"), ("a", "b"), ("a", "bc"), ("a", "a")].map(|(a, b)| (a.to_string(), b.to_string()));
        let m = BpeModel::new(&vocab, merges).unwrap();
        let enc = |s: &str| {
            let mut v = Vec::new();
            m.encode_word(s.as_bytes(), &mut v);
            v
        };
        // "bc" (rank 0) first, then "a"+"bc" (rank 2).
        assert_eq!(enc("abc"), [258]);
        // "aaa": leftmost "aa" first, then "a".
        assert_eq!(enc("aaa"), [259, b'a' as u32]);
        assert_eq!(enc("abab"), [256, 256]);
        assert_eq!(enc(""), Vec::<u32>::new());
    }
}
