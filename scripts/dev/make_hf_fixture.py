#!/usr/bin/env python3
"""Tiny Hugging Face LLaMA checkpoints + transformers' logits, for tests/rust/hf_load.rs.

Dev tool only: the tests read the committed files in tests/fixtures/hf/ and never run this.
The reference is Hugging Face transformers itself (LlamaForCausalLM on the CPU, float32),
which shares no code with quantlab's loader or forward: in particular it uses the HF
`rotate_half` RoPE on the unpermuted q/k rows, so the test checks quantlab's Q/K row permutation.

    python -m pip install torch transformers safetensors numpy
    python3 scripts/dev/make_hf_fixture.py

Variants (each a directory that `save_pretrained` wrote, plus reference.json):
- f32-untied: float32, separate lm_head, one model.safetensors.
- bf16-tied-sharded: bfloat16, tied embeddings, two shards + model.safetensors.index.json.
- f16-mqa-headdim: float16, one kv head, explicit head_dim 8 (q_dim 32 != hidden 64),
  rope_theta 500, rms_norm_eps 1e-6.

f32-untied also gets a tokenizer.json: byte-level BPE whose 256 tokens are the bytes (id = byte
value, no merges), so text runs end to end through `quantlab generate` / `quantlab eval`; its
reference.json adds "text" (a prompt, its ids and greedy continuation) and "eval" (a text, ctx
and transformers' perplexity under quantlab's default protocol: no BOS, non-overlapping
windows of ctx tokens from the start, every position but the first of each window scored).

reference.json: {"tokens": prompt ids, "logits": [[vocab floats] per prompt position],
"greedy": the next GREEDY_STEPS greedy tokens, "greedy_margins": top-1 minus top-2 logit at each
greedy step (so a reader can see no step is a near-tie)}. The logits come from the saved
checkpoint reloaded as float32 (bf16/f16 weights widened exactly), as quantlab computes.

The weights are drawn wider than transformers' default init (std 0.02) and the norm weights
are randomised, so logits spread over several units and greedy steps are not near-ties.
"""

import json
import os
import shutil

import math

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "hf")
SEED = 20261123
PROMPT = [1, 17, 200, 5, 99, 42, 255, 3, 128, 64]
GREEDY_STEPS = 8
# Seeds are tried from SEED up until every greedy step's top-1/top-2 gap is at least this, so the
# greedy test compares decisions, not f32 rounding (quantlab's logits differ by ~1e-5).
MIN_MARGIN = 0.05


def base_config(**kw):
    c = dict(
        vocab_size=256,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
        initializer_range=0.15,
    )
    c.update(kw)
    return LlamaConfig(**c)


def build(config, seed):
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
    return model


def reference(path):
    model = LlamaForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    ids = torch.tensor([PROMPT])
    with torch.no_grad():
        logits = model(ids).logits[0]
        out = model.generate(ids, max_new_tokens=GREEDY_STEPS, do_sample=False, output_logits=True,
                             return_dict_in_generate=True, pad_token_id=0, eos_token_id=None)
    greedy = out.sequences[0, len(PROMPT):].tolist()
    margins = []
    for step in out.logits:
        top = torch.topk(step[0].float(), 2).values
        margins.append(float(top[0] - top[1]))
    return {
        "tokens": PROMPT,
        "logits": [[float(v) for v in row] for row in logits],
        "greedy": greedy,
        "greedy_margins": margins,
    }


TEXT_PROMPT = "Call me Ishmael."
EVAL_TEXT = (
    "Some years ago, never mind how long precisely, having little or no money in my purse, and "
    "nothing particular to interest me on shore, I thought I would sail about a little."
)
EVAL_CTX = 32


def byte_tokenizer():
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    # GPT-2's byte-to-unicode table: printable bytes map to themselves, the rest to 256 + n.
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, n = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + n)
            n += 1
    assert set(table.values()) == set(alphabet)
    tok = Tokenizer(models.BPE(vocab={table[b]: b for b in range(256)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return tok


def text_references(path, tok):
    model = LlamaForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    prompt = tok.encode(TEXT_PROMPT).ids
    assert prompt == list(TEXT_PROMPT.encode()), prompt
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=GREEDY_STEPS, do_sample=False,
                             pad_token_id=0, eos_token_id=None)
    greedy = out[0, len(prompt):].tolist()
    ids = tok.encode(EVAL_TEXT).ids
    nll = []
    for w in range(len(ids) // EVAL_CTX):
        window = torch.tensor([ids[w * EVAL_CTX:(w + 1) * EVAL_CTX]])
        with torch.no_grad():
            logp = torch.log_softmax(model(window).logits[0].double(), dim=-1)
        nll += [-float(logp[p, window[0, p + 1]]) for p in range(EVAL_CTX - 1)]
    return {
        "text": {"prompt": TEXT_PROMPT, "ids": prompt, "greedy": greedy},
        "eval": {"text": EVAL_TEXT, "ctx": EVAL_CTX, "tokens_scored": len(nll),
                 "ppl": math.exp(sum(nll) / len(nll))},
    }


def make(name, config, dtype, max_shard_size=None, tokenizer=None):
    path = os.path.join(OUT, name)
    for seed in range(SEED, SEED + 20):
        shutil.rmtree(path, ignore_errors=True)
        model = build(config, seed).to(dtype)
        kw = {"max_shard_size": max_shard_size} if max_shard_size else {}
        model.save_pretrained(path, safe_serialization=True, **kw)
        ref = reference(path)
        if min(ref["greedy_margins"]) >= MIN_MARGIN:
            break
    else:
        raise SystemExit(f"{name}: no seed gave greedy margins >= {MIN_MARGIN}")
    if tokenizer is not None:
        tokenizer.save(os.path.join(path, "tokenizer.json"))
        ref.update(text_references(path, tokenizer))
    with open(os.path.join(path, "reference.json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"))
    print(name, "seed", seed, "greedy", ref["greedy"], "min margin %.3f" % min(ref["greedy_margins"]),
          "logit range %.2f..%.2f" % (min(map(min, ref["logits"])), max(map(max, ref["logits"]))))


def main():
    os.makedirs(OUT, exist_ok=True)
    make("f32-untied", base_config(), torch.float32, tokenizer=byte_tokenizer())
    make("bf16-tied-sharded", base_config(tie_word_embeddings=True), torch.bfloat16, max_shard_size="100KB")
    make("f16-mqa-headdim",
         base_config(num_hidden_layers=1, num_key_value_heads=1, head_dim=8, rope_theta=500.0, rms_norm_eps=1e-6),
         torch.float16)


if __name__ == "__main__":
    main()
