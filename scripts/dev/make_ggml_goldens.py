#!/usr/bin/env python3
"""Golden files for quantlab's GGML format tests (tests/rust/formats.rs).

Dev tool only: the tests read the committed files in tests/fixtures/ggml/ and never run this.

Rerun from the repository root:

    pip install 'gguf==0.19.0' numpy      # gguf-py, the independent reference
    python3 scripts/dev/make_ggml_goldens.py

It rewrites tests/fixtures/ggml/ (every *.bin file and manifest.json). Output depends only on
the fixed seed below and on the gguf-py / numpy versions (recorded in the manifest); rerunning
with the same versions gives identical files.

Two kinds of case:

* quant_<TYPE>: an f32 input row made of edge-case blocks (zeros, constants, 1e-8, f16
  subnormal scales, 1e5 / 7e4 / 1e7 values whose scales or minimums overflow f16, exact
  half-step ties, a normal block, a block with one outlier, degenerate scales...), quantized
  with gguf.quants.quantize (which replicates ggml's quantize_row_*_ref) and dequantized back
  with gguf.quants.dequantize. Files: <case>.in.f32, <case>.packed.bin, <case>.deq.f32.
* deq_<TYPE>: random packed blocks (random bytes with the f16 scale fields set to sane finite
  values, plus blocks with special scales: 0, -0, subnormal, inf, NaN, fully random) and
  gguf-py's dequantization. Files: <case>.packed.bin, <case>.deq.f32.

All binary files are little-endian. manifest.json lists every case with its type, value count,
file names and a label per block (per value group for F16/BF16).
"""

import json
import os
import sys

import numpy as np

import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

SEED = 20240611
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "ggml")

rng = np.random.default_rng(SEED)


def f32(x):
    return np.asarray(x, dtype=np.float32)


