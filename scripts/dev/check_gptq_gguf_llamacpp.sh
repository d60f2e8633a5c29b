#!/usr/bin/env bash
# A GGUF written by GPTQ onto llama.cpp's Q4_0 grid, checked by llama.cpp (issue #14's "loads and
# runs in llama.cpp"): `quantlab quantize --method gptq -f q4_0` writes the file; gguf-py reads its
# tensor types (every 2-D weight but the tied token_embd is Q4_0, as llama-quantize's Q4_0 mix);
# llama-perplexity loads and scores it, and `quantlab eval` scores the same file on the same text
# and windows (llama.cpp's protocol) — the two must agree as they do for llama-quantize's own
# files (scripts/dev/compare_preset_ppl.sh). The round-to-nearest file is scored beside it.
# Dev tool (BENCHMARKS.md records its output); needs scripts/dev/build-llama-cpp.sh first.
#
#     scripts/dev/check_gptq_gguf_llamacpp.sh
#     CALIB_TOKENS=4096 CHUNKS=8 scripts/dev/check_gptq_gguf_llamacpp.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LCPP_DIR=${LCPP_DIR:-/work/shared/lcpp}
BIN=${LCPP_BIN:-$LCPP_DIR/llama_cpp_python-0.3.36/vendor/llama.cpp/build/bin}
MODEL=${MODEL:-$(ls "$ROOT"/models/*.gguf | head -1)}
CHUNKS=${CHUNKS:-4}
THREADS=${THREADS:-2}
CALIB_TOKENS=${CALIB_TOKENS:-1024}
QUANTLAB=${QUANTLAB:-$ROOT/target/release/quantlab}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

python3 - "$ROOT/data/moby-dick" "$TMP/text.txt" <<'PY'
import json, sys
d, out = sys.argv[1:]
open(out, "w").write("\n\n".join(json.load(open(f"{d}/chapter_{n}.json"))["text"] for n in (1, 2, 3)))
PY

start=$(date +%s)
nice "$QUANTLAB" quantize "$MODEL" -f q4_0 --method gptq --act-order --calib-tokens "$CALIB_TOKENS" \
    -o "$TMP/gptq.gguf" > "$TMP/gptq.log" 2>&1 || { cat "$TMP/gptq.log"; exit 1; }
echo "quantize --method gptq -f q4_0 --act-order --calib-tokens $CALIB_TOKENS: $(( $(date +%s) - start )) s"
nice "$QUANTLAB" quantize "$MODEL" -f q4_0 -o "$TMP/rtn.gguf" > /dev/null

python3 - "$TMP/gptq.gguf" "$TMP/rtn.gguf" <<'PY'
import sys
from collections import Counter
import numpy as np
from gguf import GGUFReader
gptq, rtn = (GGUFReader(p) for p in sys.argv[1:])
types = Counter(t.tensor_type.name for t in gptq.tensors if len(t.shape) == 2)
print("gguf-py: GPTQ file's 2-D tensor types", dict(types))
differ = sum(not np.array_equal(a.data, b.data) for a, b in zip(gptq.tensors, rtn.tensors) if a.tensor_type.name == "Q4_0")
print(f"gguf-py: {differ} of {types['Q4_0']} Q4_0 tensors hold codes that differ from round to nearest")
assert types["Q4_0"] > 0 and differ > 0
PY

lcpp_ppl() {
    nice "$BIN/llama-perplexity" -m "$1" -f "$TMP/text.txt" -c 512 --chunks "$CHUNKS" -t "$THREADS" 2>&1 |
        grep -o 'Final estimate: PPL = [0-9.]*' | grep -o '[0-9.]*$'
}
ours_ppl() {
    nice "$QUANTLAB" eval "$1" --protocol llama.cpp --ctx 512 --max-windows "$CHUNKS" --text "$TMP/text.txt" \
        --threads "$THREADS" --device cpu --json | python3 -c "import json,sys; print(json.load(sys.stdin)['rows'][0]['ppl'])"
}
for f in gptq rtn; do
    a=$(lcpp_ppl "$TMP/$f.gguf")
    b=$(ours_ppl "$TMP/$f.gguf")
    python3 -c "import sys; l, a, b = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
print(f'{l:<5} q4_0: llama-perplexity {a:9.4f}   quantlab eval {b:9.4f}  ({(b / a - 1) * 100:+.3f}%)')
assert abs(b / a - 1) < 0.02, 'quantlab and llama.cpp disagree by more than 2%'" "$f" "$a" "$b"
done
