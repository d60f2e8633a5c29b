#!/usr/bin/env python3
"""Golden files for quantlab's GPTQ / AWQ safetensors layouts (tests/rust/gptq_layout.rs).

Dev tool only: the tests read the committed files in tests/fixtures/gptq_layout/ and never run
this. Independent numpy ports, written from the published sources (read, not copied):

- AutoGPTQ's `QuantLinear.pack` (qlinear_cuda_old / qlinear_exllama, the "gptq" v1 checkpoint
  format): the integer weight recomputed from the fake-quantized weight as
  round((W + zeros·scales) / scales[g_idx]), transposed to [in, out] and packed 32/bits codes
  per int32 along the input dimension; zeros stored minus one, packed along the output
  dimension; scales f16 [groups, out]; g_idx int32 [in].
- AutoAWQ's `WQLinear_GEMM.from_linear`: the same integer weight, kept [in, out] and packed 8
  codes per int32 along the output dimension in the order [0, 2, 4, 6, 1, 3, 5, 7]; zeros packed
  the same way, not minus one.
- The readers as transformers loads those files (AutoGPTQ's torch fallback, AutoAWQ's
  `unpack_awq` + `reverse_awq_order` + dequantize): fields masked to `bits`, GPTQ zeros plus one,
  w = scales[g] · (q − z). Computed in float32 here (the CUDA/torch paths compute in float16;
  the stored numbers are the same).

The weights are quantized by this script's own round-to-nearest (minmax, groups of 32 along
each row), following the conventions of crate/src/formats/int.rs: symmetric codes q + 2^(b−1)
with q in [−qmax, qmax] (the zero point is then 2^(b−1)), asymmetric with the range widened to
include 0, f16-rounded scales, round half to even.

One act-order case (`gptq-int4-asym-g32-act-order`): the groups are formed in a fixed random
processing order of the columns without static groups, as AutoGPTQ's fasterquant does with
desc_act, so g_idx[c] is the group of column c's place in that order (non-trivial).

    pip install numpy
    python3 scripts/dev/make_gptq_layout_goldens.py

Files (little-endian): w_a.f32.bin [64, 128] and w_b.f32.bin [128, 64] (out × in, row-major);
per case <name>.qweight.i32.bin, .qzeros.i32.bin, .scales.f16.bin, .g_idx.i32.bin (GPTQ),
.deq.f32.bin (the reader's weight, [out, in]); the act-order case also .codes.u8.bin [out, in],
.scales.f32.bin and .zeros.u8.bin [out, groups]. manifest.json lists them.
"""

import json
import os

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "gptq_layout")
SEED = 20260
F32 = np.float32
GROUP = 32
AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]
AWQ_REVERSE_ORDER = [0, 4, 1, 5, 2, 6, 3, 7]


def f16_scale(s):
    return np.asarray(s, dtype=F32).astype(np.float16).astype(F32)


def rtn_params(block, bits, sym):
    """Per-row (scale, zero) of `block` ([rows, group]), as f32 scales and integer zeros."""
    if sym:
        qmax = F32(2 ** (bits - 1) - 1)
        c = np.max(np.abs(block), axis=1).astype(F32)
        s = f16_scale(c / qmax)
        z = np.full(block.shape[0], 2 ** (bits - 1), dtype=np.int64)
        return s, z
    qmax = F32(2**bits - 1)
    lo = np.minimum(block.min(axis=1), F32(0)).astype(F32)
    hi = np.maximum(block.max(axis=1), F32(0)).astype(F32)
    s = f16_scale((hi - lo) / qmax)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(s == 0, 0, np.clip(np.rint(-lo / s), 0, qmax)).astype(np.int64)
    return s, z


def rtn_codes(block, s, z, bits, sym):
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.rint(block / s[:, None])
    if sym:
        qmax = 2 ** (bits - 1) - 1
        q = np.where(s[:, None] == 0, 0, np.clip(r, -qmax, qmax)) + 2 ** (bits - 1)
    else:
        q = np.where(s[:, None] == 0, z[:, None], np.clip(r + z[:, None], 0, 2**bits - 1))
    return q.astype(np.int64)


