#!/usr/bin/env bash
# Hugging Face checkpoint -> GGUF with `quantlab quantize`, checked by llama.cpp and gguf-py.
#
# 1. The three HF fixtures (tests/fixtures/hf; the two without a tokenizer get f32-untied's
#    byte-level tokenizer.json) converted to f32: scripts/dev/check_hf_gguf.py checks keys,
#    tensor names/shapes/types and the q/k permutation with gguf-py; llama-perplexity loads and
#    scores each file; `quantlab eval --protocol llama.cpp` scores the same text on the
#    converted file and on the HF directory.
# 2. A real-size checkpoint: the default model (SmolLM2-135M, Q4_1 GGUF) written out as an HF
#    checkpoint by scripts/dev/gguf_to_hf.py (float32, two shards, tokenizer.json), converted
#    back to f32 and q8_0: its keys are compared with the original GGUF (made by llama.cpp's
#    convert_hf_to_gguf.py from the published checkpoint), and llama-perplexity scores the
#    original and both conversions (the f32 conversion holds the original's dequantized weights,
#    so it must score like the original).
# Dev tool (BENCHMARKS.md records its output); needs scripts/dev/build-llama-cpp.sh first.
#
#     scripts/dev/check_hf_convert.sh
#     QUANTLAB=target/debug/quantlab CHUNKS=8 scripts/dev/check_hf_convert.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LCPP_DIR=${LCPP_DIR:-/work/shared/lcpp}
BIN=${LCPP_BIN:-$LCPP_DIR/llama_cpp_python-0.3.36/vendor/llama.cpp/build/bin}
MODEL=${MODEL:-$(ls "$ROOT"/models/*.gguf | head -1)}
CHUNKS=${CHUNKS:-4}
THREADS=${THREADS:-2}
QUANTLAB=${QUANTLAB:-$ROOT/target/release/quantlab}
if [ ! -x "$QUANTLAB" ]; then
    (cd "$ROOT" && cargo build --release --bin quantlab)
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Moby-Dick chapters 1-3, joined as quantlab eval joins them.
python3 - "$ROOT/data/moby-dick" "$TMP/text.txt" <<'PY'
import json, sys
d, out = sys.argv[1:]
open(out, "w").write("\n\n".join(json.load(open(f"{d}/chapter_{n}.json"))["text"] for n in (1, 2, 3)))
PY

lcpp_ppl() { # model ctx
    nice "$BIN/llama-perplexity" -m "$1" -f "$TMP/text.txt" -c "$2" --chunks "$CHUNKS" -t "$THREADS" 2>&1 |
        grep -o 'Final estimate: PPL = [0-9.]*' | grep -o '[0-9.]*$'
}
ours_ppl() { # model ctx
    nice "$QUANTLAB" eval "$1" --protocol llama.cpp --ctx "$2" --max-windows "$CHUNKS" --text "$TMP/text.txt" \
        --threads "$THREADS" --device cpu --json | python3 -c "import json,sys; print(json.load(sys.stdin)['rows'][0]['ppl'])"
}
row() { # label llama.cpp-ppl quantlab-ppl-of-gguf quantlab-ppl-of-hf
    python3 -c "import sys; l, a, b, c = sys.argv[1:]; a, b = float(a), float(b)
print(f'{l:<26} llama.cpp {a:10.4f}   quantlab (gguf) {b:10.4f} ({(b / a - 1) * 100:+.3f}%)   quantlab (hf dir) {c}')" "$@"
}

echo "== fixtures (ctx 64, $CHUNKS chunks)"
for v in f32-untied bf16-tied-sharded f16-mqa-headdim; do
    cp -r "$ROOT/tests/fixtures/hf/$v" "$TMP/$v"
    cp -n "$ROOT/tests/fixtures/hf/f32-untied/tokenizer.json" "$TMP/$v/"
    "$QUANTLAB" quantize "$TMP/$v" -f f32 -o "$TMP/$v.gguf" > /dev/null
    python3 "$ROOT/scripts/dev/check_hf_gguf.py" "$TMP/$v.gguf" "$TMP/$v"
    row "$v f32" "$(lcpp_ppl "$TMP/$v.gguf" 64)" "$(ours_ppl "$TMP/$v.gguf" 64)" "$(ours_ppl "$TMP/$v" 64)"
done

echo "== $(basename "$MODEL") -> HF checkpoint -> GGUF (ctx 512, $CHUNKS chunks)"
python3 "$ROOT/scripts/dev/gguf_to_hf.py" "$MODEL" "$TMP/hf"
for t in f32 q8_0; do
    /usr/bin/time -f "quantize -f $t: %e s, peak RSS %M KB" "$QUANTLAB" quantize "$TMP/hf" -f "$t" -o "$TMP/hf-$t.gguf" > /dev/null
done
python3 "$ROOT/scripts/dev/check_hf_gguf.py" "$TMP/hf-f32.gguf" "$TMP/hf"
python3 - "$MODEL" "$TMP/hf-f32.gguf" <<'PY'
import sys
from gguf import GGUFReader
a, b = ({k: f.contents() for k, f in GGUFReader(p).fields.items()} for p in sys.argv[1:])
same = [k for k in a if k in b and a[k] == b[k] and not k.startswith("GGUF.")]
print(f"keys equal to the original's: {len(same)}; differing: {[k for k in a if k in b and a[k] != b[k] and not k.startswith('GGUF.')]}")
print(f"only in the original: {[k for k in a if k not in b]}; only in the conversion: {[k for k in b if k not in a]}")
PY
row "original $(basename "$MODEL" .gguf | sed 's/.*\.//')" "$(lcpp_ppl "$MODEL" 512)" "$(ours_ppl "$MODEL" 512)" "-"
row "converted f32" "$(lcpp_ppl "$TMP/hf-f32.gguf" 512)" "$(ours_ppl "$TMP/hf-f32.gguf" 512)" "$(ours_ppl "$TMP/hf" 512)"
row "converted q8_0" "$(lcpp_ppl "$TMP/hf-q8_0.gguf" 512)" "$(ours_ppl "$TMP/hf-q8_0.gguf" 512)" "-"
