#!/usr/bin/env python3
"""Golden files for activation quantization, static range calibration and SmoothQuant
(tests/rust/act_quant.rs; rules in crate/src/model/act_quant.rs, crate/src/calib/ranges.rs,
crate/src/methods/smoothquant.rs).

Dev tool only: the tests read the committed files in tests/fixtures/act_quant/ and never run
this. An independent numpy port of each rule as the papers and reference code define it:

  pip install numpy ml_dtypes
  python3 scripts/dev/make_act_quant_goldens.py

Quantizers (float32 arithmetic; np.rint rounds half to even; FP8 E4M3 through ml_dtypes'
float8_e4m3fn cast, saturated first), L = 127 (int8), 7 (int4), 448 (fp8):
  int   s = T / L, q = clip(rint(x * (1/s)), -L, L), x^ = q * s
  fp8   s = T / 448, x^ = e4m3(clip(x / s, -448, 448)) * s
  T = max|row| (per token), max|all rows| (per tensor), a given threshold (static); T = 0: zeros.

Ranges, from a histogram of |x| with 2048 bins over [0, max|x|] (bin = min(floor(|x| * (2048 /
max)), 2047) in float64), bin width w = max / 2048:
  minmax       T = max
  percentile   first k with cumsum(count)[k] >= p/100 * total; T = (k + 1) * w
  mse          pytorch-quantization's _compute_amax_mse: centers c_j = f32((j + 1/2) w); for each
               candidate T = c_i, i = 128..2047: sum_j count_j (q(c_j) - c_j)^2 (float64, summed in
               bin order); argmin (first)
  kl           TensorRT entropy calibration on |x| with MXNet's _get_optimal_threshold merging and
               _smooth_distribution (eps 1e-4), for i = 128..2048 bins, M = 128 (int8) or 8 (int4)
               levels; T = i * w at the argmin (first)

SmoothQuant (mit-han-lab/smoothquant smooth_ln_fcs_llama_like, float32):
  s = clamp(act_max^a / clamp(max_rows|W|, 1e-5)^(1 - a), 1e-5); norm / s; W[:, j] * s_j

Files (little-endian): *.f32.bin (float32), *.f64.bin (float64), *.u32.bin; manifest.json.
Output depends only on the seeds and library versions.
"""

import json
import os

import ml_dtypes
import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "act_quant")
F = np.float32
BINS = 2048
START = 128
LEVELS = {"int8": 127, "int4": 7, "fp8": 448}
KL_LEVELS = {"int8": 128, "int4": 8}


def fake_quant(ty, x, t):
    x = x.astype(F)
    s = F(F(t) / F(LEVELS[ty]))
    if s == 0:
        return np.zeros_like(x)
    if ty == "fp8":
        codes = np.clip((x / s).astype(F), -448, 448).astype(ml_dtypes.float8_e4m3fn)
        return (codes.astype(F) * s).astype(F)
    inv = F(F(1.0) / s)
    q = np.clip(np.rint((x * inv).astype(F)), -LEVELS[ty], LEVELS[ty]).astype(F)
    return (q * s).astype(F)


def per_token(ty, rows):
    return np.stack([fake_quant(ty, r, np.max(np.abs(r))) for r in rows])


def per_tensor(ty, rows):
    return fake_quant(ty, rows, np.max(np.abs(rows)))


def histogram(values, amax):
    b = np.minimum(np.floor(np.abs(values).astype(np.float64) * (BINS / np.float64(amax))), BINS - 1)
    return np.bincount(b.astype(np.int64).ravel(), minlength=BINS).astype(np.uint64)


def percentile(counts, amax, p):
    total = counts.sum()
    w = np.float64(amax) / BINS
    cum = np.cumsum(counts)
    k = int(np.argmax(cum.astype(np.float64) >= p / 100.0 * float(total)))
    return F((k + 1) * w)


def seq_sum(a):
    """Sum in index order (as the Rust loops add), not numpy's pairwise order."""
    return np.cumsum(a)[-1] if len(a) else 0.0


def mse_curve(counts, amax, ty):
    w = np.float64(amax) / BINS
    centers = ((np.arange(BINS, dtype=np.float64) + 0.5) * w).astype(F)
    used = counts > 0
    v, n = centers[used], counts[used].astype(np.float64)
    curve = []
    for t in centers[START:]:
        xh = fake_quant(ty, v, t)
        d = xh.astype(np.float64) - v.astype(np.float64)
        curve.append(seq_sum(n * d * d))
    curve = np.array(curve)
    return curve, centers[START + int(np.argmin(curve))]


def smooth(d):
    zeros = d == 0
    nz = int((~zeros).sum())
    if nz == 0:
        return None
    eps1 = 1e-4 * float(zeros.sum()) / nz
    out = np.where(zeros, 1e-4, d - eps1)
    return out if np.all(out > 0) else None


