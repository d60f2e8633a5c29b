#!/usr/bin/env python3
"""Writes the malformed-file corpus in tests/fixtures/malformed/ (small, committed).

Each file breaks one rule a reader or loader must enforce; tests/rust/cli_malformed.rs runs
them through `quantlab info`, `stats`, `quantize`, `generate` and `eval` and expects a normal
error (exit 1) naming the problem, never a panic or an abort. The README there lists what
each file breaks. Standard library only; run from anywhere:

    python3 scripts/dev/make_malformed.py
"""
import json
import math
import os
import struct

from byte_level import gpt2_byte_chars

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "malformed")

# GGUF value type ids
U32, F32, BOOL, STRING, ARRAY, U64 = 4, 6, 7, 8, 9, 10
GGML_F32 = 0

DIM, FF, N_HEADS = 32, 32, 2


def gguf_str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def kv(key, ty, payload):
    return gguf_str(key) + struct.pack("<I", ty) + payload


def kv_u32(key, v):
    return kv(key, U32, struct.pack("<I", v))


def kv_f32(key, v):
    return kv(key, F32, struct.pack("<f", v))


def kv_str(key, v):
    return kv(key, STRING, gguf_str(v))


def kv_str_array(key, items, claimed=None):
    n = len(items) if claimed is None else claimed
    return kv(key, ARRAY, struct.pack("<IQ", STRING, n) + b"".join(gguf_str(s) for s in items))


def values(n, seed):
    """Deterministic values in [-1, 1) (a small LCG; no numpy needed)."""
    out, x = [], seed * 2654435761 % 2**32
    for _ in range(n):
        x = (1664525 * x + 1013904223) % 2**32
        out.append(x / 2**31 - 1.0)
    return out


def tiny_llama(n_tokens=256, embd_rows=256, alignment=None, poison=None, tensor_offset_shift=0):
    """A 1-block llama (dim 32, 2 heads, FFN 32), F32 tensors, byte-level gpt2 tokenizer,
    tied embeddings. `poison` = (tensor, value) writes `value` into that tensor's first weight."""
    tensors = [("token_embd.weight", [DIM, embd_rows]), ("output_norm.weight", [DIM])]
    for name, dims in [
        ("attn_norm", [DIM]),
        ("attn_q", [DIM, DIM]),
        ("attn_k", [DIM, DIM]),
        ("attn_v", [DIM, DIM]),
        ("attn_output", [DIM, DIM]),
        ("ffn_norm", [DIM]),
        ("ffn_gate", [DIM, FF]),
        ("ffn_up", [DIM, FF]),
        ("ffn_down", [FF, DIM]),
    ]:
        tensors.append((f"blk.0.{name}.weight", dims))
    tokens = gpt2_byte_chars()[: min(n_tokens, 256)] + [f"<extra_{i}>" for i in range(max(0, n_tokens - 256))]
    meta = [
        kv_str("general.architecture", "llama"),
        kv_u32("llama.block_count", 1),
        kv_u32("llama.context_length", 64),
        kv_u32("llama.embedding_length", DIM),
        kv_u32("llama.feed_forward_length", FF),
        kv_u32("llama.attention.head_count", N_HEADS),
        kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5),
        kv_str("tokenizer.ggml.model", "gpt2"),
        kv_str("tokenizer.ggml.pre", "gpt2"),
        kv_str_array("tokenizer.ggml.tokens", tokens),
        kv_str_array("tokenizer.ggml.merges", []),
    ]
    if alignment is not None:
        meta.append(kv_u32("general.alignment", alignment))
    align = 32
    header = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta)) + b"".join(meta)
    data = b""
    infos = b""
    for i, (name, dims) in enumerate(tensors):
        n = math.prod(dims)
        v = values(n, i + 1)
        if "norm" in name:
            v = [1.0 + 0.1 * x for x in v]
        if poison and poison[0] == name:
            v[0] = poison[1]
        offset = len(data) + (tensor_offset_shift if i == len(tensors) - 1 else 0)
        infos += gguf_str(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", GGML_F32, offset)
        data += struct.pack(f"<{n}f", *v)
        data += b"\0" * (-len(data) % align)
    head = header + infos
    head += b"\0" * (-len(head) % align)
    return head + data


def safetensors_bytes(header_len_override=None, truncate=None):
    header = json.dumps({"w": {"dtype": "F32", "shape": [2, 4], "data_offsets": [0, 32]}}).encode()
    header += b" " * (-len(header) % 8)
    n = len(header) if header_len_override is None else header_len_override
    b = struct.pack("<Q", n) + header + struct.pack("<8f", *values(8, 7))
    return b[:truncate] if truncate else b


def tokenizer_json(extra_vocab=None, added=None):
    """A byte-level BPE tokenizer.json over the 256 byte tokens (ids 0..255)."""
    vocab = {t: i for i, t in enumerate(gpt2_byte_chars())}
    vocab.update(extra_vocab or {})
    return json.dumps(
        {
            "version": "1.0",
            "added_tokens": added or [],
            "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
            "model": {"type": "BPE", "vocab": vocab, "merges": []},
        },
        ensure_ascii=False,
        indent=1,
    )


def added(id_, content):
    return {"id": id_, "content": content, "special": True, "single_word": False, "lstrip": False,
            "rstrip": False, "normalized": False}


def main():
    os.makedirs(OUT, exist_ok=True)
    good = tiny_llama()
    files = {
        "bad_magic.gguf": b"GGML" + good[4:200],
        "truncated_header.gguf": good[:40],
        "alignment_2p31.gguf": tiny_llama(alignment=2**31),
        "huge_token_count.gguf": b"GGUF"
        + struct.pack("<IQQ", 3, 0, 1)
        + kv_str_array("tokenizer.ggml.tokens", ["a", "b"], claimed=2**62),
        "tensor_past_end.gguf": tiny_llama(tensor_offset_shift=1 << 20),
        "vocab_beyond_embedding.gguf": tiny_llama(n_tokens=300, embd_rows=256),
        "nan_weight.gguf": tiny_llama(poison=("blk.0.attn_q.weight", float("nan"))),
        "header_len_huge.safetensors": safetensors_bytes(header_len_override=2**40),
        "truncated.safetensors": safetensors_bytes(truncate=60),
        # tokenizer.json files: the tests put each next to a copy of tests/fixtures/hf/f32-untied's
        # config.json and model.safetensors (vocab_size 256).
        "added_token_id_1e8.tokenizer.json": tokenizer_json(added=[added(10**8, "<big>")]),
        "added_token_id_u32max.tokenizer.json": tokenizer_json(added=[added(2**32 - 1, "<max>")]),
        "vocab_id_3e9.tokenizer.json": tokenizer_json(extra_vocab={"zz": 3 * 10**9}),
        "added_token_past_vocab_size.tokenizer.json": tokenizer_json(added=[added(300, "<past>")]),
    }
    for name, b in files.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(b if isinstance(b, bytes) else b.encode())
    print(f"wrote {len(files)} files to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
