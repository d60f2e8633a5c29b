#!/usr/bin/env python3
"""Reads an imatrix GGUF with gguf-py (llama.cpp's own Python reader) and checks the layout
llama-imatrix writes: general.type = imatrix, imatrix.datasets / chunk_count / chunk_size, and per
weight tensor an F32 `<name>.in_sum2` of shape [n_cols, 1] and `<name>.counts` of shape [1, 1].

Dev tool only:  python3 scripts/dev/check_imatrix_gguf.py imatrix.gguf
"""
import sys

import gguf
import numpy as np


def field(r, key):
    f = r.fields[key]
    return f.contents()


def main(path):
    r = gguf.GGUFReader(path)
    assert field(r, "general.type") == "imatrix", field(r, "general.type")
    datasets = field(r, "imatrix.datasets")
    chunks, chunk = field(r, "imatrix.chunk_count"), field(r, "imatrix.chunk_size")
    tensors = {t.name: t for t in r.tensors}
    names = sorted(n[: -len(".in_sum2")] for n in tensors if n.endswith(".in_sum2"))
    assert len(names) * 2 == len(tensors), "every in_sum2 has its counts and nothing else is stored"
    for n in names:
        s, c = tensors[n + ".in_sum2"], tensors[n + ".counts"]
        assert s.tensor_type == gguf.GGMLQuantizationType.F32 and c.tensor_type == gguf.GGMLQuantizationType.F32
        assert list(s.shape)[1:] == [1] and list(c.shape) == [1, 1], (n, s.shape, c.shape)
        assert np.all(np.asarray(s.data) >= 0) and float(np.asarray(c.data).ravel()[0]) == chunks * chunk
    print(f"ok: {len(names)} tensors, {chunks} chunks of {chunk}, datasets {datasets}")


if __name__ == "__main__":
    main(sys.argv[1])
