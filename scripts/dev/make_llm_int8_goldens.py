#!/usr/bin/env python3
"""Golden files for LLM.int8() (tests/rust/llm_int8.rs; rules in crate/src/model/llm_int8.rs).

Dev tool only: the tests read the committed files in tests/fixtures/llm_int8/ and never run this.
An independent numpy port of bitsandbytes' published CPU ("default" backend) functions, as
MatMul8bitLt runs them at inference (weights stored int8, `has_fp16_weights=False`), read from
bitsandbytes/backends/default/ops.py and the LLM.int8() paper (Dettmers et al., 2022):

    pip install numpy
    python3 scripts/dev/make_llm_int8_goldens.py

  weights  int8_vectorwise_quant(W, threshold=0): SCB = max_j |W_rj| per output row,
           CB = round(W * (127 / SCB))                       (round: half to even, as torch.round)
  inputs   int8_vectorwise_quant(X, threshold): outliers = |X| >= threshold; outlier_cols = the
           columns with any outlier in the batch; the outlier VALUES are set to 0 before the row
           absmax SCA_i = max_j |X_ij| (other values of an outlier column still count);
           CA = round(X * (127 / SCA)), then CA[:, outlier_cols] = 0
  product  int8_mixed_scaled_mm: Y = (CA @ CB^T as int32) * (SCA_i * SCB_r) * 6.200012e-05
           + X[:, outlier_cols] @ (CB[:, outlier_cols] * SCB_r * 7.874015718698502e-3)^T
           (6.200012e-05 = 1/127^2, the CUDA kernels' MM_DEQUANT_CONST; the Python default
           backend writes 6.200124e-05, 1.8e-5 relative off 1/127^2, a transposed digit that
           is not followed here)

One deliberate difference from bitsandbytes: X stays float32 (bitsandbytes casts it to float16
first); the lab's forward is float32 throughout. A row whose absmax is 0 gets zero codes here
(bitsandbytes would divide by zero).

Files (little-endian): x.f32.bin (ROWS x COLS inputs), w.f32.bin (OUT x COLS weights),
cb.i8.bin / scb.f32.bin (weight codes, row absmax), and per threshold T in manifest
"thresholds": ca-T.i8.bin, sca-T.f32.bin, y-T.f32.bin (ROWS x OUT) with its outlier columns in
manifest.json. Output depends only on the seed and the numpy version.
"""

import json
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "llm_int8")
F = np.float32
SEED = 6
ROWS, COLS, OUT_ROWS = 7, 96, 40
THRESHOLDS = [6.0, 3.0]


def vectorwise_quant(a, threshold):
    a = a.astype(F).copy()
    cols = np.zeros(0, dtype=np.int64)
    if threshold > 0:
        outliers = np.abs(a) >= F(threshold)
        cols = np.nonzero(outliers.any(axis=0))[0]
        a[outliers] = 0
    stats = np.max(np.abs(a), axis=1).astype(F)
    mult = np.where(stats > 0, F(127.0) / np.where(stats > 0, stats, F(1)), F(0)).astype(F)
    codes = np.rint((a * mult[:, None]).astype(F)).astype(np.int8)
    codes[:, cols] = 0
    return codes, stats, cols


def llm_int8(x, cb, scb, threshold):
    ca, sca, cols = vectorwise_quant(x, threshold)
    acc = ca.astype(np.int64) @ cb.astype(np.int64).T
    y = (acc.astype(F) * (sca[:, None] * scb[None, :]).astype(F) * F(6.200012e-05)).astype(F)
    if len(cols):
        sub_b = (cb[:, cols].astype(F) * scb[:, None] * F(7.874015718698502e-3)).astype(F)
        y = (y + x[:, cols].astype(F) @ sub_b.T).astype(F)
    return ca, sca, cols, y


def main():
    rng = np.random.default_rng(SEED)
    # Inputs: mostly |x| < 2, two columns with outliers in every row, one column with a single
    # outlier (one row only: the whole column goes to float), a value exactly at 6.0, an
    # all-zero row, and a row whose only large values are outliers.
    x = (rng.standard_normal((ROWS, COLS)) * 0.6).astype(F)
    x[:, 5] *= 20
    x[:, 61] = (rng.standard_normal(ROWS) * 9).astype(F)
    x[3, 30] = F(-7.5)
    x[4, 77] = F(6.0)
    x[2] = 0
    x[6] *= F(0.05)
    x[6, 5] = F(40.0)
    w = (rng.standard_normal((OUT_ROWS, COLS)) * 0.05).astype(F)
    w[:, 11] *= 8
    cb, scb, _ = vectorwise_quant(w, 0.0)
    os.makedirs(OUT, exist_ok=True)
    x.tofile(os.path.join(OUT, "x.f32.bin"))
    w.tofile(os.path.join(OUT, "w.f32.bin"))
    cb.tofile(os.path.join(OUT, "cb.i8.bin"))
    scb.tofile(os.path.join(OUT, "scb.f32.bin"))
    cases = []
    for t in THRESHOLDS:
        ca, sca, cols, y = llm_int8(x, cb, scb, t)
        ca.tofile(os.path.join(OUT, f"ca-{t}.i8.bin"))
        sca.tofile(os.path.join(OUT, f"sca-{t}.f32.bin"))
        y.tofile(os.path.join(OUT, f"y-{t}.f32.bin"))
        cases.append({"threshold": t, "outlier_cols": [int(c) for c in cols]})
    manifest = {
        "rows": ROWS, "cols": COLS, "out": OUT_ROWS, "seed": SEED, "cases": cases,
        "generator": "scripts/dev/make_llm_int8_goldens.py", "numpy": np.__version__,
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
