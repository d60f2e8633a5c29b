#!/usr/bin/env python3
"""Golden files for quantlab's integer RTN tests (tests/rust/int_fp8.rs).

Dev tool only: the tests read the committed files in tests/fixtures/int/ and never run this.
This is an independent numpy implementation of the conventions documented in
crate/src/formats/int.rs (restricted symmetric range, asymmetric with zero included in the
range, round half to even, f16 scales for group-wise schemes, linear percentile, 51-point MSE
shrink grid), written from the documentation, vectorised over groups.

    pip install numpy
    python3 scripts/dev/make_int_goldens.py

Per case <name>: <name>.in.f32.bin (input, row-major), <name>.codes.u8.bin (one code per
weight), <name>.scales.f32.bin, <name>.zeros.u8.bin (asymmetric only), <name>.deq.f32.bin;
manifest.json lists scheme, shape and files. Little-endian.
"""

import json
import os

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "int")
SEED = 1234
F32 = np.float32


def store_scale(s, group_wise):
    s = np.asarray(s, dtype=F32)
    if not group_wise:
        return s
    h = s.astype(np.float16)
    h = np.where(np.isinf(h), np.float16(65504.0), h)
    return h.astype(F32)


def percentile(v, p):
    """Linear interpolation on the sorted values, in float64, rounded to f32."""
    a = np.sort(v.astype(np.float64))
    n = a.size
    pos = ((n - 1) * float(p)) / 100.0
    i = min(int(np.floor(pos)), n - 1)
    if i + 1 >= n:
        r = a[n - 1]
    else:
        r = a[i] + (pos - i) * (a[i + 1] - a[i])
    assert abs(r - np.percentile(a, p)) <= 1e-9 * max(1.0, abs(r))
    return F32(r)


def params(bits, sym, c_or_lohi, group_wise):
    """(scale, zero) for clip value c (sym) or range (lo, hi) (asym)."""
    if sym:
        qmax = F32(2 ** (bits - 1) - 1)
        return store_scale(F32(c_or_lohi) / qmax, group_wise)[()], 0
    lo, hi = c_or_lohi
    lo, hi = min(F32(lo), F32(0)), max(F32(hi), F32(0))
    qmax = F32(2**bits - 1)
    s = store_scale(F32(F32(hi) - F32(lo)) / qmax, group_wise)[()]
    if s == 0:
        return s, 0
    z = np.clip(np.rint(F32(-lo) / s), 0, qmax)
    return s, int(z)


def quant(x, bits, sym, s, z):
    x = x.astype(F32)
    if sym:
        half = 2 ** (bits - 1)
        if s == 0:
            q = np.zeros_like(x)
        else:
            q = np.clip(np.rint(x / F32(s)), -(half - 1), half - 1)
        codes = (q.astype(np.int32) + half).astype(np.uint8)
        deq = (F32(s) * q.astype(np.int32).astype(F32)).astype(F32)
    else:
        qmax = 2**bits - 1
        if s == 0:
            q = np.full(x.shape, z, dtype=np.int32)
        else:
            q = np.clip(np.rint(x / F32(s)) + F32(z), 0, qmax).astype(np.int32)
        codes = q.astype(np.uint8)
        deq = (F32(s) * (q - z).astype(F32)).astype(F32)
    return codes, deq


def sq_err(x, deq):
    e = x.astype(np.float64) - deq.astype(np.float64)
    return np.cumsum(e * e)[-1]  # sequential sum, element order


def quantize_group(x, bits, sym, rule, group_wise):
    kind = rule[0]
    if kind == "minmax":
        arg = float(np.max(np.abs(x))) if sym else (np.min(x), np.max(x))
        s, z = params(bits, sym, F32(arg) if sym else arg, group_wise)
    elif kind == "pct":
        p = float(F32(rule[1]))
        if sym:
            s, z = params(bits, sym, percentile(np.abs(x), p), group_wise)
        else:
            s, z = params(bits, sym, (percentile(x, 100.0 - p), percentile(x, p)), group_wise)
    else:  # mse
        best = None
        if sym:
            c = F32(np.max(np.abs(x)))
        else:
            lo, hi = min(F32(np.min(x)), F32(0)), max(F32(np.max(x)), F32(0))
        for k in range(51):
            f = F32(100 - k) / F32(100)
            cand = params(bits, sym, F32(c * f), group_wise) if sym else params(
                bits, sym, (F32(lo * f), F32(hi * f)), group_wise
            )
            _, deq = quant(x, bits, sym, *cand)
            e = sq_err(x, deq)
            if best is None or e < best[0]:
                best = (e, cand)
        s, z = best[1]
    codes, deq = quant(x, bits, sym, s, z)
    return codes, deq, s, z


