#!/usr/bin/env python3
"""Golden files for quantlab's AWQ test (tests/rust/awq.rs).

Dev tool only: the test reads the committed files in tests/fixtures/awq/ and never runs this.
An independent numpy port of AWQ's search for ONE linear layer whose objective is its own
output, written from the paper (Lin et al. 2023) and the reference implementation
mit-han-lab/llm-awq (`auto_scale.py`: `_search_module_scale`; `auto_clip.py`:
`auto_clip_layer`), not from the Rust:

- scale search: x_mean = mean |x| per input channel; for ratio r = i/20, i = 0..19:
  s = max(x_mean^r, 1e-4) / sqrt(max s * min s); loss = mean((X Wᵀ − X Ŵᵀ)²) with
  Ŵ = Q(W·diag(s)) / s; the first smallest loss wins.
- clip search on W·diag(s) with inputs X/s: per row and quantization group, the max |w| times
  (1 − k/20), k = 0..9; weights clamped to ±max and quantized; the group's output error
  Σ_t (x_t·(w − q))² decides, the first smallest wins.

Q is quantlab's format (written from the docs): int4-asym-g64 (crate/src/formats/int.rs:
f16 group scale, zero point widened to include 0) and GGUF q4_0 (ggml's quantize_row_q4_0_ref:
d = max/−8 from the signed absolute maximum, codes min(15, trunc(x/d + 8.5)), f16 d).

Arithmetic, chosen so the Rust can match it: the scales in float64 (C pow) rounded to float32;
W·s, Q, /s, X/s, the clamps in float32, one operation at a time; output differences in
float64. X and W are float16 values (so mean |x| is exact in float64 in any order).

    python3 scripts/dev/awq_reference.py

Files (little-endian): x.f16.bin (tokens × cols), w.f16.bin (rows × cols) and per case
<case>.scales.f32.bin, <case>.clip.f32.bin (rows × groups), <case>.deq.f32.bin (the final
quantized scaled weights, decoded); manifest.json lists shapes, ratios and losses.
"""

import json
import math
import os

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "awq")
ROWS, COLS, TOKENS = 64, 256, 256
GRID, CLIP_STEPS = 20, 10
F32 = np.float32


def f16(v):
    return np.asarray(v, dtype=F32).astype(np.float16).astype(F32)


def int4_asym_g64(w):
    """Quantize then decode the f32 matrix w (rows, cols) in groups of 64."""
    rows, cols = w.shape
    g = w.reshape(rows, cols // 64, 64)
    qmax = F32(15)
    lo = np.minimum(g.min(axis=2, keepdims=True), F32(0))
    hi = np.maximum(g.max(axis=2, keepdims=True), F32(0))
    s = f16((hi - lo) / qmax)
    safe = np.where(s == 0, F32(1), s)
    z = np.where(s == 0, F32(0), np.clip(np.rint(-lo / safe), F32(0), qmax)).astype(F32)
    q = np.where(s == 0, z, np.clip(np.rint(g / safe) + z, F32(0), qmax)).astype(F32)
    return (s * (q - z)).astype(F32).reshape(rows, cols)


def q4_0(w):
    rows, cols = w.shape
    b = w.reshape(rows, cols // 32, 32)
    idx = np.argmax(np.abs(b), axis=2)  # the first largest |x|, as ggml's strict `<` keeps it
    mx = np.take_along_axis(b, idx[..., None], axis=2)
    d = (mx / F32(-8)).astype(F32)
    inv = np.where(d != 0, F32(1) / np.where(d == 0, F32(1), d), F32(0)).astype(F32)
    q = np.minimum(np.trunc((b * inv).astype(F32) + F32(8.5)), F32(15)).astype(F32)
    return ((q - F32(8)) * f16(d)).astype(F32).reshape(rows, cols)


CASES = {"int4-asym-g64": (int4_asym_g64, 64), "q4_0": (q4_0, 32)}


def scales_for(x_mean, i):
    r = i / GRID
    s = np.array([max(math.pow(float(v), r), 1e-4) for v in x_mean], dtype=np.float64)
    return (s / math.sqrt(s.max() * s.min())).astype(F32)


def out_sq_error(x, d):
    """Σ over tokens and rows of (x_t · d_r)², float64."""
    e = x.astype(np.float64) @ d.astype(np.float64).T
    return float((e * e).sum())


def awq(w, x, quant, group):
    x_mean = np.abs(x.astype(np.float64)).mean(axis=0).astype(F32)
    losses, best = [], None
    for i in range(GRID):
        s = scales_for(x_mean, i)
        w_hat = (quant((w * s).astype(F32)) / s).astype(F32)
        loss = out_sq_error(x, (w - w_hat).astype(F32)) / (x.shape[0] * w.shape[0])
        losses.append(loss)
        if best is None or loss < best[1]:
            best = (i, loss, s)
    i_best, _, s = best
    ws = (w * s).astype(F32)
    xs = (x / s).astype(F32)
    rows, cols = ws.shape
    ng = cols // group
    org_max = np.abs(ws).reshape(rows, ng, group).max(axis=2)
    best_max = org_max.copy()
    best_err = np.full((rows, ng), np.inf)
    xg = xs.astype(np.float64).reshape(xs.shape[0], ng, group)
    for k in range(CLIP_STEPS):
        m = (org_max * F32(1 - k / GRID)).astype(F32)
        clipped = np.clip(ws.reshape(rows, ng, group), -m[..., None], m[..., None]).reshape(rows, cols)
        d = (ws - quant(clipped)).astype(np.float64).reshape(rows, ng, group)
        e = np.einsum("tgj,rgj->rtg", xg, d)
        err = (e * e).sum(axis=1)
        better = err < best_err
        best_err[better] = err[better]
        best_max[better] = m[better]
    final = np.clip(ws.reshape(rows, ng, group), -best_max[..., None], best_max[..., None]).reshape(rows, cols)
    ordered = sorted(losses)
    margin = (ordered[1] - ordered[0]) / ordered[0]
    return i_best, losses, margin, s, best_max.astype(F32), quant(final.astype(F32))


def main():
    rng = np.random.default_rng(14)
    w = f16(rng.normal(0, 0.05, (ROWS, COLS)))
    x = rng.normal(0, 1, (TOKENS, COLS))
    x[:, [3, 77, 140, 201]] *= 25  # a few salient channels with large activations
    x = f16(x)
    os.makedirs(OUT, exist_ok=True)
    w.astype(np.float16).tofile(os.path.join(OUT, "w.f16.bin"))
    x.astype(np.float16).tofile(os.path.join(OUT, "x.f16.bin"))
    cases = []
    for name, (quant, group) in CASES.items():
        i, losses, margin, s, clip, deq = awq(w, x, quant, group)
        s.astype("<f4").tofile(os.path.join(OUT, f"{name}.scales.f32.bin"))
        clip.astype("<f4").tofile(os.path.join(OUT, f"{name}.clip.f32.bin"))
        deq.astype("<f4").tofile(os.path.join(OUT, f"{name}.deq.f32.bin"))
        cases.append({"scheme": name, "ratio_index": i, "losses": losses, "best_loss_margin": margin})
        print(f"{name}: ratio {i}/{GRID}, loss margin to the runner-up {margin:.2e}")
    manifest = {"rows": ROWS, "cols": COLS, "tokens": TOKENS, "cases": cases}
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
