#!/usr/bin/env python3
"""Golden files for quantlab's HQQ test (tests/rust/hqq.rs).

Dev tool only: the test reads the committed files in tests/fixtures/hqq/ and never runs this.
An independent numpy port of Half-Quadratic Quantization as published (Badri & Shaji 2023;
the initial scale/zero of `Quantizer.quantize` in mobiusml/hqq hqq/core/quantize.py and the
proximal solver `optimize_weights_proximal_legacy` in hqq/core/optimize.py, with `beta *= kappa`
each step as the paper and the reference before its 2025 refactor), written from those, not
from the Rust. Groups are consecutive values along a row (the reference's axis=1), arithmetic
is f64.

Cases (W: 64 × 256, seeded normal with a few large outliers, f16-representable):
- `float-g64`: 4 bits, group 64, float zero: the solver's scale, zero, codes W_q and W_r.
- `q4_1`: 4 bits, group 32 (the block), float zero, stored as ggml Q4_1 blocks: d = f16(1/s),
  m = f16(-z/s), each code the nearest level of the stored grid, q = clip(rint((w - m) / d))
  in f32 (as crate/src/methods/hqq.rs documents); the expected block bytes.
- `int4-asym-g64`: 4 bits, group 64, the range widened to include 0 and the zero rounded to an
  integer in [0, 15] initially and after every update; stored as crate/src/formats/int.rs's
  int4-asym-g64 (scale = f16(f32(1/s)), q = clip(rint(w / scale) + zero, 0, 15) in f32,
  w' = scale · (q - zero)); the expected dequantized values.

    pip install numpy
    python3 scripts/dev/hqq_reference.py

Files (little-endian): w.f16.bin (rows × cols); per case <case>.scale.f64.bin and
<case>.zero.f64.bin (the solver's per-group s and z), float-g64.wq.u8.bin, float-g64.wr.f64.bin,
q4_1.blocks.bin, int4-asym-g64.deq.f32.bin; manifest.json lists shapes, steps and files.
"""

import json
import os

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "hqq")
ROWS, COLS = 64, 256
F32 = np.float32
OPT = {"lp_norm": 0.7, "beta": 10.0, "kappa": 1.01, "iters": 20}


def shrink_lp(x, beta, p):
    """sign(x) · relu(|x| - |x|^(p-1) / beta): the l_p proximal (generalised soft threshold)."""
    ax = np.abs(x)
    with np.errstate(divide="ignore"):
        out = np.maximum(ax - (1.0 / beta) * np.power(ax, p - 1.0), 0.0)
    return np.sign(x) * out


def hqq(w, group, bits, zero_mode):
    """Returns (s, z, W_q, W_r, steps) per group, zero_mode 'float' or 'int'."""
    wg = w.reshape(-1, group).astype(np.float64)
    qmax = float(2**bits - 1)
    lo = wg.min(axis=1, keepdims=True)
    hi = wg.max(axis=1, keepdims=True)
    if zero_mode == "int":
        lo, hi = np.minimum(lo, 0.0), np.maximum(hi, 0.0)
    denom = hi - lo
    with np.errstate(divide="ignore"):
        s = qmax / denom
    s = np.where(np.abs(denom) <= 1e-4, 1.0, s)
    s = np.minimum(s, 2e4)
    z = -lo * s
    if zero_mode == "int":
        z = np.clip(np.rint(z), 0.0, qmax)

    beta, best, steps = OPT["beta"], np.inf, 0
    for _ in range(OPT["iters"]):
        steps += 1
        w_q = np.clip(np.rint(wg * s + z), 0.0, qmax)
        w_r = (w_q - z) / s
        w_e = shrink_lp(wg - w_r, beta, OPT["lp_norm"])
        z = np.mean(w_q - (wg - w_e) * s, axis=1, keepdims=True)
        if zero_mode == "int":
            z = np.clip(np.rint(z), 0.0, qmax)
        beta *= OPT["kappa"]
        err = np.mean(np.abs(wg - w_r))
        if err < best:
            best = err
        else:
            break
    w_q = np.clip(np.rint(wg * s + z), 0.0, qmax)
    w_r = (w_q - z) / s
    return s.ravel(), z.ravel(), w_q.reshape(w.shape), w_r.reshape(w.shape), steps


def q4_1_blocks(w, s, z):
    """ggml block_q4_1 bytes: f16 d, f16 m, 16 bytes of nibbles (low: j, high: j + 16)."""
    d = (1.0 / s).astype(np.float16)
    m = (-z / s).astype(np.float16)
    out = bytearray()
    for b, x in enumerate(w.reshape(-1, 32).astype(F32)):
        d32, m32 = F32(d[b]), F32(m[b])
        q = np.clip(np.rint((x - m32) / d32), 0, 15).astype(np.uint8)
        out += d[b].astype("<f2").tobytes() + m[b].astype("<f2").tobytes()
        out += (q[:16] | (q[16:] << 4)).astype(np.uint8).tobytes()
    return bytes(out)


def int_asym_deq(w, s, z, group):
    scale = (1.0 / s).astype(F32).astype(np.float16).astype(F32)[:, None]
    zero = z.astype(F32)[:, None]
    x = w.reshape(-1, group).astype(F32)
    q = np.clip(np.rint(x / scale) + zero, 0, 15)
    return (scale * (q - zero)).astype(F32).reshape(w.shape)


def main():
    rng = np.random.default_rng(14)
    w = rng.normal(0.0, 0.02, size=(ROWS, COLS))
    outliers = rng.random(size=w.shape) < 0.01
    w[outliers] *= 12.0
    w = w.astype(np.float16)
    os.makedirs(OUT, exist_ok=True)
    w.astype("<f2").tofile(os.path.join(OUT, "w.f16.bin"))
    w = w.astype(F32)
    manifest = {"rows": ROWS, "cols": COLS, "options": OPT, "cases": {}}

    def save(name, arr, dtype):
        np.asarray(arr).astype(dtype).tofile(os.path.join(OUT, name))

    s, z, w_q, w_r, steps = hqq(w, 64, 4, "float")
    save("float-g64.scale.f64.bin", s, "<f8")
    save("float-g64.zero.f64.bin", z, "<f8")
    save("float-g64.wq.u8.bin", w_q, "u1")
    save("float-g64.wr.f64.bin", w_r, "<f8")
    manifest["cases"]["float-g64"] = {"group": 64, "bits": 4, "steps": steps}

    s, z, _, _, steps = hqq(w, 32, 4, "float")
    save("q4_1.scale.f64.bin", s, "<f8")
    save("q4_1.zero.f64.bin", z, "<f8")
    with open(os.path.join(OUT, "q4_1.blocks.bin"), "wb") as f:
        f.write(q4_1_blocks(w, s, z))
    manifest["cases"]["q4_1"] = {"group": 32, "bits": 4, "steps": steps}

    s, z, _, _, steps = hqq(w, 64, 4, "int")
    save("int4-asym-g64.scale.f64.bin", s, "<f8")
    save("int4-asym-g64.zero.f64.bin", z, "<f8")
    save("int4-asym-g64.deq.f32.bin", int_asym_deq(w, s, z, 64), "<f4")
    manifest["cases"]["int4-asym-g64"] = {"group": 64, "bits": 4, "steps": steps}

    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print({k: v["steps"] for k, v in manifest["cases"].items()})


if __name__ == "__main__":
    main()
