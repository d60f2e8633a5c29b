#!/usr/bin/env python3
"""Golden files for quantlab's GPTQ test (tests/rust/gptq.rs).

Dev tool only: the test reads the committed files in tests/fixtures/gptq/ and never runs this.
An independent numpy port of GPTQ as published (Frantar et al. 2022; the algorithm of
`GPTQ.fasterquant` in IST-DASLab/gptq, gptq.py), written from the paper and that reference, not
from the Rust: H = 2 XᵀX / n, dead inputs, optional act-order with static groups, 1% damping,
the upper Cholesky factor of H⁻¹ (LAPACK's here, through numpy), 128-column blocks with the
lazy batch update. Group parameters follow the rule documented in crate/src/methods/gptq.rs:
in column order a group's parameters come from its current (corrected) weights when its first
column is reached; with act-order from the uncorrected weights (static groups).

Quantizers, written from the format docs: INT sym/asym with f16 group scales
(crate/src/formats/int.rs) and GGUF Q4_0 (d from ggml's quantize_row_q4_0_ref rule, each weight
rounded to the nearest level (q - 8)·d of the stored f16 d).

The inputs are chosen so that XᵀX is exact in f64 whatever the summation order: X is int8
values times a power of two per column. W is f16-representable.

    pip install numpy
    python3 scripts/dev/gptq_reference.py

Files (little-endian): x.i8.bin (samples × cols), x_exp.i8.bin (per column k: X[:, c] = int8 ·
2^k), w.f16.bin (rows × cols), <case>.deq.f32.bin (GPTQ's dequantized weights, row-major);
manifest.json lists shapes, schemes and files.
"""

import json
import os

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "gptq")
ROWS, COLS, SAMPLES = 64, 256, 512
F32 = np.float32


def f16_store(v):
    return np.asarray(v, dtype=F32).astype(np.float16).astype(F32)


class IntGroups:
    """INT sym/asym with one f16 scale (and zero point) per `group` consecutive columns."""

    def __init__(self, bits, sym, group):
        self.bits, self.sym, self.group_len = bits, sym, group

    def fit(self, x):
        """Per-row (scale, zero) for the f32 rows of one group, shape (rows, group)."""
        if self.sym:
            qmax = F32(2 ** (self.bits - 1) - 1)
            s = f16_store(np.abs(x).max(axis=1) / qmax)
            return s, np.zeros_like(s)
        qmax = F32(2**self.bits - 1)
        lo = np.minimum(x.min(axis=1), F32(0))
        hi = np.maximum(x.max(axis=1), F32(0))
        s = f16_store((hi - lo) / qmax)
        safe = np.where(s == 0, F32(1), s)
        z = np.where(s == 0, F32(0), np.clip(np.rint(-lo / safe), 0, qmax)).astype(F32)
        return s, z

    def round(self, p, w):
        """Dequantized f32 values of the f32 column `w` (one value per row)."""
        s, z = p
        safe = np.where(s == 0, F32(1), s)
        if self.sym:
            qmax = F32(2 ** (self.bits - 1) - 1)
            q = np.where(s == 0, F32(0), np.clip(np.rint(w / safe), -qmax, qmax)).astype(F32)
            return (s * q).astype(F32)
        qmax = F32(2**self.bits - 1)
        q = np.where(s == 0, z, np.clip(np.rint(w / safe) + z, 0, qmax)).astype(F32)
        return (s * (q - z)).astype(F32)


class Q4_0:
    """GGUF Q4_0 blocks of 32 as GPTQ's grid."""

    group_len = 32

    def fit(self, x):
        # ggml: the first value of largest magnitude, sign kept; d = max / -8, stored as f16.
        idx = np.argmax(np.abs(x), axis=1)
        mx = x[np.arange(x.shape[0]), idx]
        return (f16_store(mx / F32(-8)),)

    def round(self, p, w):
        (d,) = p
        safe = np.where(d == 0, F32(1), d)
        q = np.where(d == 0, F32(8), np.clip(np.rint(w / safe) + F32(8), 0, 15)).astype(F32)
        return ((q - F32(8)) * d).astype(F32)


def upper_cholesky_of_inverse(h):
    """The reference's cholesky(cholesky_inverse(cholesky(H)), upper=True)."""
    lower = np.linalg.cholesky(h)
    lower_inv = np.linalg.inv(lower)
    hinv = lower_inv.T @ lower_inv
    return np.linalg.cholesky(hinv).T


