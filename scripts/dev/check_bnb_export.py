#!/usr/bin/env python3
"""Loads quantlab's bitsandbytes 4-bit safetensors export with the real bitsandbytes and checks it.

For every golden case (tests/fixtures/bnb), the Rust test `bnb::write_export_for_bitsandbytes_check`
writes the entries quantlab's `safetensors_entries` makes (packed weight, absmax, quant_map,
nested_absmax, nested_quant_map, quant_state JSON), the input, and quantlab's dequantization.
This script then, with bitsandbytes:
  1. rebuilds the QuantState with `QuantState.from_dict` (the call transformers makes when it
     loads a bnb 4-bit checkpoint) and dequantizes with `dequantize_4bit`: must equal quantlab's
     dequantization (values; the sign of zero is not compared, see reference.rs);
  2. quantizes the same input with `quantize_4bit` and compares every stored tensor and the
     quant-state JSON byte for byte with quantlab's.

Setup: the venv of make_bnb_goldens.py. Run from the repository root:
    /tmp/bnb-venv/bin/python scripts/dev/check_bnb_export.py
(it runs cargo itself; CARGO_TARGET_DIR is respected). Exit code 0 = all identical.
"""

import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import bitsandbytes
import bitsandbytes.functional as F
from safetensors.torch import load_file


def main():
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "quantlab_bnb.safetensors")
        env = dict(os.environ, QUANTLAB_BNB_EXPORT=path)
        subprocess.run(
            ["cargo", "test", "-p", "quantlab", "--no-default-features", "--test", "integration",
             "bnb::write_export_for_bitsandbytes_check", "--", "--exact"],
            cwd=root, env=env, check=True,
        )
        sd = load_file(path)
    torch.set_num_threads(1)
    names = sorted({k.split(".")[0] for k in sd})
    failures = 0
    for name in names:
        qs_dict = {k[len(name) + 1:]: v for k, v in sd.items() if k.startswith(name + ".")}
        qs_dict = {k: v for k, v in qs_dict.items() if k not in ("input", "rust_dequant")}
        state = F.QuantState.from_dict(qs_dict, device=torch.device("cpu"))
        weight = sd[name]
        ours = sd[name + ".rust_dequant"].numpy()
        deq = F.dequantize_4bit(weight, state).reshape(-1).numpy()
        ok_deq = deq.shape == ours.shape and np.array_equal(deq, ours)
        # bitsandbytes quantizing the same input, in the same shape
        x = sd[name + ".input"].reshape(state.shape)
        q, st = F.quantize_4bit(x, blocksize=state.blocksize, quant_type=state.quant_type,
                                compress_statistics=state.nested)
        theirs = {name: q, **{f"{name}.{k}": v for k, v in st.as_dict(packed=True).items()}}
        diffs = []
        for k, v in theirs.items():
            mine = sd.get(k)
            if mine is None:
                diffs.append(f"missing {k}")
            elif mine.dtype != v.dtype or tuple(mine.shape) != tuple(v.shape):
                diffs.append(f"{k}: {mine.dtype}{tuple(mine.shape)} vs {v.dtype}{tuple(v.shape)}")
            elif not torch.equal(mine.view(torch.uint8) if mine.dtype != torch.uint8 else mine,
                                 v.view(torch.uint8) if v.dtype != torch.uint8 else v):
                diffs.append(f"{k}: bytes differ")
        extra = [k for k in sd if k.startswith(name + ".") and k not in theirs
                 and not k.endswith((".input", ".rust_dequant"))]
        diffs += [f"extra {k}" for k in extra]
        status = "OK " if ok_deq and not diffs else "BAD"
        failures += status == "BAD"
        print(f"{status} {name:14s} shape={tuple(state.shape)} from_dict+dequantize_4bit equal: {ok_deq}; "
              f"entries vs bnb quantize_4bit: {'identical' if not diffs else diffs}")
    print(f"bitsandbytes {bitsandbytes.__version__}, torch {torch.__version__}: "
          f"{len(names) - failures} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
