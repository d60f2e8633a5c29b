#!/usr/bin/env bash
# Regenerates tests/fixtures/presets/<file type>.json: the type llama.cpp's llama-quantize gives
# each tensor of the default model under each file type quantlab names (q2_k … q8_0, iq4_nl),
# for tests/rust/presets.rs. Dev tool only: the tests read the committed fixtures.
#
#     scripts/dev/make_preset_goldens.sh      # needs scripts/dev/build-llama-cpp.sh first
#
# Each output file is read back with gguf-py (`pip install gguf`), an independent GGUF reader,
# not quantlab's. --allow-requantize because the default model is already Q4_1: llama-quantize
# decodes every tensor and picks types from names and shapes only, as with an F16 input.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LCPP_DIR=${LCPP_DIR:-/work/shared/lcpp}
BIN=${LLAMA_QUANTIZE:-$LCPP_DIR/llama_cpp_python-0.3.36/vendor/llama.cpp/build/bin/llama-quantize}
MODEL=${MODEL:-$(ls "$ROOT"/models/*.gguf | head -1)}
OUT=$ROOT/tests/fixtures/presets
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT"

# quantlab's name, llama-quantize's name (q3_k/q4_k/q5_k are aliases of the _M types in both).
TYPES="q2_k:Q2_K q3_k_s:Q3_K_S q3_k_m:Q3_K_M q3_k_l:Q3_K_L iq4_nl:IQ4_NL q4_0:Q4_0 q4_1:Q4_1
q4_k_s:Q4_K_S q4_k_m:Q4_K_M q5_0:Q5_0 q5_1:Q5_1 q5_k_s:Q5_K_S q5_k_m:Q5_K_M q6_k:Q6_K q8_0:Q8_0"

for pair in $TYPES; do
    ours=${pair%%:*}
    theirs=${pair##*:}
    nice "$BIN" --allow-requantize "$MODEL" "$TMP/$ours.gguf" "$theirs" "${THREADS:-2}" > "$TMP/$ours.log" 2>&1 ||
        { cat "$TMP/$ours.log"; exit 1; }
    python3 - "$TMP/$ours.gguf" "$OUT/$ours.json" "$ours" "$theirs" "$(basename "$MODEL")" <<'PY'
import json, sys
from gguf import GGUFReader
path, out, ours, theirs, model = sys.argv[1:]
r = GGUFReader(path)
types = {t.name: t.tensor_type.name for t in r.tensors}
ftype = int(r.fields["general.file_type"].parts[-1][0])
doc = {
    "generator": "scripts/dev/make_preset_goldens.sh (llama-quantize of llama-cpp-python 0.3.36, read with gguf-py)",
    "model": model,
    "file_type": ours,
    "llama_quantize_type": theirs,
    "general.file_type": ftype,
    "tensors": types,
}
with open(out, "w") as f:
    json.dump(doc, f, indent=1, sort_keys=False)
    f.write("\n")
PY
    echo "$ours: $(python3 -c "import json,collections,sys; d=json.load(open('$OUT/$ours.json')); print(dict(collections.Counter(d['tensors'].values())))")"
done
