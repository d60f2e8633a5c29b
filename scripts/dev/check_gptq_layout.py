#!/usr/bin/env python3
"""Checks a directory written by `quantlab quantize MODEL.gguf -f int<b>-<sym|asym>-g<N> --layout
gptq|awq -o DIR` (round to nearest, the default method) against the GGUF model, independently of
quantlab's code:

- the GGUF tensors are read and dequantized with gguf-py (llama.cpp's Python package);
- q/k rows are put back in Hugging Face order by inverting convert_hf_to_gguf.py's
  `LlamaModel.permute` (numpy);
- every linear of the file is unpacked with the numpy ports of the loaders' readers and must
  equal the numpy round to nearest (scripts/dev/make_gptq_layout_goldens.py) of those weights,
  bit for bit; the embedding / lm_head must be the GGUF values rounded to f16, the norms equal;
- config.json must carry the GGUF hyper-parameters and a quantization_config for the layout,
  and (where transformers is installed) parse as its LlamaConfig and GPTQConfig / AwqConfig.

    pip install numpy gguf [transformers]
    python3 scripts/dev/check_gptq_layout.py models/SmolLM2-135M-Instruct.Q4_1.gguf DIR
"""

import json
import os
import struct
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

sys.path.insert(0, os.path.dirname(__file__))
import make_gptq_layout_goldens as g  # noqa: E402

DTYPES = {"I32": np.int32, "F16": np.float16, "F32": np.float32}
LINEARS = [
    ("attn_q", "self_attn.q_proj"),
    ("attn_k", "self_attn.k_proj"),
    ("attn_v", "self_attn.v_proj"),
    ("attn_output", "self_attn.o_proj"),
    ("ffn_gate", "mlp.gate_proj"),
    ("ffn_up", "mlp.up_proj"),
    ("ffn_down", "mlp.down_proj"),
]


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        out[name] = np.frombuffer(data[base + a : base + b], dtype=DTYPES[e["dtype"]]).reshape(e["shape"])
    return out, header.get("__metadata__", {})


def gguf_tensor(reader, name):
    t = next(t for t in reader.tensors if t.name == name)
    v = dequantize(t.data, t.tensor_type).astype(np.float32)
    return v.reshape([int(d) for d in reversed(t.shape.tolist())])


def unpermute(w, n_head):
    """Inverse of convert_hf_to_gguf.py's permute (HF rotate_half halves -> adjacent pairs)."""
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def field(reader, key):
    f = reader.fields[key]
    return f.parts[f.data[0]].tolist()[0] if len(f.data) == 1 else None


def check_with_transformers(out):
    """With transformers installed (no torch needed): its LlamaConfig and GPTQConfig/AwqConfig
    read config.json."""
    try:
        from transformers import AutoConfig, LlamaConfig
        from transformers.utils.quantization_config import AwqConfig, GPTQConfig
    except ImportError:
        print("transformers not installed: config.json not checked with it")
        return
    c = AutoConfig.from_pretrained(out)
    assert isinstance(c, LlamaConfig), type(c)
    q = c.quantization_config
    qc = (GPTQConfig if q["quant_method"] == "gptq" else AwqConfig).from_dict(q)
    assert (qc.bits, qc.group_size) == (q["bits"], q["group_size"])
    print(f"transformers reads config.json: {type(qc).__name__} {qc.to_dict()['quant_method']} format {qc.format}")


def main():
    gguf_path, out = sys.argv[1], sys.argv[2]
    reader = GGUFReader(gguf_path)
    config = json.load(open(os.path.join(out, "config.json")))
    tensors, meta = read_safetensors(os.path.join(out, "model.safetensors"))
    assert meta.get("format") == "pt", meta
    q = config["quantization_config"]
    layout, bits, group = q["quant_method"], q["bits"], q["group_size"]
    sym = q["sym"] if layout == "gptq" else None
    n_head = field(reader, "llama.attention.head_count")
    n_kv = field(reader, "llama.attention.head_count_kv")
    n_layers = field(reader, "llama.block_count")
    for key, gkey in [
        ("hidden_size", "llama.embedding_length"),
        ("intermediate_size", "llama.feed_forward_length"),
        ("num_hidden_layers", "llama.block_count"),
        ("num_attention_heads", "llama.attention.head_count"),
        ("num_key_value_heads", "llama.attention.head_count_kv"),
    ]:
        assert config[key] == field(reader, gkey), key
    assert g.GROUP == 32
    g.GROUP = group
    checked = 0
    for layer in range(n_layers):
        for gname, hname in LINEARS:
            w = gguf_tensor(reader, f"blk.{layer}.{gname}.weight")
            if gname == "attn_q":
                w = unpermute(w, n_head)
            elif gname == "attn_k":
                w = unpermute(w, n_kv)
            prefix = f"model.layers.{layer}.{hname}"
            if layout == "gptq":
                got = g.read_gptq(
                    tensors[prefix + ".qweight"], tensors[prefix + ".qzeros"], tensors[prefix + ".scales"],
                    tensors[prefix + ".g_idx"], bits,
                )
            else:
                got = g.read_awq(tensors[prefix + ".qweight"], tensors[prefix + ".qzeros"], tensors[prefix + ".scales"], bits)
            # An AWQ config does not say whether the grid was symmetric (z = 2^(b-1)): try both.
            want = None
            for cand in [sym] if sym is not None else [False, True]:
                codes, scales, zeros, g_idx = g.quantize(w, bits, cand)
                fq = g.fake_quant(codes, scales, zeros, g_idx)
                if np.array_equal(got, fq):
                    want = fq
            assert want is not None, f"{prefix}: not round to nearest of the GGUF weights"
            checked += 1
    emb = gguf_tensor(reader, "token_embd.weight")
    assert np.array_equal(tensors["model.embed_tokens.weight"], emb.astype(np.float16)), "embed_tokens"
    names = {t.name for t in reader.tensors}
    if "output.weight" in names:
        assert np.array_equal(tensors["lm_head.weight"], gguf_tensor(reader, "output.weight").astype(np.float16))
    else:
        assert "lm_head.weight" not in tensors and config["tie_word_embeddings"] is True
    for layer in range(n_layers):
        for gname, hname in [("attn_norm", "input_layernorm"), ("ffn_norm", "post_attention_layernorm")]:
            assert np.array_equal(tensors[f"model.layers.{layer}.{hname}.weight"], gguf_tensor(reader, f"blk.{layer}.{gname}.weight"))
    assert np.array_equal(tensors["model.norm.weight"], gguf_tensor(reader, "output_norm.weight"))
    check_with_transformers(out)
    print(f"ok: {checked} linears in the {layout} layout equal numpy RTN of the GGUF weights; embeddings, norms, config match")


if __name__ == "__main__":
    main()
