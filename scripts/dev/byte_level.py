"""GPT-2's byte-to-unicode table, shared by the dev scripts that build byte-level BPE vocabularies
(make_tokenizer_goldens.py, make_malformed.py). As published with GPT-2 (`bytes_to_unicode` in
openai/gpt-2's encoder.py): printable bytes map to themselves, the rest to 256 + n in byte order."""


def gpt2_byte_chars():
    """The 256 single-byte tokens of a byte-level BPE, indexed by byte value."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, cs))
    return [chr(table[b]) for b in range(256)]