def gptq(w, xtx, n, quant, act_order, blocksize=128, percdamp=0.01):
    w = w.astype(np.float64).copy()
    rows, cols = w.shape
    g = quant.group_len
    h = xtx * (2.0 / n)
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0

    params = {}
    perm = np.arange(cols)
    if act_order:
        for gi in range(cols // g):
            params[gi] = quant.fit(w[:, gi * g : (gi + 1) * g].astype(F32))
        perm = np.argsort(-np.diag(h), kind="stable")
        w = w[:, perm]
        h = h[perm][:, perm]

    h[np.diag_indices(cols)] += percdamp * np.mean(np.diag(h))
    u = upper_cholesky_of_inverse(h)

    out = np.zeros((rows, cols), dtype=F32)
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        w1 = w[:, i1:i2].copy()
        err = np.zeros((rows, i2 - i1))
        for i in range(i2 - i1):
            col = perm[i1 + i]
            if not act_order and col % g == 0:
                current = np.concatenate([w1[:, i:], w[:, i2:]], axis=1)[:, :g]
                params[col // g] = quant.fit(current.astype(F32))
            x = w1[:, i]
            q = quant.round(params[col // g], x.astype(F32))
            out[:, col] = q
            e = (x - q.astype(np.float64)) / u[i1 + i, i1 + i]
            w1[:, i + 1 :] -= np.outer(e, u[i1 + i, i1 + i + 1 : i2])
            err[:, i] = e
        # The lazy batch update, one block row at a time (the order of the Rust loop).
        for i in range(i2 - i1):
            w[:, i2:] -= np.outer(err[:, i], u[i1 + i, i2:])
    return out


def rtn(w, quant):
    """Round to nearest with the same grids, for the printed comparison."""
    g = quant.group_len
    out = np.zeros_like(w)
    for gi in range(w.shape[1] // g):
        p = quant.fit(w[:, gi * g : (gi + 1) * g])
        for c in range(gi * g, (gi + 1) * g):
            out[:, c] = quant.round(p, w[:, c])
    return out


def inputs(rng):
    z = rng.standard_normal((SAMPLES, COLS))
    mix = np.eye(COLS) + rng.standard_normal((COLS, COLS)) / np.sqrt(COLS)
    x = z @ mix
    x8 = np.clip(np.rint(x * 20.0), -127, 127).astype(np.int8)
    x8[:, [17, 200]] = 0  # two dead inputs
    exp = rng.integers(-3, 3, size=COLS).astype(np.int8)
    return x8, exp


def main():
    rng = np.random.default_rng(20261207)
    x8, exp = inputs(rng)
    x = x8.astype(np.float64) * np.exp2(exp.astype(np.float64))[None, :]
    xtx = x.T @ x  # exact: integers times powers of two, well inside 2^53
    w = (rng.standard_normal((ROWS, COLS)) * 0.05).astype(np.float16)
    w32 = w.astype(F32)

    cases = [
        ("int4-sym-g64", IntGroups(4, True, 64), False),
        ("int4-sym-g64", IntGroups(4, True, 64), True),
        ("int3-asym-g64", IntGroups(3, False, 64), False),
        ("int3-asym-g64", IntGroups(3, False, 64), True),
        ("q4_0", Q4_0(), False),
    ]
    os.makedirs(OUT, exist_ok=True)
    x8.tofile(os.path.join(OUT, "x.i8.bin"))
    exp.tofile(os.path.join(OUT, "x_exp.i8.bin"))
    w.astype("<f2").tofile(os.path.join(OUT, "w.f16.bin"))
    manifest = {"rows": ROWS, "cols": COLS, "samples": SAMPLES, "cases": []}
    for scheme, quant, act_order in cases:
        name = scheme + ("-act-order" if act_order else "")
        deq = gptq(w32, xtx, SAMPLES, quant, act_order)
        deq.astype("<f4").tofile(os.path.join(OUT, f"{name}.deq.f32.bin"))
        manifest["cases"].append({"scheme": scheme, "act_order": act_order, "deq": f"{name}.deq.f32.bin"})
        err = lambda q: float(np.linalg.norm((w32 - q).astype(np.float64) @ x.T))
        print(f"{name}: ‖(W − Ŵ)Xᵀ‖ GPTQ {err(deq):.1f}, RTN {err(rtn(w32, quant)):.1f}")
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
