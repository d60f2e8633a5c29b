#!/usr/bin/env bash
# Issue #13's native targets against llama.cpp, in one run on one machine, interleaved per cell:
#   eval:    `quantlab eval --protocol llama.cpp` (exact and `--matmul int8`) vs `llama-perplexity`
#            on the same GGUF and text (Moby-Dick chapters 1-3, CHUNKS windows of 512), wall seconds;
#   pp / tg: `quantlab generate` prefill of a PP-token prompt and decode of TG tokens vs
#            `llama-bench -p PP -n TG`, on the stored Q4_1 file and the Q8_0/Q4_0/F32 files
#            `quantlab quantize` writes (both tools run the same files).
# At 1 and 2 threads. Prints markdown tables. Not part of `npm test`.
#
#     scripts/dev/build-llama-cpp.sh llama-bench llama-perplexity   # once
#     scripts/bench-llamacpp-targets.sh                             # THREADS="1 2" CHUNKS=4 PP=512 TG=32
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODEL=${MODEL:-$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf}
LCPP_BIN=${LCPP_BIN:-/work/shared/lcpp/llama_cpp_python-0.3.36/vendor/llama.cpp/build/bin}
THREADS=${THREADS:-"1 2"}
CHUNKS=${CHUNKS:-4}
PP=${PP:-512}
TG=${TG:-32}
FORMATS=${FORMATS:-"base q8_0 q4_0 f32"}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

for tool in llama-perplexity llama-bench; do
    [ -x "$LCPP_BIN/$tool" ] || { echo "$LCPP_BIN/$tool missing: scripts/dev/build-llama-cpp.sh llama-bench llama-perplexity" >&2; exit 1; }
done
(cd "$ROOT/crate" && nice cargo build -q --release --no-default-features --bin quantlab)
QL=${CARGO_TARGET_DIR:-$ROOT/target}/release/quantlab

# The eval text (chapters 1-3, joined as quantlab's --text reads them) and a long prompt (chapters 4+).
python3 - "$ROOT/data/moby-dick" "$TMP" <<'PY'
import json, sys
d, out = sys.argv[1], sys.argv[2]
ch = lambda n: json.load(open(f"{d}/chapter_{n}.json"))["text"]
open(f"{out}/text.txt", "w").write("\n\n".join(ch(n) for n in (1, 2, 3)))
open(f"{out}/prompt.txt", "w").write("\n\n".join(ch(n) for n in (4, 5, 6, 7)))
PY

# wall CMD...: runs CMD (stdout to $TMP/out, stderr to $TMP/err) and prints its wall seconds.
wall() { /usr/bin/time -f %e -o "$TMP/wall" "$@" > "$TMP/out" 2> "$TMP/err" || { cat "$TMP/err" >&2; exit 1; }; cat "$TMP/wall"; }

echo "# $(date -u +%FT%TZ), $(nproc) × $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "Evaluation, llama.cpp protocol, $CHUNKS × 512 tokens of chapters 1-3, $(basename "$MODEL"), wall seconds:"
echo
echo "| threads | llama-perplexity s | ppl | quantlab exact s | ppl | ratio | quantlab --matmul int8 s | ppl | ratio |"
echo "|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
for t in $THREADS; do
    l=$(wall "$LCPP_BIN/llama-perplexity" -m "$MODEL" -f "$TMP/text.txt" -c 512 --chunks "$CHUNKS" -t "$t")
    lp=$(cat "$TMP/out" "$TMP/err" | grep -o 'Final estimate: PPL = [0-9.]*' | awk '{print $NF}')
    row="| $t | $l | $lp"
    # `--matmul int8` evaluates the exact base too (its reference, row 0): its row's time is the wall
    # time less row 0's forward seconds (positions run / the row's tokens/s).
    for mode in exact int8; do
        q=$(wall "$QL" eval "$MODEL" --protocol llama.cpp --ctx 512 --max-windows "$CHUNKS" --text "$TMP/text.txt" \
            --threads "$t" --device cpu --matmul "$mode" --json)
        read -r q qp < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1])); wall = float(sys.argv[2]); rows = r["rows"]
if len(rows) > 1:
    wall -= r["windows"] * r["ctx"] / rows[0]["tokens_per_sec"]
print(round(wall, 2), round(rows[-1]["ppl"], 4))' "$TMP/out" "$q")
        row="$row | $q | $qp | $(awk -v a="$q" -v b="$l" 'BEGIN { printf "%.2f×", a / b }')"
    done
    echo "$row |"
done

# The GGUFs both tools run.
for f in $FORMATS; do
    if [ "$f" = base ]; then ln -s "$MODEL" "$TMP/$f.gguf"; else "$QL" quantize "$MODEL" -f "$f" -o "$TMP/$f.gguf" > /dev/null; fi
done
echo
echo "Prefill of a $PP-token prompt and decode of $TG tokens (tokens/s; llama-bench: mean of 2 repetitions):"
echo
echo "| file | threads | llama-bench pp$PP | quantlab prefill | ratio | llama-bench tg$TG | quantlab decode | ratio | quantlab int8 prefill | int8 decode |"
echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
# About PP tokens of chapters 4+ (English runs ~1.3 tokens per word here; the table prints the count).
prompt=$(python3 -c 'import sys; w = open(sys.argv[1]).read().split(); print(" ".join(w[: int(int(sys.argv[2]) * 0.75)]))' "$TMP/prompt.txt" "$PP")
for f in $FORMATS; do
    for t in $THREADS; do
        "$LCPP_BIN/llama-bench" -m "$TMP/$f.gguf" -p "$PP" -n "$TG" -t "$t" -r 2 -o csv > "$TMP/lb.csv" 2> /dev/null
        lpp=$(python3 -c 'import csv,sys; r=[x for x in csv.DictReader(open(sys.argv[1]))]; print(round(float([x for x in r if int(x["n_prompt"])>0][0]["avg_ts"]),1), round(float([x for x in r if int(x["n_gen"])>0][0]["avg_ts"]),1))' "$TMP/lb.csv")
        set -- $lpp
        row="| $f | $t | $1"
        for mode in exact int8; do
            "$QL" generate "$TMP/$f.gguf" -p "$prompt" -n "$TG" --threads "$t" --device cpu --matmul "$mode" > /dev/null 2> "$TMP/gen"
            read -r pt pf dc < <(awk '/^prefill:/ { gsub(/[(]/, ""); print $2, $7, $15 }' "$TMP/gen")
            if [ "$mode" = exact ]; then
                row="$row | $pf ($pt tok) | $(awk -v a="$pf" -v b="$1" 'BEGIN { printf "%.2f×", a / b }') | $2 | $dc | $(awk -v a="$dc" -v b="$2" 'BEGIN { printf "%.2f×", a / b }')"
            else
                row="$row | $pf | $dc"
            fi
        done
        echo "$row |"
    done
done
echo
echo "# load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
