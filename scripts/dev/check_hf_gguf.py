#!/usr/bin/env python3
"""Checks a GGUF that `quantlab quantize HF_DIR -o OUT.gguf` wrote, reading it with gguf-py.

    python3 scripts/dev/check_hf_gguf.py OUT.gguf HF_DIR

Dev tool (scripts/dev/check_hf_convert.sh runs it). Expectations are derived here from the
checkpoint's own files, independently of quantlab's code, following what llama.cpp's
convert_hf_to_gguf.py writes for LlamaForCausalLM (its LlamaModel / TextModel and gguf-py's
SpecialVocab): key names and GGUF value types, hyper-parameter values, the token list padded
to vocab_size, the merges, tensor names and shapes (ggml order), 1-D tensors in F32, and, for
F32/F16/BF16 output tensors, the values: q/k rows permuted per head exactly as
`LlamaModel.permute` (reshape(n_head, 2, hd/2, cols).swapaxes(1, 2)), every other tensor equal to
the checkpoint's. Not from convert_hf_to_gguf.py itself: it needs torch and transformers, which
are not installable here, and it names the pre-tokenizer by hashing a published tokenizer's ids.
Exits 1 listing every mismatch.
"""

import json
import os
import struct
import sys

import numpy as np
from gguf import GGUFReader, GGUFValueType

LAYER = [("input_layernorm", "attn_norm"), ("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"),
         ("self_attn.v_proj", "attn_v"), ("self_attn.o_proj", "attn_output"),
         ("post_attention_layernorm", "ffn_norm"), ("mlp.gate_proj", "ffn_gate"), ("mlp.down_proj", "ffn_down"),
         ("mlp.up_proj", "ffn_up")]


