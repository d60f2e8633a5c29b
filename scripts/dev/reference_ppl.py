#!/usr/bin/env python3
"""Independent reference for quantlab's perplexity (crate/src/model/eval.rs, tests/rust/eval.rs).

Dev tool only: the tests read tests/fixtures/forward/ppl_reference.json and never run this.

Reuses the numpy float64 forward of scripts/dev/reference_forward.py (written from the LLaMA math,
not from the Rust code) on its "long40" sequence, and writes, for that one 40-token window:
  - per-position next-token NLL  -log softmax(logits[p])[tokens[p+1]], p = 0..38 (float64),
  - the default protocol's numbers (every position but the first scored: 39 tokens),
  - llama-perplexity's numbers for n_ctx = 40 (first = n_ctx/2 = 20: positions 20..38 predict
    tokens 21..39, 19 tokens), with no BOS substitution (the model's add_bos_token is false).

Rerun from the repository root (a minute, ~2 GB of RAM):

    pip install 'gguf==0.19.0' numpy
    python3 scripts/dev/reference_ppl.py [path/to/model.gguf]

With `--eval-text CTX WINDOWS` it writes instead tests/fixtures/forward/ppl_evaltext.json: the
default protocol (no BOS, non-overlapping windows of CTX tokens from the start, every position but
each window's first scored) on the real eval text, Moby-Dick chapters 1-3 joined with "\n\n"
(crate/src/model/eval.rs), for its first WINDOWS windows. The text is tokenized by the Hugging Face
`tokenizers` package built from the GGUF's metadata (make_tokenizer_goldens.py's build_tokenizer),
not by quantlab; the windows' token ids are stored so a test can check its own tokenization too.
Used by tests/wasm/model.test.ts (CTX = 64, WINDOWS = 2; ~30 s):

    pip install 'gguf==0.19.0' numpy 'tokenizers==0.23.3'
    python3 scripts/dev/reference_ppl.py --eval-text 64 2
"""

import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_forward as rf  # noqa: E402

OUT = "tests/fixtures/forward/ppl_reference.json"


EVAL_OUT = "tests/fixtures/forward/ppl_evaltext.json"
EVAL_CHAPTERS = (1, 2, 3)


def eval_text():
    texts = []
    for i in EVAL_CHAPTERS:
        with open(f"data/moby-dick/chapter_{i}.json", encoding="utf-8") as f:
            texts.append(json.load(f)["text"])
    return "\n\n".join(texts)


def nll_of(lg, tokens):
    out = []
    for p in range(len(tokens) - 1):
        v = lg[p]
        mx = v.max()
        out.append(float(mx + math.log(np.sum(np.exp(v - mx))) - v[tokens[p + 1]]))
    return out


def main_eval_text(ctx, windows, model_path):
    import gguf
    import make_tokenizer_goldens as tg

    tok = tg.build_tokenizer(gguf.GGUFReader(model_path))
    ids = tok.encode(eval_text(), add_special_tokens=False).ids
    m = rf.Model(model_path)
    per_window = []
    for w in range(windows):
        tokens = ids[w * ctx:(w + 1) * ctx]
        per_window.append({"tokens": tokens, "nll": [round(x, 9) for x in nll_of(m.logits(tokens), tokens)]})
    all_nll = [x for w in per_window for x in w["nll"]]
    mean = sum(all_nll) / len(all_nll)
    out = {
        "about": "Default-protocol perplexity of the default model on the eval text (Moby-Dick chapters 1-3 joined "
                 "with \\n\\n), first windows only, from scripts/dev/reference_ppl.py --eval-text (numpy float64 "
                 "forward of reference_forward.py; HF tokenizers built from the GGUF). nll[p] = -log softmax(logits "
                 "at p)[tokens[p+1]] within each window (fresh context per window).",
        "model": os.path.basename(model_path),
        "model_bytes": os.path.getsize(model_path),
        "text_tokens": len(ids),
        "ctx": ctx,
        "windows": per_window,
        "scored": len(all_nll),
        "mean_nll": mean,
        "ppl": math.exp(mean),
    }
    with open(EVAL_OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(json.dumps({k: out[k] for k in ("text_tokens", "ctx", "scored", "mean_nll", "ppl")}))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--eval-text":
        ctx, windows = int(sys.argv[2]), int(sys.argv[3])
        # (rf.MODEL is sys.argv[1], the flag here.)
        return main_eval_text(ctx, windows, sys.argv[4] if len(sys.argv) > 4 else "models/SmolLM2-135M-Instruct.Q4_1.gguf")
    model_path = sys.argv[1] if len(sys.argv) > 1 else rf.MODEL
    m = rf.Model(model_path)
    tokens = rf.SEQUENCES["long40"]
    lg = m.logits(tokens)
    nll = []
    for p in range(len(tokens) - 1):
        v = lg[p]
        mx = v.max()
        lse = mx + math.log(np.sum(np.exp(v - mx)))
        nll.append(float(lse - v[tokens[p + 1]]))
    first = len(tokens) // 2
    default_mean = sum(nll) / len(nll)
    lcpp = nll[first:]
    lcpp_mean = sum(lcpp) / len(lcpp)
    out = {
        "about": "Next-token NLL of the default model on the 'long40' sequence of reference.json, from "
                 "scripts/dev/reference_ppl.py (numpy float64 forward of reference_forward.py). nll[p] = "
                 "-log softmax(logits at p)[tokens[p+1]].",
        "model": os.path.basename(model_path),
        "model_bytes": os.path.getsize(model_path),
        "tokens": tokens,
        "nll": [round(x, 9) for x in nll],
        "default": {"ctx": len(tokens), "scored": len(nll), "mean_nll": default_mean, "ppl": math.exp(default_mean)},
        "llama_cpp": {"ctx": len(tokens), "first": first, "scored": len(lcpp), "mean_nll": lcpp_mean,
                      "ppl": math.exp(lcpp_mean)},
    }
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(json.dumps({k: out[k] for k in ("default", "llama_cpp")}))


if __name__ == "__main__":
    main()