def quantize(w, bits, sym, order=None):
    """RTN of w [out, in] in groups of GROUP columns taken in `order` (natural by default).
    Returns codes [out, in], scales [out, groups] f32, zeros [out, groups], g_idx [in]."""
    rows, cols = w.shape
    order = np.arange(cols) if order is None else order
    ng = cols // GROUP
    codes = np.zeros((rows, cols), dtype=np.int64)
    scales = np.zeros((rows, ng), dtype=F32)
    zeros = np.zeros((rows, ng), dtype=np.int64)
    g_idx = np.zeros(cols, dtype=np.int64)
    for g in range(ng):
        idx = order[g * GROUP : (g + 1) * GROUP]
        s, z = rtn_params(w[:, idx], bits, sym)
        codes[:, idx] = rtn_codes(w[:, idx], s, z, bits, sym)
        scales[:, g], zeros[:, g], g_idx[idx] = s, z, g
    return codes, scales, zeros, g_idx


def fake_quant(codes, scales, zeros, g_idx):
    """The fake-quantized weight the packers receive as linear.weight: s·(q − z), f32."""
    return (scales[:, g_idx] * (codes - zeros[:, g_idx]).astype(F32)).astype(F32)


def intweight(w_hat, scales, zeros, g_idx):
    """The packers' integer weight, [in, out]: round((W + z·s) / s16) per input column."""
    s_t = scales.T.astype(F32)  # [groups, out]
    scale_zeros = (zeros.T.astype(F32) * s_t).astype(F32)
    s16 = s_t.astype(np.float16).astype(F32)
    q = np.rint((w_hat.T + scale_zeros[g_idx]) / s16[g_idx])
    return q.astype(np.int64)


