#!/usr/bin/env bash
# Regenerates tests/fixtures/ggml/kq_* (kq.in.f32.bin, kq_<TYPE>.packed.bin, kq_manifest.json)
# with llama.cpp's own C reference quantizers (ggml-quants.c), for tests/rust/kquants.rs, and
# tests/fixtures/ggml/kqi* (kqi.qw.f32.bin, kqi_<TYPE>.packed.bin): the same input quantized with
# an importance vector by quantize_<type> (llama-quantize's imatrix path), for
# tests/rust/imatrix_quants.rs.
# Dev tool only: the tests read the committed fixtures and never run this.
#
# Usage, from the repository root:
#
#     scripts/dev/make_kquant_goldens.sh            # sources in $KQ_DIR (default /tmp/kq)
#
# 1. Sources: llama.cpp as vendored by the llama-cpp-python sdist on PyPI (pinned below).
#        pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d /tmp/kq
#    pip saves the .tar.gz first, then builds its build backend from source to read the
#    metadata, which is slow; the tarball is all we need (if pip is interrupted, it is left in
#    /tmp/pip-unpack-*/). Only vendor/llama.cpp/ggml is extracted.
# 2. Build: only ggml-quants.c plus the harness (scripts/dev/kquant_goldens.c, which stubs the
#    four ggml.c symbols ggml-quants.c links against). No -march flags, -ffp-contract=off and
#    -DNDEBUG: plain SSE2 f32 arithmetic without fused multiply-adds, which is what ggml-base
#    (where ggml-quants.c lives) is compiled to in a default x86-64 llama.cpp build.
# 3. Run: writes the fixtures. Inputs depend only on the fixed seed in the harness.
set -euo pipefail

VERSION=0.3.36
KQ_DIR=${KQ_DIR:-/tmp/kq}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$ROOT/tests/fixtures/ggml}
SDIST=$KQ_DIR/llama_cpp_python-$VERSION.tar.gz
GGML=$KQ_DIR/llama_cpp_python-$VERSION/vendor/llama.cpp/ggml

mkdir -p "$KQ_DIR"
if [ ! -f "$SDIST" ]; then
    pip download --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$KQ_DIR"
fi
if [ ! -f "$GGML/src/ggml-quants.c" ]; then
    tar xzf "$SDIST" -C "$KQ_DIR" "llama_cpp_python-$VERSION/vendor/llama.cpp/ggml"
fi

BIN=$KQ_DIR/kquant_goldens
nice gcc -std=gnu11 -O2 -ffp-contract=off -DNDEBUG -DLLAMA_CPP_VERSION="\"llama-cpp-python $VERSION\"" \
    -I"$GGML/include" -I"$GGML/src" -I"$GGML/src/ggml-cpu" \
    "$GGML/src/ggml-quants.c" "$ROOT/scripts/dev/kquant_goldens.c" -o "$BIN" -lm

"$BIN" goldens "$OUT"
"$BIN" imatrix "$OUT"
ls -l "$OUT"/kq*