def edge_blocks():
    """(label, 32 f32 values) for the 32-value quantizers."""
    n = 32
    b = []
    b.append(("zeros", np.zeros(n)))
    b.append(("signed_zeros", np.array([0.0, -0.0] * (n // 2))))
    b.append(("const_pos_0.5", np.full(n, 0.5)))
    b.append(("const_neg_-3.25", np.full(n, -3.25)))
    b.append(("tiny_1e-8", 1e-8 * rng.standard_normal(n)))
    b.append(("f16_subnormal_scale_1e-5", 1e-5 * rng.standard_normal(n)))
    b.append(("huge_1e5", 1e5 * rng.standard_normal(n)))
    b.append(("huge_7e4_offset", 7e4 + 100 * rng.standard_normal(n)))
    b.append(("huge_neg_7e4_offset", -7e4 + 100 * rng.standard_normal(n)))
    b.append(("overflow_1e7", 1e7 * rng.standard_normal(n)))
    b.append(("normal", rng.standard_normal(n)))
    x = 0.01 * rng.standard_normal(n)
    x[7] = 50.0
    b.append(("outlier_50_at_7", x))
    x = 0.01 * rng.standard_normal(n)
    x[20] = -50.0
    b.append(("outlier_-50_at_20", x))
    b.append(("uniform_pm1", rng.uniform(-1, 1, n)))
    b.append(("ramp_pm1", np.linspace(-1, 1, n)))
    x = np.zeros(n)
    x[0], x[1] = -1e-39, 5e-40
    b.append(("degenerate_subnormal_max", x))
    x = np.zeros(n)
    x[0], x[1], x[2] = 3e38, -3e38, 1.0
    b.append(("degenerate_range_overflow", x))
    x = rng.standard_normal(n)
    x[3] = -x[np.argmax(np.abs(x))] if x[3] != 0 else x[3]
    b.append(("max_magnitude_tie_pm", x))
    # Half-step ties for each quantizer's grid (scale exactly 1 or -1).
    b.append(("ties_q4_0", -8.0 + 0.5 * np.arange(n)))  # max = -8 -> d = 1
    b.append(("ties_q4_0_neg", 8.0 - 0.5 * np.arange(n)))  # max = 8 -> d = -1
    b.append(("ties_q5_0", np.concatenate([[-16.0], -15.5 + np.arange(n - 1)])))
    x = np.concatenate([[0.0, 15.0], 0.5 + 0.5 * np.arange(n - 2)])
    b.append(("ties_q4_1", x))
    b.append(("ties_q5_1", np.concatenate([[0.0, 31.0], 0.5 + np.arange(n - 2)])))
    x = np.concatenate([[127.0], -126.5 + 8.0 * np.arange(n - 1)])
    b.append(("ties_q8_0", x))
    for s in (0.001, 0.1, 3.0, 250.0):
        b.append((f"normal_x{s}", s * rng.standard_normal(n)))
    for kind in ("q4_0", "q4_1", "q5_0", "q5_1", "q8_0"):
        b.append((f"op_order_sensitive_{kind}", op_order_sensitive_block(kind)))
    return [(label, f32(v)) for label, v in b]


# (symmetric?, levels, added constant) of each 32-value quantizer: q = trunc(v + add) with
# v = x * id (symmetric, d = max / -levels) or v = (x - min) * id (d = (max - min) / levels);
# Q8_0 (add None) uses roundf(x * id) with d = amax / 127.
QUANT_RULES = {"q4_0": (True, 8, 8.5), "q5_0": (True, 16, 16.5), "q4_1": (False, 15, 0.5),
               "q5_1": (False, 31, 0.5), "q8_0": (True, 127, None)}


def op_order_sensitive_block(kind):
    """Values a few ulps from a rounding boundary, chosen so that C's separate multiply and add
    (`x*id + 8.5f`) gives a different code than a fused multiply-add and than `x / d` (repeated
    to fill the block): the goldens then catch an implementation that fuses or divides."""
    sym, levels, add = QUANT_RULES[kind]
    for _ in range(2000):
        D = np.float32(10.0 ** rng.uniform(-2, 2))
        head = [np.float32(-levels * D if add is not None else levels * D)] if sym \
            else [np.float32(0.0), np.float32(levels * D)]
        if sym:
            d = head[0] / np.float32(-levels if add is not None else levels)
        else:
            d = (head[1] - head[0]) / np.float32(levels)
        d = np.float32(d)
        inv = np.float32(1.0) / d
        lo = -levels if sym else 0
        hs = np.arange(lo, levels) + 0.5
        base = (hs / np.float64(inv)).astype(np.float32)
        cand = np.concatenate([np.nextafter(base, np.float32(s * np.inf)) if s else base
                               for s in (-1, 0, 1)] +
                              [np.nextafter(np.nextafter(base, np.float32(s * np.inf)),
                                            np.float32(s * np.inf)) for s in (-1, 1)])
        cand = cand[np.abs(cand) <= np.abs(head[-1] if sym else head[1])]
        if not sym:
            cand = cand[cand >= 0]
        v_sep = cand * inv  # float32 multiply
        v_fma = (cand.astype(np.float64) * np.float64(inv))
        v_div = cand / d
        if add is None:
            def code(v): return np.floor(np.abs(v) + 0.5) * np.sign(v)
            c_sep, c_fma, c_div = code(v_sep), code(v_fma.astype(np.float32)), code(v_div)
        else:
            c_sep = np.trunc(v_sep + np.float32(add))
            c_fma = np.trunc((v_fma + add).astype(np.float32))
            c_div = np.trunc(v_div + np.float32(add))
        fma_hits, div_hits = cand[c_sep != c_fma], cand[c_sep != c_div]
        if (add is None or len(fma_hits)) and len(div_hits):
            hits = np.concatenate([fma_hits, div_hits])
            return f32(head + list(np.resize(hits, 32 - len(head))))
    raise RuntimeError(f"no op-order-sensitive values found for {kind}")


def f16_inputs():
    """Values exercising f32 -> f16 rounding (all finite)."""
    special = [0.0, -0.0, 1.0, -1.0, 65504.0, 65519.0, 65520.0, -65520.0, 1e5, 6.1035156e-05,
               5.9604645e-08, 2.9802322e-08, 2.9802326e-08, 1e-8, -1e-8, 3.4028235e38,
               1.0 + 2.0**-11, 1.0 + 3 * 2.0**-11, 1.0 + 2.0**-11 + 2.0**-30, 2.0**-24 * 1.5]
    rand = np.concatenate([rng.standard_normal(64), 1e-6 * rng.standard_normal(32),
                           1e4 * rng.standard_normal(32)])
    x = f32(np.concatenate([special, rand]))
    x = np.concatenate([x, np.zeros((-len(x)) % 32, np.float32)])
    return x, [("special", len(special)), ("random", len(x) - len(special))]


def bf16_inputs():
    bits = [0x3F808000, 0x3F818000, 0x3F808001, 0x3F807FFF, 0x7F7FFFFF, 0xFF7FFFFF, 0x00000001,
            0x80000001, 0x007FFFFF, 0x7F7F8000, 0x3F800000, 0x00000000, 0x80000000]
    special = np.array(bits, dtype=np.uint32).view(np.float32)
    raw = rng.integers(0, 2**32, 256, dtype=np.uint64).astype(np.uint32).view(np.float32)
    raw = raw[np.isfinite(raw)][:128]
    x = f32(np.concatenate([special, raw, rng.standard_normal(64)]))
    x = np.concatenate([x, np.zeros((-len(x)) % 32, np.float32)])
    return x, [("special", len(special)), ("random", len(x) - len(special))]


def f16_bits(v):
    return np.array([v], dtype=np.float16).view(np.uint16)[0]


# Byte offsets of the f16 scale fields of each type (d first, then dmin / m if any).
SCALE_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
    T.IQ4_NL: [0], T.IQ4_XS: [0], T.TQ1_0: [52], T.TQ2_0: [64], T.MXFP4: [],
}


def random_blocks(qtype, n_sane):
    """(label, packed bytes) blocks: n_sane with sane scales, then special-scale blocks."""
    _, type_size = gguf.GGML_QUANT_SIZES[qtype]
    fields = SCALE_FIELDS[qtype]
    out = []

    def block(label, scale_bits):
        raw = rng.integers(0, 256, type_size, dtype=np.uint16).astype(np.uint8)
        for off, bits in zip(fields, scale_bits):
            if bits is not None:
                raw[off:off + 2] = np.array([bits], dtype=np.uint16).view(np.uint8)
        out.append((label, raw))

    def sane():
        sign = rng.choice([-1.0, 1.0])
        return f16_bits(sign * 10.0 ** rng.uniform(-4, 1))

    for i in range(n_sane):
        block(f"random_sane_scales_{i}", [sane() for _ in fields])
    if qtype == T.MXFP4:
        for e in (0, 1, 2, 127, 200, 254, 255):
            block(f"e_{e}", [])
            out[-1][1][0] = e
        return out
    for label, bits in (("scale_zero", 0x0000), ("scale_neg_zero", 0x8000),
                        ("scale_subnormal", 0x0001), ("scale_max", 0x7BFF),
                        ("scale_inf", 0x7C00), ("scale_nan", 0x7E00)):
        block(label, [bits] + [sane() for _ in fields[1:]])
    if len(fields) > 1:
        block("min_inf", [sane(), 0xFC00])
        block("min_nan", [sane(), 0x7E01])
    block("fully_random", [None for _ in fields])
    return out


def write(name, arr):
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        f.write(np.ascontiguousarray(arr).tobytes())
    return name


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".bin") or f == "manifest.json":
            os.remove(os.path.join(OUT, f))
    cases = []
    np.seterr(all="ignore")

    blocks = edge_blocks()
    for qtype in (T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0):
        # Known gguf-py deviation from C: for the block minimum / maximum, numpy returns the
        # *last* of equal values, C's scan keeps the *first*; they differ only when +0 and -0
        # are both extremes, which changes the sign of Q4_1 / Q5_1's stored `m`. Those two types
        # skip the signed-zeros block (tests/rust/formats.rs checks C's rule by hand).
        keep = [(l, v) for l, v in blocks
                if not (l == "signed_zeros" and qtype in (T.Q4_1, T.Q5_1))]
        x = np.concatenate([v for _, v in keep])
        labels = [label for label, _ in keep]
        packed = quantize(x, qtype)
        deq = dequantize(packed, qtype).astype(np.float32)
        name = f"quant_{qtype.name}"
        cases.append({"name": name, "type": qtype.name, "n_values": int(x.size),
                      "input": write(f"{name}.in.f32.bin", x),
                      "packed": write(f"{name}.packed.bin", packed),
                      "dequantized": write(f"{name}.deq.f32.bin", deq),
                      "block_values": 32, "labels": labels})

    for qtype, (xs, groups) in ((T.F16, f16_inputs()), (T.BF16, bf16_inputs())):
        packed = quantize(xs, qtype).view(np.uint8)
        deq = dequantize(packed, qtype).astype(np.float32)
        name = f"quant_{qtype.name}"
        cases.append({"name": name, "type": qtype.name, "n_values": int(xs.size),
                      "input": write(f"{name}.in.f32.bin", xs),
                      "packed": write(f"{name}.packed.bin", packed),
                      "dequantized": write(f"{name}.deq.f32.bin", deq),
                      "block_values": 1, "labels": [f"{g}[{n}]" for g, n in groups]})

    # F16 / BF16 decode of random bit patterns plus every class of special value.
    for qtype in (T.F16, T.BF16):
        special = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x7BFF, 0x7C00, 0xFC00,
                   0x7E00, 0x7C01, 0xFE00, 0x7FFF, 0x3C00, 0xBC00, 0x3555]
        if qtype == T.BF16:
            special = [0x0000, 0x8000, 0x0001, 0x8001, 0x007F, 0x0080, 0x7F7F, 0x7F80, 0xFF80,
                       0x7FC0, 0x7F81, 0xFFC0, 0x7FFF, 0x3F80, 0xBF80, 0x3EAB]
        bits = np.concatenate([np.array(special, dtype=np.uint16),
                               rng.integers(0, 2**16, 1008, dtype=np.uint32).astype(np.uint16)])
        packed = bits.view(np.uint8)
        deq = dequantize(packed, qtype).astype(np.float32)
        name = f"deq_{qtype.name}"
        cases.append({"name": name, "type": qtype.name, "n_values": int(bits.size),
                      "input": None, "packed": write(f"{name}.packed.bin", packed),
                      "dequantized": write(f"{name}.deq.f32.bin", deq), "block_values": 1,
                      "labels": [f"special[{len(special)}]", f"random[{bits.size - len(special)}]"]})

    for qtype, n_sane in ((T.Q4_0, 6), (T.Q4_1, 6), (T.Q5_0, 6), (T.Q5_1, 6), (T.Q8_0, 6),
                          (T.Q2_K, 4), (T.Q3_K, 4), (T.Q4_K, 4), (T.Q5_K, 4), (T.Q6_K, 4),
                          (T.IQ4_NL, 6), (T.IQ4_XS, 4), (T.MXFP4, 6), (T.TQ1_0, 3),
                          (T.TQ2_0, 3)):
        blocks = random_blocks(qtype, n_sane)
        packed = np.concatenate([b for _, b in blocks])
        deq = dequantize(packed, qtype).astype(np.float32)
        block_values, _ = gguf.GGML_QUANT_SIZES[qtype]
        name = f"deq_{qtype.name}"
        cases.append({"name": name, "type": qtype.name, "n_values": int(deq.size),
                      "input": None, "packed": write(f"{name}.packed.bin", packed),
                      "dequantized": write(f"{name}.deq.f32.bin", deq),
                      "block_values": block_values, "labels": [label for label, _ in blocks]})

    manifest = {
        "generator": "scripts/dev/make_ggml_goldens.py",
        "reference": "gguf-py (gguf.quants.quantize / gguf.quants.dequantize)",
        "gguf_version": getattr(gguf, "__version__", None) or _pkg_version("gguf"),
        "numpy_version": np.__version__,
        "seed": SEED,
        "cases": cases,
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(cases)} cases, {total} bytes to {os.path.normpath(OUT)}", file=sys.stderr)


def _pkg_version(name):
    from importlib.metadata import version
    return version(name)


if __name__ == "__main__":
    main()
