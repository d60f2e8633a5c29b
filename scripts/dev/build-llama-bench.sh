#!/usr/bin/env bash
# Builds llama.cpp's llama-bench (CPU only) for scripts/bench-runtime.sh, from the llama.cpp that
# the llama-cpp-python sdist on PyPI vendors (pinned below). Dev tool: nothing in the tests uses it.
#
#     scripts/dev/build-llama-bench.sh        # tree in $LCPP_DIR (default /tmp/eval-lcpp)
#     LLAMA_BENCH=$LCPP_DIR/llama_cpp_python-0.3.36/vendor/llama.cpp/build/bin/llama-bench \
#         scripts/bench-runtime.sh
#
# Needs cmake, ninja (pip install cmake ninja works) and a C++ compiler. GGML_NATIVE=OFF on
# purpose: with GGML_NATIVE=ON this llama.cpp picks its AMX path on this kind of machine and
# segfaults. Takes ~15 minutes on one core (-j 1 by default: the machine is shared; JOBS=2 for two).
set -euo pipefail

VERSION=0.3.36
LCPP_DIR=${LCPP_DIR:-/tmp/eval-lcpp}
SDIST=$LCPP_DIR/llama_cpp_python-$VERSION.tar.gz
SRC=$LCPP_DIR/llama_cpp_python-$VERSION/vendor/llama.cpp

mkdir -p "$LCPP_DIR"
if [ ! -f "$SRC/CMakeLists.txt" ]; then
    if [ ! -f "$SDIST" ]; then
        # The tarball is all we need; pip then tries to build the backend to read metadata (slow):
        # if interrupted, the .tar.gz is left in /tmp/pip-unpack-*/.
        pip download --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$LCPP_DIR"
    fi
    tar xzf "$SDIST" -C "$LCPP_DIR" "llama_cpp_python-$VERSION/vendor/llama.cpp"
fi
cd "$SRC"
if [ ! -f build/build.ninja ]; then
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF -DGGML_OPENMP=OFF \
        -DBUILD_SHARED_LIBS=OFF
fi
nice -n 10 cmake --build build --target llama-bench -j "${JOBS:-1}"
echo "built $SRC/build/bin/llama-bench"
