#!/usr/bin/env python3
"""Independent check of a GGUF file written by `quantlab quantize`, using gguf-py (pip `gguf`).

    python3 scripts/dev/gguf_check.py OUT.gguf [--source IN.gguf]

Checks, with gguf-py's reader (not ours):
  1. the file parses;
  2. llama.cpp's layout rules (ggml/src/gguf.cpp): the data section starts at a multiple of the
     alignment; each tensor's offset is the previous offset plus the previous size padded to the
     alignment; the file ends at the padded end of the last tensor; general.alignment (if
     present), general.file_type and general.quantization_version are u32;
  3. with --source: the same metadata keys in the same order with equal values (except
     general.file_type / general.quantization_version), the same tensor names and shapes in
     the same order, and for every tensor either identical bytes (same type) or bytes equal to
     gguf-py's own quantizer applied to the source's dequantized values (types gguf-py can
     quantize); other types are compared by dequantized error only.
Exit code 0 when every check passes. Not part of the Rust test suite (which must not need Python).
"""
import argparse
import os
import sys

import numpy as np
import gguf
from gguf import GGUFReader, GGMLQuantizationType as T
from gguf import quants

FLOAT_TYPES = {T.F32: np.float32, T.F16: np.float16}


def pad(x, n):
    return (x + n - 1) // n * n


def field_value(f):
    if hasattr(f, "contents"):
        return f.contents()
    return [p.tolist() for p in f.parts]


def field_type(f):
    return [int(t) for t in f.types]


def as_f32(t):
    """Dequantized values of a gguf-py ReaderTensor, flat float32."""
    data = np.asarray(t.data)
    qt = T(int(t.tensor_type))
    if qt == T.F32:
        return data.astype(np.float32).reshape(-1)
    if qt == T.F16:
        return data.view(np.float16).astype(np.float32).reshape(-1)
    return quants.dequantize(data.view(np.uint8), qt).astype(np.float32).reshape(-1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--source")
    a = ap.parse_args()
    problems = []

    r = GGUFReader(a.out)
    size = os.path.getsize(a.out)
    align = r.alignment
    print(f"gguf-py {getattr(gguf, '__version__', '?')} read {a.out}: {len(r.fields)} fields, "
          f"{len(r.tensors)} tensors, alignment {align}, data at {r.data_offset}")

    if r.data_offset % align:
        problems.append(f"data section at {r.data_offset} is not a multiple of {align}")
    expected = 0
    for t in r.tensors:
        rel = t.data_offset - r.data_offset
        if rel != expected:
            problems.append(f"tensor {t.name}: offset {rel}, llama.cpp expects {expected}")
        expected = rel + pad(int(t.n_bytes), align)
    if r.data_offset + expected != size:
        problems.append(f"file is {size} bytes, llama.cpp's data size gives {r.data_offset + expected}")

    u32 = int(gguf.GGUFValueType.UINT32)
    for key in ("general.alignment", "general.file_type", "general.quantization_version"):
        f = r.fields.get(key)
        if f is None:
            if key != "general.alignment":
                problems.append(f"{key} missing")
            continue
        if field_type(f) != [u32]:
            problems.append(f"{key} has type ids {field_type(f)}, llama.cpp expects u32 ({u32})")
    qv = r.fields.get("general.quantization_version")
    if qv is not None and field_value(qv) != 2:
        problems.append(f"general.quantization_version = {field_value(qv)}, expected 2")
    ft = r.fields.get("general.file_type")
    if ft is not None:
        print(f"general.file_type = {field_value(ft)}")

    if a.source:
        s = GGUFReader(a.source)
        skip = {"general.file_type", "general.quantization_version"}
        sk = [k for k in s.fields if k not in skip and not k.startswith("GGUF.")]
        ok = [k for k in r.fields if k not in skip and not k.startswith("GGUF.")]
        if sk != ok:
            problems.append(f"metadata keys differ: source {len(sk)}, output {len(ok)}")
        for k in sk:
            if k in r.fields:
                if field_type(s.fields[k]) != field_type(r.fields[k]):
                    problems.append(f"{k}: type {field_type(s.fields[k])} -> {field_type(r.fields[k])}")
                elif field_value(s.fields[k]) != field_value(r.fields[k]):
                    problems.append(f"{k}: value differs")
        print(f"metadata: {len(sk)} keys compared")
        if [t.name for t in s.tensors] != [t.name for t in r.tensors]:
            problems.append("tensor names or order differ")
        counts = {"copied": 0, "requantized-identical": 0, "requantized-differs": 0, "error-only": 0}
        worst = 0.0
        for st, ot in zip(s.tensors, r.tensors):
            if list(st.shape) != list(ot.shape):
                problems.append(f"{ot.name}: shape {list(st.shape)} -> {list(ot.shape)}")
                continue
            if st.tensor_type == ot.tensor_type:
                same = bytes(np.asarray(st.data).view(np.uint8).tobytes()) == bytes(
                    np.asarray(ot.data).view(np.uint8).tobytes())
                counts["copied"] += 1
                if not same:
                    problems.append(f"{ot.name}: same type but bytes differ")
                continue
            src = as_f32(st).reshape(-1, int(st.shape[0]))
            qt = T(int(ot.tensor_type))
            out_bytes = np.asarray(ot.data).view(np.uint8).reshape(-1)
            try:
                if qt == T.F16:
                    mine = src.astype(np.float16).view(np.uint8).reshape(-1)
                elif qt == T.F32:
                    mine = src.view(np.uint8).reshape(-1)
                else:
                    mine = quants.quantize(src, qt).reshape(-1)
                if np.array_equal(mine, out_bytes):
                    counts["requantized-identical"] += 1
                else:
                    counts["requantized-differs"] += 1
                    problems.append(f"{ot.name}: {qt.name} bytes differ from gguf-py's quantizer "
                                    f"({int((mine != out_bytes).sum())} of {out_bytes.size} bytes)")
            except (NotImplementedError, quants.QuantError):
                counts["error-only"] += 1
            err = np.abs(as_f32(ot) - src.reshape(-1))
            scale = float(np.abs(src).max()) or 1.0
            worst = max(worst, float(err.max()) / scale)
        print(f"tensors: {counts}; worst max|error|/max|x| = {worst:.4f}")

    for p in problems:
        print("FAIL:", p)
    print("OK" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
