#!/usr/bin/env bash
# Builds llama.cpp's llama-bench (CPU only) for scripts/bench-runtime.sh; see build-llama-cpp.sh,
# which does the work (pinned sdist, LCPP_DIR, JOBS).
#
#     scripts/dev/build-llama-bench.sh
#     LLAMA_BENCH=$LCPP_DIR/llama_cpp_python-0.3.36/vendor/llama.cpp/build/bin/llama-bench \
#         scripts/bench-runtime.sh
set -euo pipefail
exec "$(dirname "$0")/build-llama-cpp.sh" llama-bench
