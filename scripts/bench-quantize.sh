#!/usr/bin/env bash
# Single-thread quantize throughput of quantlab's formats::quantize_row next to llama.cpp's C
# reference (quantize_row_*_ref in ggml-quants.c) for the GGUF block types, on the same number
# of Gaussian f32 values (best of RUNS). Prints one markdown table.
#
#     scripts/bench-quantize.sh            # N=16777216 RUNS=3 by default
#
# The C side needs the llama.cpp sources that scripts/dev/make_kquant_goldens.sh fetches into
# $KQ_DIR (default /tmp/kq); without them only the quantlab column is filled. The C bench is
# built like ggml-base in a default llama.cpp Release build: -O3 -DNDEBUG, no -march flags.
set -euo pipefail

N=${N:-16777216}
RUNS=${RUNS:-3}
VERSION=0.3.36
KQ_DIR=${KQ_DIR:-/tmp/kq}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GGML=$KQ_DIR/llama_cpp_python-$VERSION/vendor/llama.cpp/ggml
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

(cd "$ROOT/crate" && nice cargo build -q --release --example bench_quantize --no-default-features &&
    cargo run -q --release --example bench_quantize --no-default-features -- --n "$N" --runs "$RUNS" --tsv) > "$TMP/rust.tsv"

# The wasm core the lab ships (web/src/pkg, built by scripts/build-wasm.sh), run in Node.
if [ -f "$ROOT/web/src/pkg/quantlab_bg.wasm" ]; then
    node "$ROOT/scripts/bench-quantize-wasm.mjs" "$N" "$RUNS" > "$TMP/wasm.tsv"
else
    : > "$TMP/wasm.tsv"
fi

if [ -f "$GGML/src/ggml-quants.c" ]; then
    nice gcc -std=gnu11 -O3 -DNDEBUG -DLLAMA_CPP_VERSION="\"llama-cpp-python $VERSION\"" \
        -I"$GGML/include" -I"$GGML/src" -I"$GGML/src/ggml-cpu" \
        "$GGML/src/ggml-quants.c" "$ROOT/scripts/dev/kquant_goldens.c" -o "$TMP/kquant_bench" -lm
    "$TMP/kquant_bench" bench "$N" "$RUNS" > "$TMP/c.tsv"
    C_NOTE="llama.cpp: ggml-quants.c from llama-cpp-python $VERSION, gcc -O3 -DNDEBUG"
else
    : > "$TMP/c.tsv"
    C_NOTE="llama.cpp column empty: sources not found in $KQ_DIR (run scripts/dev/make_kquant_goldens.sh)"
fi

echo "$N Gaussian f32 values, best of $RUNS runs, single thread (thread CPU time); MB/s of f32 input"
echo "$C_NOTE"
echo
echo "| type | quantlab native MB/s | quantlab wasm MB/s | llama.cpp ref MB/s | native / llama.cpp | native / wasm |"
echo "|------|---------------------:|-------------------:|-------------------:|-------------------:|--------------:|"
awk -F'\t' 'FILENAME == ARGV[1] { c[$1] = $2; next }
    FILENAME == ARGV[2] { w[$1] = $2; next }
    { r = ($1 in c) && c[$1] > 0 ? sprintf("%.2f", $2 / c[$1]) : "-";
      q = ($1 in w) && w[$1] > 0 ? sprintf("%.2f", $2 / w[$1]) : "-";
      printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, ($1 in w) ? w[$1] : "-", ($1 in c) ? c[$1] : "-", r, q }' \
    "$TMP/c.tsv" "$TMP/wasm.tsv" "$TMP/rust.tsv"
