#!/usr/bin/env python3
"""Golden files for quantlab's FP8 tests (tests/rust/int_fp8.rs).

Dev tool only: the tests read the committed files in tests/fixtures/fp8/ and never run this.
The independent reference is ml_dtypes (float8_e4m3fn, float8_e5m2 numpy dtypes):

    pip install ml_dtypes numpy
    python3 scripts/dev/make_fp8_goldens.py

Files (little-endian):
  decode_e4m3.f32.bin / decode_e5m2.f32.bin  256 f32: code c (0..255) decoded by ml_dtypes
  inputs.f32.bin                              N f32 inputs (ties, +-0, subnormals, overflow, ...)
  e4m3.u8.bin                                 N codes: inputs clipped to [-448, 448] (saturating
                                              conversion; ml_dtypes itself maps overflow to NaN),
                                              then cast by ml_dtypes (RNE). inf/NaN -> NaN.
  e5m2.u8.bin                                 N codes: ml_dtypes cast as is (RNE, overflow -> inf)
  manifest.json                               counts and versions
Output depends only on the seed and library versions.
"""

import json
import os

import ml_dtypes
import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "fp8")
SEED = 8


def finite_positive(dtype):
    vals = np.arange(256, dtype=np.uint8).view(dtype).astype(np.float32)
    vals = vals[np.isfinite(vals) & (vals > 0)]
    return np.unique(vals)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(SEED)
    codes = np.arange(256, dtype=np.uint8)
    for name, dt in (("e4m3", ml_dtypes.float8_e4m3fn), ("e5m2", ml_dtypes.float8_e5m2)):
        codes.view(dt).astype(np.float32).tofile(os.path.join(OUT, f"decode_{name}.f32.bin"))

    inputs = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1.17e-38, 1e30, -1e30, 3.4e38]
    for dt, mx in ((ml_dtypes.float8_e4m3fn, 448.0), (ml_dtypes.float8_e5m2, 57344.0)):
        v = finite_positive(dt)
        # Every value, every midpoint between neighbours (ties) and the f32 just either side.
        ext = np.concatenate([[0.0], v, [mx * 2]]).astype(np.float32)
        mids = ((ext[:-1].astype(np.float64) + ext[1:]) / 2).astype(np.float32)
        for m in mids:
            inputs += [m, np.nextafter(m, np.float32(np.inf)), np.nextafter(m, np.float32(0))]
        inputs += list(v)
        # Around the top: the overflow tie (464 / 61440) and beyond.
        inputs += [mx, mx * 1.0625, mx * 1.07, mx * 1.125, mx * 1.2, mx * 4]
    # Log-uniform random magnitudes over the whole interesting range.
    mags = np.exp(rng.uniform(np.log(1e-9), np.log(1e6), 1200))
    inputs += list(mags)
    inputs += list(rng.standard_normal(300) * 3)
    x = np.array(inputs, dtype=np.float32)
    x = np.concatenate([x, -x])
    x.tofile(os.path.join(OUT, "inputs.f32.bin"))

    clipped = np.where(np.isfinite(x), np.clip(x, -448.0, 448.0), x).astype(np.float32)
    e4 = clipped.astype(ml_dtypes.float8_e4m3fn).view(np.uint8)
    e5 = x.astype(ml_dtypes.float8_e5m2).view(np.uint8)
    e4.tofile(os.path.join(OUT, "e4m3.u8.bin"))
    e5.tofile(os.path.join(OUT, "e5m2.u8.bin"))
    manifest = {
        "n_inputs": int(x.size),
        "ml_dtypes": ml_dtypes.__version__,
        "numpy": np.__version__,
        "seed": SEED,
        "notes": "e4m3: saturating (finite inputs clipped to +-448 before the ml_dtypes cast); "
        "e5m2: ml_dtypes cast as is (overflow -> inf). NaN codes may differ in sign only.",
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"wrote {x.size} inputs to {OUT}")


if __name__ == "__main__":
    main()
