#!/usr/bin/env python3
"""Independent reference for quantlab's CPU forward pass (crate/src/model/, tests/rust/forward.rs).

Dev tool only: the tests read the committed files in tests/fixtures/forward/ and never run this.

Rerun from the repository root (takes a minute or two, ~2 GB of RAM):

    pip install 'gguf==0.19.0' numpy      # gguf-py: reader and dequantizers
    python3 scripts/dev/reference_forward.py [path/to/model.gguf]

It rewrites tests/fixtures/forward/reference.json and tests/fixtures/forward/strided_logits.f32.

The forward below is written from the LLaMA math, not from the Rust code, and deliberately in a
different shape: the whole sequence at once with matrices (causal mask instead of a KV cache),
every activation in float64 (weights are gguf-py's exact float32 dequantization, widened), RoPE as
a complex multiplication. It therefore approximates the exact real-number result of the quantized
model, and the Rust f32 forward is compared against it with a tolerance.

Conventions of a llama.cpp GGUF (`convert_hf_to_gguf.py` permutes the rows of attn_q / attn_k):
RoPE rotates ADJACENT pairs (x[2i], x[2i+1]) of each head by the angle pos * theta^(-2i/rope_dim),
i.e. the pair is the complex number x[2i] + j*x[2i+1] multiplied by exp(j*angle).

Fixture contents, for each token sequence and each position p (logits of the next token given
tokens[0..=p]):
  argmax, top10 [[id, logit], ...], lse (log-sum-exp of the logits),
  and in strided_logits.f32 the logits at vocab ids 0, 97, 194, ... (little-endian f32,
  sequence-major, then position, then id).
Plus a greedy continuation of 16 tokens after each whole sequence (each step's top-2 margin too,
so that a near-tie can be recognised).
"""

import importlib.metadata
import json
import os
import sys

import numpy as np

import gguf
from gguf.quants import dequantize

MODEL = sys.argv[1] if len(sys.argv) > 1 else "models/SmolLM2-135M-Instruct.Q4_1.gguf"
OUT_DIR = "tests/fixtures/forward"
STRIDE = 97
GREEDY_STEPS = 16

SEQUENCES = {
    # "<|im_start|>The rong of the agine" (the example from the issue).
    "short": [1, 504, 3458, 282, 260, 2135],
    # "<|im_start|>The quick brown fox jumps over the lazy dog . In the beginning , the capital of
    # France was a small town on the river , and the people who lived there were farmers and"
    "long40": [1, 504, 2365, 6354, 16438, 27003, 690, 260, 23790, 2767, 1673, 533, 260, 3616, 3297, 260, 3575, 282,
               4649, 436, 253, 1165, 3102, 335, 260, 4626, 3297, 284, 260, 701, 617, 4161, 665, 592, 5283, 284,
               24133, 617, 21939, 351],
    # Rarely seen ids near the end of the vocabulary (embedding rows of odd tokens).
    "high_ids": [49151, 49000, 48123, 45000, 47999, 40000, 30001, 49150],
}


