#!/usr/bin/env bash
# Single-thread quantize throughput of quantlab's formats::quantize_row, native and wasm (the
# module the lab ships, in Node; timed both on values already in wasm memory and through
# quantizeGgml with its JS<->wasm copies), next to llama.cpp's C reference (quantize_row_*_ref
# in ggml-quants.c) for the GGUF block types, on the same N Gaussian f32 values. Prints one
# markdown table.
#
#     scripts/bench-quantize.sh            # N=16777216 ROUNDS=5 RUNS=2 by default
#
# On a shared machine a single pass per side is at the mercy of whatever else runs meanwhile,
# so the three sides run in ROUNDS interleaved rounds (native, wasm, C; the order rotates each
# round), each side taking the best of RUNS per type within its turn. The table gives each
# side's median over the rounds, the ratios of those medians, and the lowest and highest
# native / llama.cpp ratio of a single round. The load average is printed before and after.
#
# The C side needs the llama.cpp sources that scripts/dev/make_kquant_goldens.sh fetches into
# $KQ_DIR (default /tmp/kq); without them that column stays empty. The C bench is built like
# ggml-base in a default llama.cpp Release build: -O3 -DNDEBUG, no -march flags. The wasm side
# needs web/src/pkg (scripts/build-wasm.sh).
set -euo pipefail

N=${N:-16777216}
ROUNDS=${ROUNDS:-5}
RUNS=${RUNS:-2}
VERSION=0.3.36
KQ_DIR=${KQ_DIR:-/tmp/kq}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GGML=$KQ_DIR/llama_cpp_python-$VERSION/vendor/llama.cpp/ggml
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

(cd "$ROOT/crate" && nice cargo build -q --release --example bench_quantize --no-default-features)
NATIVE=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/bench_quantize
[ -x "$NATIVE" ] || NATIVE=$ROOT/target/release/examples/bench_quantize

HAVE_WASM=0
[ -f "$ROOT/web/src/pkg/quantlab_bg.wasm" ] && HAVE_WASM=1
HAVE_C=0
if [ -f "$GGML/src/ggml-quants.c" ]; then
    nice gcc -std=gnu11 -O3 -DNDEBUG -DLLAMA_CPP_VERSION="\"llama-cpp-python $VERSION\"" \
        -I"$GGML/include" -I"$GGML/src" -I"$GGML/src/ggml-cpu" \
        "$GGML/src/ggml-quants.c" "$ROOT/scripts/dev/kquant_goldens.c" -o "$TMP/kquant_bench" -lm
    HAVE_C=1
fi

run_side() { # side round
    case $1 in
    native) "$NATIVE" --n "$N" --runs "$RUNS" --tsv | sed "s/^/native\t/" ;;
    # Two sides: `wasm` (values already in wasm memory) and `wasm+copy` (quantizeGgml from JS).
    wasm) [ $HAVE_WASM = 0 ] || node "$ROOT/scripts/bench-quantize-wasm.mjs" "$N" "$RUNS" "$TMP/values.f32" ;;
    c) [ $HAVE_C = 0 ] || "$TMP/kquant_bench" bench "$N" "$RUNS" | sed "s/^/c\t/" ;;
    esac | awk -F'\t' -v round="$2" '{ print $1 "\t" round "\t" $2 "\t" $3 }' >> "$TMP/all.tsv"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
: > "$TMP/all.tsv"
for ((r = 1; r <= ROUNDS; r++)); do
    case $((r % 3)) in
    1) order="native wasm c" ;;
    2) order="wasm c native" ;;
    0) order="c native wasm" ;;
    esac
    for side in $order; do run_side "$side" "$r"; done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

echo "$N Gaussian f32 values; $ROUNDS interleaved rounds, best of $RUNS runs per side and round;"
echo "single thread, CPU time; MB/s of f32 input; medians over the rounds."
echo "Load average (1/5/15 min) before: $LOAD_BEFORE, after: $LOAD_AFTER ($(nproc) cores)."
if [ $HAVE_C = 1 ]; then
    echo "llama.cpp: ggml-quants.c from llama-cpp-python $VERSION, gcc -O3 -DNDEBUG"
else
    echo "llama.cpp column empty: sources not found in $KQ_DIR (run scripts/dev/make_kquant_goldens.sh)"
fi
echo
echo "wasm: the quantizer on values already in wasm memory, as native; wasm+copy: quantizeGgml called"
echo "from JS, including the copies of input and output between JS and wasm memory."
echo
echo "| type | native MB/s | wasm MB/s | wasm+copy MB/s | llama.cpp MB/s | native / llama.cpp | native / wasm | native / (wasm+copy) | native / llama.cpp, single rounds |"
echo "|------|------------:|----------:|---------------:|---------------:|-------------------:|--------------:|---------------------:|----------------------------------:|"
awk -F'\t' '
    function median(key,   n, i, j, t, v) {
        n = split(vals[key], v, " ")
        for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
        return n == 0 ? 0 : (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2)
    }
    function ratio(a, b) { return a > 0 && b > 0 ? sprintf("%.2f", a / b) : "-" }
    function mbps(v) { return v > 0 ? sprintf("%.1f", v) : "-" }
    { vals[$1 SUBSEP $3] = vals[$1 SUBSEP $3] " " $4; round[$1 SUBSEP $2 SUBSEP $3] = $4
      if (!($3 in seen)) { seen[$3] = 1; types[++nt] = $3 }
      if ($2 > rounds) rounds = $2 }
    END {
        for (k = 1; k <= nt; k++) {
            t = types[k]; nat = median("native" SUBSEP t); w = median("wasm" SUBSEP t); wc = median("wasm+copy" SUBSEP t)
            c = median("c" SUBSEP t)
            lo = ""; hi = ""
            for (r = 1; r <= rounds; r++) {
                a = round["native" SUBSEP r SUBSEP t]; b = round["c" SUBSEP r SUBSEP t]
                if (a > 0 && b > 0) { q = a / b; if (lo == "" || q < lo) lo = q; if (hi == "" || q > hi) hi = q }
            }
            span = lo == "" ? "-" : sprintf("%.2f–%.2f", lo, hi)
            printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", t, mbps(nat), mbps(w), mbps(wc), mbps(c), ratio(nat, c),
                ratio(nat, w), ratio(nat, wc), span
        }
    }' "$TMP/all.tsv"
