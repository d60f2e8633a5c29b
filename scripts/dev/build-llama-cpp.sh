#!/usr/bin/env bash
# Builds llama.cpp's CPU tools (llama-quantize, llama-perplexity, llama-imatrix, llama-bench) from the
# llama.cpp that the llama-cpp-python sdist on PyPI vendors (pinned below). Dev tool: nothing in
# npm test uses it; scripts/dev/make_preset_goldens.sh, scripts/bench-runtime.sh and the perplexity
# comparison in BENCHMARKS.md do.
#
#     scripts/dev/build-llama-cpp.sh              # all four tools, tree in $LCPP_DIR
#     scripts/dev/build-llama-cpp.sh llama-bench  # just the named targets
#     ls $LCPP_DIR/llama_cpp_python-0.3.36/vendor/llama.cpp/build/bin/
#
# LCPP_DIR defaults to /work/shared/lcpp (shared between worktrees so it is built once).
# Needs cmake, ninja (pip install cmake ninja works) and a C++ compiler. GGML_NATIVE=OFF on
# purpose: with GGML_NATIVE=ON this llama.cpp picks its AMX path on this kind of machine and
# segfaults. Takes a long while on one core (-j 1 by default: the machine is shared; JOBS=2 for two).
set -euo pipefail

VERSION=0.3.36
LCPP_DIR=${LCPP_DIR:-/work/shared/lcpp}
SDIST=$LCPP_DIR/llama_cpp_python-$VERSION.tar.gz
SRC=$LCPP_DIR/llama_cpp_python-$VERSION/vendor/llama.cpp
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(llama-quantize llama-perplexity llama-imatrix llama-bench)
fi

mkdir -p "$LCPP_DIR"
if [ ! -f "$SRC/CMakeLists.txt" ]; then
    if [ ! -f "$SDIST" ]; then
        # The tarball is all we need; pip then tries to build the backend to read metadata (slow):
        # if interrupted, the .tar.gz is left in /tmp/pip-unpack-*/.
        pip download --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$LCPP_DIR" ||
            cp "$(ls -S /tmp/pip-unpack-*/"llama_cpp_python-$VERSION.tar.gz" | head -n 1)" "$SDIST"
    fi
    tar xzf "$SDIST" -C "$LCPP_DIR" "llama_cpp_python-$VERSION/vendor/llama.cpp"
fi
cd "$SRC"
if [ ! -f build/build.ninja ]; then
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF -DGGML_OPENMP=OFF \
        -DBUILD_SHARED_LIBS=OFF
fi
nice -n 10 cmake --build build --target "${TARGETS[@]}" -j "${JOBS:-1}"
for t in "${TARGETS[@]}"; do echo "built $SRC/build/bin/$t"; done