def tie_row(bits, sym, cols, scale_exp):
    """A row whose scale is an exact power of two, filled with exact half-step ties."""
    s = 2.0**scale_exp
    if sym:
        qmax = 2 ** (bits - 1) - 1
        ends = [qmax * s, -qmax * s]
        ks = np.arange(-qmax, qmax) + 0.5
    else:
        qmax = 2**bits - 1
        z = (qmax + 1) // 2
        ends = [-z * s, (qmax - z) * s]
        ks = np.arange(-z, qmax - z) + 0.5
    ties = list(ks * s)
    row = []
    while len(row) < cols:
        g = ends + ties  # every group of the row starts with the two end points
        row += g
    return np.array(row[:cols], dtype=F32)


def make_input(rng, rows, cols, bits, sym, group):
    x = (rng.standard_normal((rows, cols)) * 0.05).astype(F32)
    # Ties: each group starts with the end points, so the scale is exactly 2^-3.
    tie = np.zeros(cols, dtype=F32)
    for g0 in range(0, cols, group):
        tie[g0 : g0 + group] = tie_row(bits, sym, group, -3)
    x[0] = tie
    x[1] = 0.0  # all-zero row
    x[2] = F32(0.3)  # constant row
    x[3] = F32(-1.7)
    x[4, 5] = F32(2.5)  # an outlier
    x[5, ::7] = 0.0  # exact zeros in a normal row
    return x


CASES = [
    # name, bits, sym, granularity, rule, rows, cols
    ("int8-sym-channel", 8, True, "channel", ("minmax",), 8, 256),
    ("int4-asym-g32", 4, False, 32, ("minmax",), 8, 128),
    ("int4-sym-tensor", 4, True, "tensor", ("minmax",), 8, 64),
    ("int3-asym-g64", 3, False, 64, ("minmax",), 8, 128),
    ("int2-sym-g32", 2, True, 32, ("minmax",), 8, 64),
    ("int4-sym-g32-p99", 4, True, 32, ("pct", 99.0), 8, 128),
    ("int3-asym-channel-p99.5", 3, False, "channel", ("pct", 99.5), 8, 96),
    ("int4-asym-g64-mse", 4, False, 64, ("mse",), 8, 128),
    ("int3-sym-channel-mse", 3, True, "channel", ("mse",), 8, 64),
]


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(SEED)
    manifest = {"numpy": np.__version__, "seed": SEED, "cases": []}
    for name, bits, sym, gran, rule, rows, cols in CASES:
        group = cols if gran in ("channel", "tensor") else gran
        x = make_input(rng, rows, cols, bits, sym, group)
        flat = x.reshape(-1)
        glen = rows * cols if gran == "tensor" else group
        group_wise = isinstance(gran, int)
        codes, deq, scales, zeros = [], [], [], []
        for g0 in range(0, flat.size, glen):
            c, d, s, z = quantize_group(flat[g0 : g0 + glen], bits, sym, rule, group_wise)
            codes.append(c)
            deq.append(d)
            scales.append(s)
            zeros.append(z)
        files = {"in": f"{name}.in.f32.bin", "codes": f"{name}.codes.u8.bin", "scales": f"{name}.scales.f32.bin",
                 "deq": f"{name}.deq.f32.bin"}
        flat.astype(F32).tofile(os.path.join(OUT, files["in"]))
        np.concatenate(codes).astype(np.uint8).tofile(os.path.join(OUT, files["codes"]))
        np.array(scales, dtype=F32).tofile(os.path.join(OUT, files["scales"]))
        np.concatenate(deq).astype(F32).tofile(os.path.join(OUT, files["deq"]))
        if not sym:
            files["zeros"] = f"{name}.zeros.u8.bin"
            np.array(zeros, dtype=np.uint8).tofile(os.path.join(OUT, files["zeros"]))
        manifest["cases"].append({"scheme": name, "rows": rows, "cols": cols, "files": files})
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"wrote {len(CASES)} cases to {OUT}")


if __name__ == "__main__":
    main()
