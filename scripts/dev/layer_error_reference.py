#!/usr/bin/env python3
"""Golden file for quantlab's per-layer output error (tests/rust/layer_error.rs).

Dev tool only: the test reads the committed tests/fixtures/layer_error/cases.json and never
runs this. The reference is the definition, computed directly on the input rows with numpy
(not through XᵀX, as the Rust does):

    e = ‖X·Wᵀ − X·Ŵᵀ‖²_F / ‖X·Wᵀ‖²_F

in float64 from float32 values. X has one outlier column (as the real layers' inputs do) and,
in one case, a dead column (always zero); Ŵ is W rounded to a coarse grid (an RTN-like error),
W plus small noise, and W itself (error 0).

    python3 scripts/dev/layer_error_reference.py
"""

import json
import os

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "layer_error")


def f32_list(a):
    return [float(v) for v in np.asarray(a, dtype=np.float32).ravel()]


def error(x, w, w_hat):
    x, w, w_hat = (np.asarray(a, dtype=np.float64) for a in (x, w, w_hat))
    y = x @ w.T
    d = x @ (w - w_hat).T
    return float((d * d).sum() / (y * y).sum())


def main():
    rng = np.random.default_rng(14)
    rows, cols, tokens = 12, 24, 40
    x = rng.standard_normal((tokens, cols)).astype(np.float32)
    x[:, 5] *= 30.0  # an outlier input channel
    w = (rng.standard_normal((rows, cols)) * 0.05).astype(np.float32)
    cases = []
    grid = np.float32(0.02)
    rounded = (np.round(w / grid) * grid).astype(np.float32)
    noisy = (w + rng.standard_normal(w.shape) * 0.003).astype(np.float32)
    x_dead = x.copy()
    x_dead[:, 7] = 0.0
    for name, xs, w_hat in [
        ("rounded", x, rounded),
        ("noisy", x, noisy),
        ("exact", x, w.copy()),
        ("dead-input", x_dead, rounded),
    ]:
        cases.append({"name": name, "x": f32_list(xs), "w_hat": f32_list(w_hat), "error": error(xs, w, w_hat)})
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"rows": rows, "cols": cols, "tokens": tokens, "w": f32_list(w), "cases": cases}, f)
        f.write("\n")


if __name__ == "__main__":
    main()