def pack_gptq(w_hat, scales, zeros, g_idx, bits):
    iw = intweight(w_hat, scales, zeros, g_idx).astype(np.uint32)  # [in, out]
    per = 32 // bits
    cin, out = iw.shape
    qweight = np.zeros((cin // per, out), dtype=np.uint32)
    for row in range(cin // per):
        for j in range(per):
            qweight[row] |= iw[row * per + j] << np.uint32(bits * j)
    zm1 = zeros.T - 1  # [groups, out], the v1 convention
    assert zm1.min() >= 0, "zero point 0 cannot be stored in the GPTQ v1 layout"
    zm1 = zm1.astype(np.uint32)
    qzeros = np.zeros((zm1.shape[0], out // per), dtype=np.uint32)
    for col in range(out // per):
        for j in range(per):
            qzeros[:, col] |= zm1[:, col * per + j] << np.uint32(bits * j)
    return qweight.astype(np.int32), qzeros.astype(np.int32), scales.T.astype(np.float16), g_idx.astype(np.int32)


def pack_awq(w_hat, scales, zeros, bits):
    assert bits == 4
    cols = w_hat.shape[1]
    g_idx = np.arange(cols) // GROUP
    iw = intweight(w_hat, scales, zeros, g_idx).astype(np.uint32)  # [in, out]
    cin, out = iw.shape
    qweight = np.zeros((cin, out // 8), dtype=np.uint32)
    for col in range(out // 8):
        for i in range(8):
            qweight[:, col] |= iw[:, col * 8 + AWQ_ORDER[i]] << np.uint32(i * 4)
    z = zeros.T.astype(np.uint32)  # [groups, out]
    qzeros = np.zeros((z.shape[0], out // 8), dtype=np.uint32)
    for col in range(out // 8):
        for i in range(8):
            qzeros[:, col] |= z[:, col * 8 + AWQ_ORDER[i]] << np.uint32(i * 4)
    return qweight.astype(np.int32), qzeros.astype(np.int32), scales.T.astype(np.float16)


def read_gptq(qweight, qzeros, scales16, g_idx, bits):
    """[out, in] weight as the GPTQ readers unpack it."""
    per, mask = 32 // bits, (1 << bits) - 1
    shifts = np.arange(0, 32, bits, dtype=np.uint32)
    qw = qweight.view(np.uint32)
    w = ((qw[:, None, :] >> shifts[None, :, None]) & mask).reshape(-1, qw.shape[1])  # [in, out]
    qz = qzeros.view(np.uint32)
    z = ((qz[:, :, None] >> shifts[None, None, :]) & mask).reshape(qz.shape[0], -1) + 1  # [groups, out]
    s = scales16.astype(F32)
    g = g_idx.astype(np.int64)
    deq = s[g] * (w.astype(F32) - z[g].astype(F32))
    assert w.shape[0] == per * qw.shape[0]
    return deq.T.astype(F32).copy()


def read_awq(qweight, qzeros, scales16, bits):
    shifts = np.arange(0, 32, bits, dtype=np.uint32)
    rev = np.arange(qweight.shape[1] * 8).reshape(-1, 8)[:, AWQ_REVERSE_ORDER].reshape(-1)
    qw = qweight.view(np.uint32)
    iw = ((qw[:, :, None] >> shifts[None, None, :]) & 0xF).reshape(qw.shape[0], -1)[:, rev]
    qz = qzeros.view(np.uint32)
    iz = ((qz[:, :, None] >> shifts[None, None, :]) & 0xF).reshape(qz.shape[0], -1)[:, rev]
    s = scales16.astype(F32)
    deq = (iw.astype(F32) - np.repeat(iz, GROUP, axis=0).astype(F32)) * np.repeat(s, GROUP, axis=0)
    return deq.T.astype(F32).copy()


def write(name, arr):
    path = os.path.join(OUT, name)
    np.ascontiguousarray(arr).tofile(path)
    return name


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(SEED)
    mats = {
        "w_a": (rng.standard_normal((64, 128)) * 0.05).astype(F32),
        "w_b": (rng.standard_normal((128, 64)) * 0.02).astype(F32),
    }
    # A few outliers so that groups differ in range.
    mats["w_a"][3, 17] = F32(0.4)
    mats["w_b"][70, 5] = F32(-0.3)
    for k, w in mats.items():
        write(f"{k}.f32.bin", w)
    cases = [
        ("gptq-int4-asym-g32", "gptq", 4, False, "w_a"),
        ("gptq-int4-sym-g32", "gptq", 4, True, "w_b"),
        ("gptq-int2-asym-g32", "gptq", 2, False, "w_b"),
        ("gptq-int8-sym-g32", "gptq", 8, True, "w_a"),
        ("awq-int4-asym-g32", "awq", 4, False, "w_a"),
        ("awq-int4-sym-g32", "awq", 4, True, "w_b"),
        ("gptq-int4-asym-g32-act-order", "gptq", 4, False, "w_a"),
    ]
    manifest = {"group_size": GROUP, "matrices": {k: list(w.shape) for k, w in mats.items()}, "cases": []}
    for name, layout, bits, sym, mat in cases:
        w = mats[mat]
        order = rng.permutation(w.shape[1]) if name.endswith("act-order") else None
        codes, scales, zeros, g_idx = quantize(w, bits, sym, order)
        w_hat = fake_quant(codes, scales, zeros, g_idx)
        entry = {"name": name, "layout": layout, "bits": bits, "sym": sym, "matrix": mat, "files": {}}
        files = entry["files"]
        if layout == "gptq":
            qw, qz, s16, gi = pack_gptq(w_hat, scales, zeros, g_idx, bits)
            files["g_idx"] = write(f"{name}.g_idx.i32.bin", gi)
            deq = read_gptq(qw, qz, s16, gi, bits)
        else:
            qw, qz, s16 = pack_awq(w_hat, scales, zeros, bits)
            deq = read_awq(qw, qz, s16, bits)
        # The reader gives back exactly the fake-quantized weight the packer was handed.
        assert np.array_equal(deq, w_hat), name
        files["qweight"] = write(f"{name}.qweight.i32.bin", qw)
        files["qzeros"] = write(f"{name}.qzeros.i32.bin", qz)
        files["scales"] = write(f"{name}.scales.f16.bin", s16)
        files["deq"] = write(f"{name}.deq.f32.bin", deq)
        if order is not None:
            files["codes"] = write(f"{name}.codes.u8.bin", codes.astype(np.uint8))
            files["scales_f32"] = write(f"{name}.scales.f32.bin", scales)
            files["zeros"] = write(f"{name}.zeros.u8.bin", zeros.astype(np.uint8))
            assert len(set(g_idx[: GROUP].tolist())) > 1, "act-order g_idx should be non-trivial"
        manifest["cases"].append(entry)
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
