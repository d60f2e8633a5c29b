#!/usr/bin/env python3
"""Golden files for the 8-bit-activation dot products (tests/rust/int8_dot.rs; kernels in
crate/src/model/int8_dot.rs).

Dev tool only: the tests read the committed files in tests/fixtures/int8_dot/ and never run this.
The weights are quantized by gguf-py (`gguf.quants.quantize`, a port of ggml's
quantize_row_*_ref); the activations and the dot products are an independent numpy port of
ggml's published reference code (ggml-quants.c `quantize_row_q8_0_ref` / `quantize_row_q8_1_ref`,
ggml-cpu quants.c `ggml_vec_dot_{q4_0_q8_0,q4_1_q8_1,q8_0_q8_0}_generic`), float32 arithmetic in
the C order of operations:

    pip install 'gguf==0.19.0' numpy
    python3 scripts/dev/make_int8_dot_goldens.py

Activations, per block of 32 values x:
  d = max|x| / 127, id = d ? 1/d : 0, q = roundf(x * id)   (roundf: halves away from zero)
  Q8_0 block: f16 d, 32 × i8 q;  Q8_1 block: f16 d, f16 s = (float)Σq · d, 32 × i8 q
Dots, per block, accumulated in a float32 `sumf` from 0 in block order:
  Q4_0 · Q8_0  sumi = Σ_j (lo_j − 8)·q_j + (hi_j − 8)·q_{j+16};  sumf += (float)sumi · dw · dx
  Q4_1 · Q8_1  sumi = Σ_j lo_j·q_j + hi_j·q_{j+16};             sumf += (dw·dx)·sumi + mw·sx
  Q8_0 · Q8_0  sumi = Σ_j w_j·q_j;                               sumf += sumi · (dw·dx)

Files (little-endian): x.f32.bin (ROWS_X × COLS activations), w_<type>.bin (ROWS_W × COLS
weights packed as ggml blocks), act_q8_0.bin / act_q8_1.bin (the activations' blocks, one row
of x after another), dot_<type>.f32.bin (ROWS_X × ROWS_W results, row-major by activation row);
manifest.json. Output depends only on the seed and library versions.
"""

import json
import os

import numpy as np

import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "int8_dot")
SEED = 8
COLS = 256
ROWS_W = 6
ROWS_X = 4
F = np.float32


def f16_to_f32(h):
    return F(np.float16(h))


def quantize_act(x, with_sum):
    """quantize_row_q8_0_ref / quantize_row_q8_1_ref on one row: (bytes, d list, s list, q array)."""
    out = bytearray()
    for b in range(len(x) // 32):
        v = x[32 * b:32 * (b + 1)].astype(F)
        amax = F(np.max(np.abs(v)))
        d = F(amax / F(127))
        inv = F(F(1) / d) if d != 0 else F(0)
        prod = (v * inv).astype(F)
        q = np.where(prod >= 0, np.floor(prod + F(0.5)), -np.floor(-prod + F(0.5))).astype(np.int32)
        # roundf rounds halves away from zero: floor(|p| + 0.5) with the sign, exact in float32.
        out += np.float16(d).tobytes()
        if with_sum:
            s = F(F(int(q.sum())) * d)
            out += np.float16(s).tobytes()
        out += q.astype(np.int8).tobytes()
    return bytes(out)


def parse_act(raw, with_sum):
    size = 36 if with_sum else 34
    blocks = []
    for o in range(0, len(raw), size):
        d = f16_to_f32(np.frombuffer(raw[o:o + 2], dtype=np.float16)[0])
        s = f16_to_f32(np.frombuffer(raw[o + 2:o + 4], dtype=np.float16)[0]) if with_sum else None
        q = np.frombuffer(raw[o + size - 32:o + size], dtype=np.int8).astype(np.int64)
        blocks.append((d, s, q))
    return blocks


def dot(ty, wrow, act):
    sumf = F(0)
    size = {T.Q4_0: 18, T.Q4_1: 20, T.Q8_0: 34}[ty]
    for b, (dx, sx, qx) in enumerate(act):
        blk = wrow[b * size:(b + 1) * size]
        dw = f16_to_f32(np.frombuffer(blk[0:2], dtype=np.float16)[0])
        if ty == T.Q8_0:
            w = np.frombuffer(blk[2:34], dtype=np.int8).astype(np.int64)
            sumi = int((w * qx).sum())
            sumf = F(sumf + F(F(sumi) * F(dw * dx)))
            continue
        qs = np.frombuffer(blk[size - 16:size], dtype=np.uint8).astype(np.int64)
        lo, hi = qs & 15, qs >> 4
        if ty == T.Q4_0:
            sumi = int(((lo - 8) * qx[:16]).sum() + ((hi - 8) * qx[16:]).sum())
            sumf = F(sumf + F(F(F(sumi) * dw) * dx))
        else:
            mw = f16_to_f32(np.frombuffer(blk[2:4], dtype=np.float16)[0])
            sumi = int((lo * qx[:16]).sum() + (hi * qx[16:]).sum())
            sumf = F(sumf + F(F(F(dw * dx) * F(sumi)) + F(mw * sx)))
    return sumf


def main():
    rng = np.random.default_rng(SEED)
    # Weights with a few large columns; activations heavy-tailed with outlier channels, one
    # all-zero block and one block of exact ties (x·id landing on .5 before rounding).
    w = (rng.standard_normal((ROWS_W, COLS)) * 0.05).astype(F)
    w[:, 7] *= 12
    x = (rng.standard_t(3, (ROWS_X, COLS))).astype(F)
    x[:, 40] *= 25
    x[1, 64:96] = 0
    x[2, 96:127] = F(0.25) * np.arange(-16, 15, dtype=F)  # with max 63.5: d = 0.5, x·id = k/2
    x[2, 127] = F(63.5)
    os.makedirs(OUT, exist_ok=True)
    x.astype("<f4").tofile(os.path.join(OUT, "x.f32.bin"))
    acts = {}
    for name, with_sum in (("q8_0", False), ("q8_1", True)):
        raw = b"".join(quantize_act(row, with_sum) for row in x)
        open(os.path.join(OUT, f"act_{name}.bin"), "wb").write(raw)
        per_row = len(raw) // ROWS_X
        acts[name] = [parse_act(raw[r * per_row:(r + 1) * per_row], with_sum) for r in range(ROWS_X)]
    cases = []
    for ty, act_name in ((T.Q4_0, "q8_0"), (T.Q4_1, "q8_1"), (T.Q8_0, "q8_0")):
        packed = quantize(w, ty)
        tname = ty.name.lower()
        packed.tofile(os.path.join(OUT, f"w_{tname}.bin"))
        rows = [packed[r].tobytes() for r in range(ROWS_W)]
        out = np.array([[dot(ty, rows[c], acts[act_name][r]) for c in range(ROWS_W)] for r in range(ROWS_X)], dtype=F)
        out.astype("<f4").tofile(os.path.join(OUT, f"dot_{tname}.f32.bin"))
        cases.append({"type": tname, "weights": f"w_{tname}.bin", "activations": f"act_{act_name}.bin",
                      "dots": f"dot_{tname}.f32.bin"})
    manifest = {
        "rows_w": ROWS_W, "rows_x": ROWS_X, "cols": COLS, "seed": SEED, "cases": cases,
        "generator": "scripts/dev/make_int8_dot_goldens.py",
        "versions": {"numpy": np.__version__, "gguf": getattr(gguf, "__version__", "0.19.0")},
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
