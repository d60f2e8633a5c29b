#!/usr/bin/env python3
"""Golden values for the paired quantized-vs-base statistics of crate/src/model/eval.rs.

An independent numpy port of the summary that llama.cpp's `llama-perplexity --kl-divergence`
prints (tools/perplexity/perplexity.cpp in the llama.cpp vendored by llama-cpp-python 0.3.36:
`mean_and_uncertainty`, `covariance` and the "Perplexity statistics" / "KL divergence
statistics" block), applied to fixed per-token arrays (nll_base, nll_q, kl, same_top).

The llama.cpp formulas work on running sums; this port computes them from the arrays with
numpy, and checks that the ln-ratio uncertainty equals the standard error of the per-token
paired differences nll_q - nll_base (the two are algebraically the same).

Writes tests/fixtures/eval/paired_stats.json: the inputs and the expected outputs.
    python3 scripts/dev/paired_stats_reference.py
"""
import json
import pathlib

import numpy as np


def mean_and_uncertainty(x):
    """llama.cpp: mean, and sqrt(population variance / (n - 1)) when n > 10 and var > 0."""
    n = len(x)
    f = np.mean(x)
    var = np.mean(x * x) - f * f
    return f, (np.sqrt(var / (n - 1)) if var > 0 and n > 10 else 0.0)


def covariance(a, b):
    """llama.cpp: (mean(ab) - mean(a) mean(b)) / (n - 1), 0 below 10 values."""
    n = len(a)
    if n < 10:
        return 0.0
    return (np.mean(a * b) - np.mean(a) * np.mean(b)) / (n - 1)


def paired(nll_base, nll_q, kl, same_top):
    n = len(nll_q)
    lq, lq_se = mean_and_uncertainty(nll_q)
    lb, lb_se = mean_and_uncertainty(nll_base)
    ppl_q, ppl_b = np.exp(lq), np.exp(lb)
    ppl_q_se, ppl_b_se = ppl_q * lq_se, ppl_b * lb_se
    cov = covariance(nll_q, nll_base)
    ln_ratio = lq - lb
    ln_ratio_se = np.sqrt(lq_se**2 + lb_se**2 - 2.0 * cov)
    d = nll_q - nll_base
    assert abs(ln_ratio_se - np.std(d, ddof=1) / np.sqrt(n)) < 1e-12, "paired-difference identity"
    ratio = np.exp(ln_ratio)
    ppl_cov = ppl_q * ppl_b * cov
    kl_mean, kl_se = mean_and_uncertainty(kl)
    p_top = np.mean(same_top)
    return {
        "count": n,
        "ppl": ppl_q,
        "ppl_base": ppl_b,
        "ln_ppl_ratio": ln_ratio,
        "ln_ppl_ratio_stderr": ln_ratio_se,
        "ppl_ratio": ratio,
        "ppl_ratio_stderr": ratio * ln_ratio_se,
        "delta_ppl": ppl_q - ppl_b,
        "delta_ppl_stderr": np.sqrt(ppl_q_se**2 + ppl_b_se**2 - 2.0 * ppl_cov),
        "nll_correlation": cov / (lq_se * lb_se),
        "kl_mean": kl_mean,
        "kl_stderr": kl_se,
        "top1": p_top,
        "top1_stderr": np.sqrt(p_top * (1.0 - p_top) / (n - 1)),
    }


def main():
    rng = np.random.default_rng(13)
    n = 300
    # Base NLLs spread like a small model's on prose; the quantized model's track them with
    # a small positive shift and noise, so the pair is strongly correlated.
    nll_base = rng.gamma(2.0, 2.0, n)
    nll_q = np.maximum(nll_base + rng.normal(0.05, 0.15, n), 0.0)
    kl = rng.gamma(0.5, 0.04, n)
    same_top = (rng.random(n) < 0.9).astype(np.int64)
    out = paired(nll_base, nll_q, kl, same_top)
    doc = {
        "about": "scripts/dev/paired_stats_reference.py: llama-perplexity --kl-divergence statistics",
        "nll_base": [float(x) for x in nll_base],
        "nll_q": [float(x) for x in nll_q],
        "kl": [float(x) for x in kl],
        "same_top": [bool(x) for x in same_top],
        "expected": {k: (int(v) if k == "count" else float(v)) for k, v in out.items()},
    }
    path = pathlib.Path(__file__).resolve().parents[2] / "tests/fixtures/eval/paired_stats.json"
    path.write_text(json.dumps(doc) + "\n")
    print(f"wrote {path}: {json.dumps(doc['expected'], indent=1)}")


if __name__ == "__main__":
    main()
