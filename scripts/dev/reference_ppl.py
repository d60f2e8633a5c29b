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
"""

import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_forward as rf  # noqa: E402

OUT = "tests/fixtures/forward/ppl_reference.json"


def main():
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
