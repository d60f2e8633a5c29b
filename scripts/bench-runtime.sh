#!/usr/bin/env bash
# Runtime throughput of the CPU forward: prefill and decode tokens/s of greedy generation for the
# default model as stored (Q4_1 "base") and re-quantized in memory to f32 and the main formats,
# natively with 1 and 2 threads (`quantlab generate --threads`) and in wasm (the lab's LabModel
# in Node, one thread), with each run's peak RSS; and llama.cpp's llama-bench decode (tg) and
# prompt (pp) speed on the same GGUFs (the stored file, and the files `quantlab quantize` writes
# for the ggml types). Prints one markdown table. Not part of `npm test`.
#
#     scripts/bench-runtime.sh                 # PROMPT_TOKENS≈64 N_DECODE=32 by default
#
# Notes on what is measured:
# - quantlab runs the prompt one position at a time (no batched prefill), so its prefill and
#   decode speeds are close; llama.cpp's pp is a batched prompt (matrix-matrix products).
# - llama-bench: pp = prompt of P tokens, tg = N generated tokens, mean of -r 2 repetitions.
#   Its binary comes from $LLAMA_BENCH, else the llama.cpp build tree that
#   scripts/dev/build-llama-bench.sh makes (llama.cpp vendored by llama-cpp-python 0.3.36 on
#   PyPI, CPU, GGML_NATIVE=OFF); without it the llama.cpp columns are "-".
# - peak RSS: /usr/bin/time's "Maximum resident set size" of the native process; Node's
#   process.resourceUsage().maxRSS for wasm (includes Node itself, ~50 MB).
# - The wasm core must be built first (scripts/build-wasm.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODEL=${MODEL:-$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf}
N_DECODE=${N_DECODE:-32}
FORMATS=${FORMATS:-"base f32 q8_0 q4_0 q4_k nf4 int4-asym-g128"}
LCPP_BUILD=${LCPP_BUILD:-/tmp/eval-lcpp/llama_cpp_python-0.3.36/vendor/llama.cpp/build}
LLAMA_BENCH=${LLAMA_BENCH:-$LCPP_BUILD/bin/llama-bench}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

[ -f "$MODEL" ] || { echo "model $MODEL not found (scripts/setup.sh downloads it)" >&2; exit 1; }
[ -f "$ROOT/web/src/pkg/quantlab_bg.wasm" ] || { echo "build the wasm core first: scripts/build-wasm.sh" >&2; exit 1; }

source "$ROOT/scripts/bench-runtime-common.sh"
# The prompt: the first 300 characters of Moby-Dick chapter 1 (the token count is printed).
bench_prompt "$TMP/prompt.txt"

(cd "$ROOT/crate" && nice cargo build -q --release --no-default-features --bin quantlab)
QL=${CARGO_TARGET_DIR:-$ROOT/target}/release/quantlab

# native FORMAT THREADS -> "prefill decode rssMiB prompt_tokens"
native() {
    local fmt=() log=$TMP/native.log
    [ "$1" = base ] || fmt=(--format "$1")
    /usr/bin/time -v "$QL" generate "$MODEL" -p "$(cat "$TMP/prompt.txt")" -n "$N_DECODE" "${fmt[@]}" \
        --threads "$2" > /dev/null 2> "$log"
    awk '/^prefill:/ { gsub(/[(]/, ""); pt = $2; pf = $7; dc = $15 }
         /Maximum resident set size/ { rss = $6 / 1024 }
         END { printf "%s %s %.0f %s\n", pf, dc, rss, pt }' "$log"
}

# llama-bench on GGUF $1 with $2 threads -> "pp tg" (tokens/s)
lcpp() {
    "$LLAMA_BENCH" -m "$1" -t "$2" -p "$PROMPT_TOKENS" -n "$N_DECODE" -r 2 -o csv 2> /dev/null |
        awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) { gsub(/"/, "", $i); col[$i] = i }; next }
                 { gsub(/"/, ""); if ($col["n_prompt"] > 0) pp = $col["avg_ts"]; else tg = $col["avg_ts"] }
                 END { printf "%.1f %.1f\n", pp, tg }'
}

PROMPT_TOKENS=$(native base 2 | cut -d' ' -f4)
HAVE_LCPP=0
[ -x "$LLAMA_BENCH" ] && HAVE_LCPP=1

echo "Greedy generation: prompt $PROMPT_TOKENS tokens (Moby-Dick ch. 1 opening), $N_DECODE decoded tokens; tokens/s."
echo "Machine: $(bench_machine) at start."
echo
echo "| format | bpw | native 1T prefill | native 1T decode | native 2T prefill | native 2T decode | native peak RSS MiB | wasm prefill | wasm decode | wasm peak RSS MiB | llama.cpp 1T pp / tg | llama.cpp 2T pp / tg |"
echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
for f in $FORMATS; do
    read -r p1 d1 _ _ < <(native "$f" 1)
    read -r p2 d2 rss _ < <(native "$f" 2)
    read -r _ wp wd wrss _ _ bpw < <(node "$ROOT/scripts/bench-runtime-wasm.mjs" "$MODEL" "$f" "$TMP/prompt.txt" "$N_DECODE")
    l1=- l2=-
    if [ "$HAVE_LCPP" = 1 ]; then
        gguf=""
        case "$f" in
            base) gguf=$MODEL ;;
            f32 | q8_0 | q4_0 | q4_k)
                gguf=$TMP/model-$f.gguf
                "$QL" quantize "$MODEL" -f "$f" -o "$gguf" > /dev/null ;;
        esac
        if [ -n "$gguf" ]; then
            read -r pp tg < <(lcpp "$gguf" 1); l1="$pp / $tg"
            read -r pp tg < <(lcpp "$gguf" 2); l2="$pp / $tg"
            [ "$gguf" = "$MODEL" ] || rm -f "$gguf"
        fi
    fi
    echo "| $f | $bpw | $p1 | $d1 | $p2 | $d2 | $rss | $wp | $wd | $wrss | $l1 | $l2 |"
done
echo
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