class Model:
    def __init__(self, path):
        r = gguf.GGUFReader(path)
        self.reader = r

        def field(key):
            f = r.fields[key]
            return f.parts[f.data[0]][0]

        arch = bytes(r.fields["general.architecture"].parts[-1]).decode()
        assert arch == "llama", arch
        self.dim = int(field("llama.embedding_length"))
        self.n_layers = int(field("llama.block_count"))
        self.n_heads = int(field("llama.attention.head_count"))
        self.n_kv_heads = int(field("llama.attention.head_count_kv"))
        self.head_dim = self.dim // self.n_heads
        self.rope_dim = int(field("llama.rope.dimension_count")) if "llama.rope.dimension_count" in r.fields else self.head_dim
        self.theta = float(field("llama.rope.freq_base"))
        self.eps = float(field("llama.attention.layer_norm_rms_epsilon"))
        tensors = {t.name: t for t in r.tensors}

        def w(name):
            t = tensors[name]
            # ggml dims [cols, rows] -> numpy (rows, cols); exact float32 values, widened.
            a = dequantize(t.data, t.tensor_type).astype(np.float64)
            return a.reshape([int(d) for d in reversed(t.shape)]) if a.ndim != len(t.shape) else a

        self.emb = w("token_embd.weight")
        self.out_norm = w("output_norm.weight")
        self.out = w("output.weight") if "output.weight" in tensors else self.emb
        self.vocab = self.emb.shape[0]
        self.layers = []
        for l in range(self.n_layers):
            p = f"blk.{l}."
            self.layers.append({k: w(p + k + ".weight") for k in
                                ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                 "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"]})

    def rmsnorm(self, x, g):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * g

    def rope(self, x):
        """x: (T, heads, head_dim). Rotates adjacent pairs of the first rope_dim dims."""
        T = x.shape[0]
        half = self.rope_dim // 2
        omega = self.theta ** (-np.arange(half) * 2.0 / self.rope_dim)           # (half,)
        angle = np.arange(T)[:, None] * omega[None, :]                           # (T, half)
        z = x[..., 0:self.rope_dim:2] + 1j * x[..., 1:self.rope_dim:2]           # (T, heads, half)
        z = z * np.exp(1j * angle)[:, None, :]
        y = x.copy()
        y[..., 0:self.rope_dim:2] = z.real
        y[..., 1:self.rope_dim:2] = z.imag
        return y

    def logits(self, tokens):
        """Logits (T, vocab) for every position of `tokens`, float64."""
        T, H, KV, D = len(tokens), self.n_heads, self.n_kv_heads, self.head_dim
        x = self.emb[np.array(tokens)]                                           # (T, dim)
        causal = np.triu(np.ones((T, T), dtype=bool), k=1)                       # True above the diagonal
        for L in self.layers:
            h = self.rmsnorm(x, L["attn_norm"])
            q = self.rope((h @ L["attn_q"].T).reshape(T, H, D))
            k = self.rope((h @ L["attn_k"].T).reshape(T, KV, D))
            v = (h @ L["attn_v"].T).reshape(T, KV, D)
            # Grouped-query attention: query head i reads key/value head i // (H / KV).
            k = np.repeat(k, H // KV, axis=1)
            v = np.repeat(v, H // KV, axis=1)
            s = np.einsum("thd,shd->hts", q, k) / np.sqrt(D)                      # (H, T, T)
            s[:, causal] = -np.inf
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            a = s / s.sum(axis=-1, keepdims=True)
            o = np.einsum("hts,shd->thd", a, v).reshape(T, H * D)
            x = x + o @ L["attn_output"].T
            h = self.rmsnorm(x, L["ffn_norm"])
            g = h @ L["ffn_gate"].T
            x = x + ((g / (1.0 + np.exp(-g))) * (h @ L["ffn_up"].T)) @ L["ffn_down"].T
        return self.rmsnorm(x, self.out_norm) @ self.out.T


def lse(v):
    m = v.max()
    return float(m + np.log(np.sum(np.exp(v - m))))


def main():
    m = Model(MODEL)
    strided_ids = np.arange(0, m.vocab, STRIDE)
    out = {
        "about": "Reference logits of the LLaMA forward of the default model, from scripts/dev/reference_forward.py "
                 "(numpy float64, gguf-py dequantization). Logits at position p are for the token after tokens[0..=p].",
        "model": os.path.basename(MODEL),
        "model_bytes": os.path.getsize(MODEL),
        "versions": {"numpy": np.__version__, "gguf": importlib.metadata.version("gguf"),
                     "python": sys.version.split()[0]},
        "stride": STRIDE,
        "n_strided": int(len(strided_ids)),
        "strided_file": "strided_logits.f32",
        "sequences": [],
    }
    strided = []
    for name, tokens in SEQUENCES.items():
        lg = m.logits(tokens)
        positions = []
        for p in range(len(tokens)):
            v = lg[p]
            top = np.argsort(-v, kind="stable")[:10]
            positions.append({
                "argmax": int(top[0]),
                "top10": [[int(i), round(float(v[i]), 6)] for i in top],
                "lse": round(lse(v), 6),
            })
            strided.append(v[strided_ids].astype(np.float32))
        # Greedy continuation, recomputing the whole sequence each step (no cache).
        seq = list(tokens)
        greedy, margins = [], []
        for _ in range(GREEDY_STEPS):
            v = m.logits(seq)[-1]
            top2 = np.argsort(-v, kind="stable")[:2]
            greedy.append(int(top2[0]))
            margins.append(round(float(v[top2[0]] - v[top2[1]]), 6))
            seq.append(int(top2[0]))
        out["sequences"].append({"name": name, "tokens": tokens, "positions": positions,
                                 "greedy": greedy, "greedy_margins": margins})
        print(name, "argmax", [p["argmax"] for p in positions], "greedy", greedy, "min margin", min(margins))
    os.makedirs(OUT_DIR, exist_ok=True)
    np.concatenate(strided).astype("<f4").tofile(os.path.join(OUT_DIR, "strided_logits.f32"))
    with open(os.path.join(OUT_DIR, "reference.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
