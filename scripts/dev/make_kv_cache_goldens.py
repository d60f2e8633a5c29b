#!/usr/bin/env python3
"""Golden files for the quantized KV cache (tests/rust/kv_cache.rs; rules in
crate/src/model/kv_cache.rs).

Dev tool only: the tests read the committed files in tests/fixtures/kv_cache/ and never run
this. An independent numpy port of each quantize -> dequantize rule (float32 arithmetic
throughout; np.rint rounds half to even), FP8 E4M3 through ml_dtypes' float8_e4m3fn cast:

    pip install numpy ml_dtypes
    python3 scripts/dev/make_kv_cache_goldens.py

Per (position, KV head) of HEAD_DIM values x:
  f16   x.astype(float16)                                   (round to nearest even)
  int8  s = max|x| / 127, q = clip(rint(x * (1/s)), -127, 127), x^ = q * s   (s = 0: zeros)
  int4  per group of 32 within the head: s = max|x| / 7, q = clip(rint(x * (1/s)), -7, 7)
  fp8   s = max|x| / 448, x^ = e4m3(clip(x / s, -448, 448)) * s  (s = 0: zeros)

Files (little-endian f32, POSITIONS x N_KV_HEADS x HEAD_DIM, row-major):
  inputs.f32.bin, f16.f32.bin, int8.f32.bin, int4.f32.bin, fp8.f32.bin; manifest.json.
Output depends only on the seed and library versions.
"""

import json
import os

import ml_dtypes
import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "kv_cache")
SEED = 15
N_KV_HEADS = 2
HEAD_DIM = 64
GROUP = 32
F = np.float32


def symmetric(x, levels):
    amax = np.max(np.abs(x)).astype(F)
    s = F(amax / F(levels))
    inv = F(F(1.0) / s) if amax > 0 else F(0.0)
    q = np.clip(np.rint((x * inv).astype(F)), -levels, levels).astype(F)
    return (q * s).astype(F)


def int8(head):
    return symmetric(head, 127)


def int4(head):
    return np.concatenate([symmetric(head[g : g + GROUP], 7) for g in range(0, len(head), GROUP)])


def fp8(head):
    s = F(np.max(np.abs(head)).astype(F) / F(448.0))
    if s == 0:
        return np.zeros_like(head)
    codes = np.clip((head / s).astype(F), -448, 448).astype(ml_dtypes.float8_e4m3fn)
    return (codes.astype(F) * s).astype(F)


def f16(head):
    return head.astype(np.float16).astype(F)


def inputs():
    rng = np.random.default_rng(SEED)
    rows = []
    rows.append(rng.standard_normal((N_KV_HEADS, HEAD_DIM)))
    outlier = 3 * rng.standard_normal((N_KV_HEADS, HEAD_DIM))
    outlier[0, 5] = 40.0
    rows.append(outlier)
    # Head 0 all zero; head 1 on a grid of halves with 7 in each group of 32: int4 ties.
    ties4 = np.zeros((N_KV_HEADS, HEAD_DIM))
    ties4[1] = rng.integers(-14, 15, HEAD_DIM) / 2.0
    ties4[1, 0], ties4[1, GROUP] = 7.0, -7.0
    rows.append(ties4)
    # Head 0: k + 0.5 with max |x| = 127, so 1/s = 1 and int8 rounds ties; head 1: tiny values.
    ties8 = np.zeros((N_KV_HEADS, HEAD_DIM))
    ties8[0] = rng.integers(-127, 127, HEAD_DIM) + 0.5
    ties8[0, 3] = -127.0
    ties8[1] = 1e-6 * rng.standard_normal(HEAD_DIM)
    rows.append(ties8)
    rows.append(1e3 * rng.standard_normal((N_KV_HEADS, HEAD_DIM)))
    mixed = rng.uniform(-2, 2, (N_KV_HEADS, HEAD_DIM))
    mixed[0, :4] = [-0.0, 0.0, 1e-30, -1e-30]
    rows.append(mixed)
    return np.stack(rows).astype(F)


def main():
    os.makedirs(OUT, exist_ok=True)
    x = inputs()
    x.tofile(os.path.join(OUT, "inputs.f32.bin"))
    for name, rule in [("f16", f16), ("int8", int8), ("int4", int4), ("fp8", fp8)]:
        out = np.stack([np.stack([rule(head) for head in pos]) for pos in x]).astype(F)
        out.tofile(os.path.join(OUT, f"{name}.f32.bin"))
    manifest = {
        "positions": int(x.shape[0]),
        "n_kv_heads": N_KV_HEADS,
        "head_dim": HEAD_DIM,
        "seed": SEED,
        "numpy": np.__version__,
        "ml_dtypes": ml_dtypes.__version__,
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