def read_safetensors(hf_dir):
    """name -> float32 array, from every *.safetensors file of the directory."""
    out = {}
    for fn in sorted(os.listdir(hf_dir)):
        if not fn.endswith(".safetensors"):
            continue
        with open(os.path.join(hf_dir, fn), "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(n))
            base = 8 + n
            for name, t in header.items():
                if name == "__metadata__":
                    continue
                a, b = t["data_offsets"]
                f.seek(base + a)
                raw = f.read(b - a)
                if t["dtype"] == "F32":
                    v = np.frombuffer(raw, "<f4")
                elif t["dtype"] == "F16":
                    v = np.frombuffer(raw, "<f2").astype(np.float32)
                elif t["dtype"] == "BF16":
                    v = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
                else:
                    continue
                out[name] = v.reshape(t["shape"])
    return out


def permute(w, n_head):
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def main(gguf_path, hf_dir):
    cfg = json.load(open(os.path.join(hf_dir, "config.json")))
    tok = json.load(open(os.path.join(hf_dir, "tokenizer.json")))
    r = GGUFReader(gguf_path)
    problems = []

    def field(key):
        f = r.fields.get(key)
        return None if f is None else f.contents()

    def expect(key, value, vtype):
        f = r.fields.get(key)
        if f is None:
            problems.append(f"{key}: missing")
            return
        if f.types[0] != vtype:
            problems.append(f"{key}: type {f.types[0].name}, expected {vtype.name}")
        got = f.contents()
        ok = abs(got - value) <= 1e-6 * abs(value) if isinstance(value, float) else got == value
        if not ok:
            problems.append(f"{key}: {got!r}, expected {value!r}")

    U32, F32, STR = GGUFValueType.UINT32, GGUFValueType.FLOAT32, GGUFValueType.STRING
    n_head = cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads") or n_head
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // n_head
    rope = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    theta = rope.get("rope_theta", cfg.get("rope_theta"))
    expect("general.architecture", "llama", STR)
    expect("general.type", "model", STR)
    expect("llama.block_count", cfg["num_hidden_layers"], U32)
    expect("llama.context_length", cfg["max_position_embeddings"], U32)
    expect("llama.embedding_length", cfg["hidden_size"], U32)
    expect("llama.feed_forward_length", cfg["intermediate_size"], U32)
    expect("llama.attention.head_count", n_head, U32)
    if "num_key_value_heads" in cfg:
        expect("llama.attention.head_count_kv", n_kv, U32)
    if theta is not None:
        expect("llama.rope.freq_base", float(theta), F32)
    expect("llama.attention.layer_norm_rms_epsilon", float(cfg["rms_norm_eps"]), F32)
    if cfg.get("head_dim") is not None:
        expect("llama.attention.key_length", head_dim, U32)
        expect("llama.attention.value_length", head_dim, U32)
    expect("llama.vocab_size", cfg["vocab_size"], U32)
    expect("llama.rope.dimension_count", head_dim, U32)
    expect("general.quantization_version", 2, U32)
    if r.fields.get("general.file_type") is None:
        problems.append("general.file_type: missing")
    expect("tokenizer.ggml.model", "gpt2", STR)
    if field("tokenizer.ggml.pre") not in ("gpt-2", "smollm"):
        problems.append(f"tokenizer.ggml.pre: {field('tokenizer.ggml.pre')!r}")

    # Tokens: vocab + added tokens by id, [PAD<id>] for the gaps, vocab_size entries.
    by_id = {i: t for t, i in tok["model"]["vocab"].items()}
    added = {a["id"]: a for a in tok.get("added_tokens", [])}
    for i, a in added.items():
        by_id[i] = a["content"]
    tokens = field("tokenizer.ggml.tokens") or []
    types = field("tokenizer.ggml.token_type") or []
    if len(tokens) != cfg["vocab_size"] or len(types) != cfg["vocab_size"]:
        problems.append(f"{len(tokens)} tokens / {len(types)} types for vocab_size {cfg['vocab_size']}")
    for i, t in enumerate(tokens):
        want = by_id.get(i, f"[PAD{i}]")
        want_type = 5 if i not in by_id else (1 if i not in added else (3 if added[i].get("special") else 4))
        if want_type == 4 and want.startswith("<|") and want.endswith("|>"):
            want_type = 3
        if t != want or types[i] != want_type:
            problems.append(f"token {i}: {t!r} type {types[i]}, expected {want!r} type {want_type}")
            break
    merges = [m if isinstance(m, str) else " ".join(p.replace(" ", "\u0120") for p in m)
              for m in tok["model"].get("merges", [])]
    if (field("tokenizer.ggml.merges") or []) != merges:
        problems.append("tokenizer.ggml.merges differ from tokenizer.json's")
    for kind, key in (("bos", "bos_token_id"), ("eos", "eos_token_id")):
        got = field(f"tokenizer.ggml.{key}")
        if got is None and isinstance(cfg.get(key), int):
            problems.append(f"tokenizer.ggml.{key}: missing (config.json has {cfg[key]})")

    # Tensors: names, shapes, types, values.
    names = [("model.embed_tokens.weight", "token_embd.weight")]
    for i in range(cfg["num_hidden_layers"]):
        names += [(f"model.layers.{i}.{h}.weight", f"blk.{i}.{g}.weight") for h, g in LAYER]
    names.append(("model.norm.weight", "output_norm.weight"))
    if not cfg.get("tie_word_embeddings", False):
        names.append(("lm_head.weight", "output.weight"))
    got = {t.name: t for t in r.tensors}
    if sorted(got) != sorted(g for _, g in names):
        problems.append(f"tensor names differ: extra {sorted(set(got) - {g for _, g in names})}, "
                        f"missing {sorted({g for _, g in names} - set(got))}")
    src = read_safetensors(hf_dir)
    for h, g in names:
        t = got.get(g)
        if t is None:
            continue
        w = src[h]
        if list(t.shape) != list(reversed(w.shape)):
            problems.append(f"{g}: ne {list(t.shape)}, expected {list(reversed(w.shape))}")
            continue
        if w.ndim == 1 and t.tensor_type.name != "F32":
            problems.append(f"{g}: 1-D tensor stored {t.tensor_type.name}, convert_hf_to_gguf.py stores F32")
        if t.tensor_type.name not in ("F32", "F16", "BF16"):
            continue
        if g.endswith("attn_q.weight"):
            w = permute(w, n_head)
        elif g.endswith("attn_k.weight"):
            w = permute(w, n_kv)
        data = np.asarray(t.data)
        if t.tensor_type.name == "BF16":
            data = (data.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        data = data.astype(np.float32).reshape(w.shape)
        want = w.astype(np.float32)
        if t.tensor_type.name == "F16":
            want = want.astype(np.float16).astype(np.float32)
        elif t.tensor_type.name == "BF16":  # round to nearest even, as ggml's fp32 -> bf16
            u = want.view(np.uint32).astype(np.uint64)
            want = (((u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000).astype(np.uint32)).view(np.float32)
        if not np.array_equal(data, want):
            problems.append(f"{g}: values differ (max |d| {np.abs(data - want).max()})")

    if problems:
        print(f"{gguf_path}: {len(problems)} problem(s)")
        for p in problems:
            print("  " + p)
        sys.exit(1)
    print(f"{gguf_path}: {len(r.fields)} keys and {len(r.tensors)} tensors as convert_hf_to_gguf.py writes them "
          f"(names, shapes, types, q/k permutation and values checked with gguf-py)")


if __name__ == "__main__":
    main(*sys.argv[1:3])
