#!/usr/bin/env python3
"""Writes a Hugging Face LlamaForCausalLM checkpoint from a llama GGUF model, with gguf-py.

    python3 scripts/dev/gguf_to_hf.py models/SmolLM2-135M-Instruct.Q4_1.gguf OUT_DIR [--shards N]

Dev tool for scripts/dev/check_hf_convert.sh: a real-size checkpoint to convert back with
`quantlab quantize OUT_DIR -o x.gguf`, without downloading one (nothing is fetched from a model
hub). The inverse of what convert_hf_to_gguf.py does for LLaMA, written independently of
quantlab: tensors dequantized to float32 by gguf-py (exact: F32 holds every Q4_1/Q8_0 value),
q/k rows un-permuted (the inverse of `LlamaModel.permute`), HF tensor names, safetensors shards
(written by hand: an 8-byte header length, the JSON header, the data) with
model.safetensors.index.json, config.json from the `llama.*` keys, tokenizer.json (byte-level
BPE: the vocabulary, the merges, CONTROL tokens as special added tokens, the pre-tokenizer the
`tokenizer.ggml.pre` name stands for) and tokenizer_config.json (special tokens, chat template).
Converting the result back must give the same model (llama-perplexity on both files).
"""

import json
import os
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

LAYER = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
         "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
         "ffn_gate": "mlp.gate_proj", "ffn_down": "mlp.down_proj", "ffn_up": "mlp.up_proj"}
PRE = {
    "gpt-2": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
    "smollm": {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
}


def unpermute(w, n_head):
    # GGUF row h*hd + 2i + a  <-  HF row h*hd + a*hd/2 + i
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_safetensors(path, tensors):
    header, offset = {}, 0
    for name, a in tensors:
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for _, a in tensors:
            f.write(np.ascontiguousarray(a, dtype="<f4").tobytes())


def main(src, out, shards=2):
    r = GGUFReader(src)
    kv = {k: f.contents() for k, f in r.fields.items()}
    n_head, n_kv = kv["llama.attention.head_count"], kv["llama.attention.head_count_kv"]
    os.makedirs(out, exist_ok=True)
    tensors = []
    for t in r.tensors:
        w = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(list(reversed(t.shape.tolist())))
        parts = t.name.split(".")
        if t.name == "token_embd.weight":
            name = "model.embed_tokens.weight"
        elif t.name == "output_norm.weight":
            name = "model.norm.weight"
        elif t.name == "output.weight":
            name = "lm_head.weight"
        else:
            name = f"model.layers.{parts[1]}.{LAYER[parts[2]]}.weight"
            if parts[2] == "attn_q":
                w = unpermute(w, n_head)
            elif parts[2] == "attn_k":
                w = unpermute(w, n_kv)
        tensors.append((name, w))
    per = -(-len(tensors) // shards)
    weight_map = {}
    for s in range(shards):
        fn = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        chunk = tensors[s * per:(s + 1) * per]
        write_safetensors(os.path.join(out, fn), chunk)
        weight_map.update({n: fn for n, _ in chunk})
    total = sum(a.nbytes for _, a in tensors)
    json.dump({"metadata": {"total_size": total}, "weight_map": weight_map},
              open(os.path.join(out, "model.safetensors.index.json"), "w"), indent=2)

    tied = not any(t.name == "output.weight" for t in r.tensors)
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": kv["llama.embedding_length"], "intermediate_size": kv["llama.feed_forward_length"],
        "num_hidden_layers": kv["llama.block_count"], "num_attention_heads": n_head,
        "num_key_value_heads": n_kv, "max_position_embeddings": kv["llama.context_length"],
        "rms_norm_eps": kv["llama.attention.layer_norm_rms_epsilon"],
        "rope_theta": kv.get("llama.rope.freq_base", 10000.0), "vocab_size": len(kv["tokenizer.ggml.tokens"]),
        "tie_word_embeddings": tied, "hidden_act": "silu", "attention_bias": False, "mlp_bias": False,
        "bos_token_id": kv.get("tokenizer.ggml.bos_token_id"), "eos_token_id": kv.get("tokenizer.ggml.eos_token_id"),
        "torch_dtype": "float32",
    }
    json.dump(config, open(os.path.join(out, "config.json"), "w"), indent=2)

    tokens, types = kv["tokenizer.ggml.tokens"], kv["tokenizer.ggml.token_type"]
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": types[i] == 3} for i, t in enumerate(tokens) if types[i] in (3, 4)]
    tokenizer = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": PRE[kv.get("tokenizer.ggml.pre", "gpt-2")],
        "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {t: i for i, t in enumerate(tokens)}, "merges": kv.get("tokenizer.ggml.merges", [])},
    }
    json.dump(tokenizer, open(os.path.join(out, "tokenizer.json"), "w"), ensure_ascii=False)
    tc = {"add_prefix_space": kv.get("tokenizer.ggml.add_space_prefix", False)}
    for kind, key in (("bos", "bos_token_id"), ("eos", "eos_token_id"), ("unk", "unknown_token_id"),
                      ("pad", "padding_token_id")):
        if f"tokenizer.ggml.{key}" in kv:
            tc[f"{kind}_token"] = tokens[kv[f"tokenizer.ggml.{key}"]]
    if "tokenizer.chat_template" in kv:
        tc["chat_template"] = kv["tokenizer.chat_template"]
    json.dump(tc, open(os.path.join(out, "tokenizer_config.json"), "w"), ensure_ascii=False)
    print(f"{out}: {len(tensors)} tensors, {total / 1e6:.0f} MB float32 in {shards} shards")


if __name__ == "__main__":
    args = sys.argv[1:]
    n = 2
    if "--shards" in args:
        i = args.index("--shards")
        n = int(args[i + 1])
        del args[i:i + 2]
    main(args[0], args[1], n)
