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
# Needs curl, cmake, ninja (pip install cmake ninja works) and a C++ compiler. GGML_NATIVE=ON (this
# CPU's AVX2/FMA/F16C, as llama.cpp's own builds run) with AMX switched off: on this kind of machine
# its AMX path segfaults. Takes a long while on one core (-j 1 by default: the machine is shared; JOBS=2 for two).
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
        # The sdist straight from PyPI's simple index: `pip download --no-binary` would first build
        # the package's build backend (cmake from source) just to read its metadata.
        url=$(curl -fsSL https://pypi.org/simple/llama-cpp-python/ |
            grep -o "href=\"[^\"]*llama_cpp_python-$VERSION.tar.gz[^\"]*\"" | head -n 1 | sed 's/^href="//; s/[#"].*//')
        curl -fsSL -o "$SDIST" "$url"
    fi
    tar xzf "$SDIST" -C "$LCPP_DIR" "llama_cpp_python-$VERSION/vendor/llama.cpp"
fi
cd "$SRC"
if [ ! -f build/build.ninja ]; then
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
        "-DCMAKE_C_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" "-DCMAKE_CXX_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" -DGGML_OPENMP=OFF \
        -DBUILD_SHARED_LIBS=OFF
fi
nice -n 10 cmake --build build --target "${TARGETS[@]}" -j "${JOBS:-1}"
for t in "${TARGETS[@]}"; do echo "built $SRC/build/bin/$t"; done