def kl_curve(counts, amax, levels):
    hist = counts.astype(np.float64)
    w = np.float64(amax) / BINS
    curve = []
    for i in range(max(START, levels), BINS + 1):
        p = hist[:i].copy()
        p[i - 1] += seq_sum(hist[i:])
        merged = i // levels
        q = np.zeros(i)
        for j in range(levels):
            start = j * merged
            stop = i if j == levels - 1 else start + merged
            total = seq_sum(hist[start:stop])
            nonzero = p[start:stop] != 0
            if nonzero.sum() > 0:
                q[start:stop][nonzero] = total / nonzero.sum()
        ps, qs = smooth(p), smooth(q)
        if ps is None or qs is None:
            curve.append(np.inf)
            continue
        pn, qn = ps / seq_sum(ps), qs / seq_sum(qs)
        curve.append(seq_sum(pn * np.log(pn / qn)))
    curve = np.array(curve)
    i = max(START, levels) + int(np.argmin(curve))
    return curve, F(i * w)


def smoothing(act_max, fcs, alpha):
    w_max = np.max(np.abs(np.concatenate(fcs, axis=0)), axis=0).astype(F)
    a = F(alpha)
    s = (np.power(act_max.astype(F), a) / np.power(np.maximum(w_max, F(1e-5)), F(1) - a)).astype(F)
    return np.maximum(s, F(1e-5)).astype(F)


def heavy_tailed(rng, rows, cols, outliers):
    x = rng.standard_t(3, (rows, cols)) * 0.5
    for c, scale in outliers:
        x[:, c] *= scale
    return x.astype(F)


def write(name, a):
    a.tofile(os.path.join(OUT, name))


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(15)
    manifest = {}

    # Quantizer inputs: heavy-tailed rows with outlier channels, a zero row, int8 and int4 ties.
    width = 96
    rows = heavy_tailed(rng, 6, width, [(7, 30.0), (40, -12.0)])
    rows[2] = 0.0
    rows[3] = (rng.integers(-127, 127, width) + 0.5).astype(F)
    rows[3, 5] = 127.0
    rows[4] = (rng.integers(-14, 15, width) / 2.0).astype(F)
    rows[4, 0] = 7.0
    write("inputs.f32.bin", rows)
    static_t = 4.0
    manifest.update(rows=rows.shape[0], width=width, static_threshold=static_t)
    for ty in LEVELS:
        write(f"{ty}-token.f32.bin", per_token(ty, rows))
        write(f"{ty}-tensor.f32.bin", per_tensor(ty, rows))
        write(f"{ty}-static.f32.bin", fake_quant(ty, rows, static_t))

    # Calibration data: 4 chunks of 64 positions, heavy tails and two outlier channels.
    chunks = [heavy_tailed(rng, 64, width, [(3, 40.0), (50, 8.0)]) for _ in range(4)]
    data = np.stack(chunks)
    write("calib.f32.bin", data)
    amax = F(np.max(np.abs(data)))
    counts = histogram(data, amax)
    write("hist.u32.bin", counts.astype(np.uint32))
    ranges = {"max": float(amax), "minmax": float(amax)}
    for p in (99.99, 99.9):
        ranges[f"p{p}"] = float(percentile(counts, amax, p))
    for ty in LEVELS:
        curve, t = mse_curve(counts, amax, ty)
        write(f"mse-{ty}.f64.bin", curve)
        ranges[f"mse-{ty}"] = float(t)
    for ty, levels in KL_LEVELS.items():
        curve, t = kl_curve(counts, amax, levels)
        write(f"kl-{ty}.f64.bin", curve)
        ranges[f"kl-{ty}"] = float(t)
    manifest["calib"] = {"chunks": 4, "rows": 64, "width": width, "ranges": ranges}

    # SmoothQuant: activation maxima with outlier channels, q/k/v-like matrices.
    act_max = np.abs(heavy_tailed(rng, 1, width, [(3, 40.0), (50, 8.0)])[0]) + F(0.01)
    act_max[9] = 0.0  # an input channel that never fired: the factor's floor
    fcs = [(rng.standard_normal((r, width)) * 0.1).astype(F) for r in (32, 16, 16)]
    fcs[1][:, 20] = 0.0
    norm = (1.0 + 0.2 * rng.standard_normal(width)).astype(F)
    write("sq-act-max.f32.bin", act_max)
    write("sq-norm.f32.bin", norm)
    write("sq-w.f32.bin", np.concatenate(fcs, axis=0))
    for alpha in (0.5, 0.8):
        s = smoothing(act_max, fcs, alpha)
        write(f"sq-s-{alpha}.f32.bin", s)
        write(f"sq-norm-{alpha}.f32.bin", (norm / s).astype(F))
        write(f"sq-w-{alpha}.f32.bin", (np.concatenate(fcs, axis=0) * s[None, :]).astype(F))
    manifest["smoothquant"] = {"width": width, "rows": [32, 16, 16], "alphas": [0.5, 0.8]}

    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
