#!/usr/bin/env bash
# Perplexity of llama.cpp's file types, llama.cpp vs quantlab, on the default model: for each
# file type, llama-quantize --allow-requantize writes a file that llama-perplexity scores, and
# `quantlab eval --protocol llama.cpp --format <type>` scores quantlab's own quantization in
# memory (the same per-tensor types, tests/rust/presets.rs). Same text: Moby-Dick chapters 1-3
# joined as quantlab eval joins them; same windows (512 tokens, the second half scored).
# Dev tool (BENCHMARKS.md records its output); needs scripts/dev/build-llama-cpp.sh first.
#
#     scripts/dev/compare_preset_ppl.sh            # q4_0 q4_k_m, 4 windows
#     TYPES="q4_0 q6_k" WINDOWS=8 scripts/dev/compare_preset_ppl.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LCPP_DIR=${LCPP_DIR:-/work/shared/lcpp}
BIN=${LCPP_BIN:-$LCPP_DIR/llama_cpp_python-0.3.36/vendor/llama.cpp/build/bin}
MODEL=${MODEL:-$(ls "$ROOT"/models/*.gguf | head -1)}
TYPES=${TYPES:-q4_0 q4_k_m}
WINDOWS=${WINDOWS:-4}
THREADS=${THREADS:-1}
QUANTLAB=${QUANTLAB:-$ROOT/target/release/quantlab}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# The eval text exactly as quantlab eval builds it (chapters joined with a blank line).
python3 - "$ROOT/data/moby-dick" "$TMP/text.txt" <<'PY'
import json, sys
d, out = sys.argv[1:]
texts = [json.load(open(f"{d}/chapter_{n}.json"))["text"] for n in (1, 2, 3)]
open(out, "w").write("\n\n".join(texts))
PY

for t in $TYPES; do
    upper=$(echo "$t" | tr a-z A-Z)
    nice "$BIN/llama-quantize" --allow-requantize "$MODEL" "$TMP/$t.gguf" "$upper" "$THREADS" > "$TMP/q.log" 2>&1
    theirs=$(nice "$BIN/llama-perplexity" -m "$TMP/$t.gguf" -f "$TMP/text.txt" -c 512 --chunks "$WINDOWS" \
        -t "$THREADS" 2>&1 | grep -o 'Final estimate: PPL = [0-9.]*' | grep -o '[0-9.]*$')
    ours=$(nice "$QUANTLAB" eval "$MODEL" --protocol llama.cpp --ctx 512 --max-windows "$WINDOWS" \
        --threads "$THREADS" --device cpu --format "$t" --json |
        python3 -c "import json,sys; print(json.load(sys.stdin)['rows'][1]['ppl'])")
    python3 -c "t, a, b = '$t', float('$theirs'), float('$ours'); print(f'{t}: llama.cpp {a:.4f}  quantlab {b:.4f}  ({(b / a - 1) * 100:+.2f}%)')"
done
