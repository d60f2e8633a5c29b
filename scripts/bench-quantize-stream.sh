#!/usr/bin/env bash
# Peak memory and throughput of `quantlab quantize` on a real-size synthetic checkpoint: LAYERS
# LLaMA-7B-shaped layers (hidden 4096, ffn 11008; q k v o gate up down + 2 norms, F16, 404 MB
# per layer; one layer's random weights repeated, so every byte is real data to quantize),
# written once as safetensors and once as GGUF, quantized at 1 and 2 threads (release build,
# without the GPU feature). Prints one markdown table: peak RSS (the child's ru_maxrss, from
# GNU time), wall time, and MB/s of input read.
#
#     scripts/bench-quantize-stream.sh          # LAYERS=4, DIR=a fresh temporary directory
#     BIN=path/to/quantlab LAYERS=2 scripts/bench-quantize-stream.sh   # another build, fewer layers
#
# Needs python3 with numpy and GNU time (/usr/bin/time); DIR needs about 2.3 × LAYERS × 404 MB.
set -euo pipefail

LAYERS=${LAYERS:-4}
THREADS=${THREADS:-"1 2"}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${DIR:-$(mktemp -d)}
trap 'rm -rf "$DIR"' EXIT

if [ -z "${BIN:-}" ]; then
    (cd "$ROOT/crate" && nice cargo build -q --release --bin quantlab --no-default-features)
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/quantlab
fi

python3 - "$DIR" "$LAYERS" <<'EOF'
import json, struct, sys
import numpy as np

out, layers = sys.argv[1], int(sys.argv[2])
H, F = 4096, 11008
rng = np.random.default_rng(0)
shapes = [("input_layernorm", "attn_norm", [H]), ("self_attn.q_proj", "attn_q", [H, H]),
          ("self_attn.k_proj", "attn_k", [H, H]), ("self_attn.v_proj", "attn_v", [H, H]),
          ("self_attn.o_proj", "attn_output", [H, H]), ("post_attention_layernorm", "ffn_norm", [H]),
          ("mlp.gate_proj", "ffn_gate", [F, H]), ("mlp.up_proj", "ffn_up", [F, H]),
          ("mlp.down_proj", "ffn_down", [H, F])]
# One layer's weights (N(0, 0.02), norms near 1), written for every layer.
data = [(rng.standard_normal(int(np.prod(s)), dtype=np.float32) * (0.02 if len(s) == 2 else 0.1)
         + (0 if len(s) == 2 else 1)).astype(np.float16).tobytes() for _, _, s in shapes]
tensors = [(i, hf, gg, s, d) for i in range(layers) for (hf, gg, s), d in zip(shapes, data)]

# safetensors: header (offsets in order), padded with spaces to 8 bytes, then the data.
header, off = {}, 0
for i, hf, _, s, d in tensors:
    header[f"model.layers.{i}.{hf}.weight"] = {"dtype": "F16", "shape": s, "data_offsets": [off, off + len(d)]}
    off += len(d)
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * (-len(h) % 8)
with open(f"{out}/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    for *_, d in tensors:
        f.write(d)

# GGUF v3, no metadata: tensor infos (dims innermost first, type 1 = F16), data aligned to 32.
def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b
head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), 0)
off = 0
for i, _, gg, sh, d in tensors:
    head += s(f"blk.{i}.{gg}.weight") + struct.pack("<I", len(sh)) + b"".join(struct.pack("<Q", n) for n in sh[::-1])
    head += struct.pack("<IQ", 1, off)
    off += len(d) + (-len(d) % 32)
head += b"\0" * (-len(head) % 32)
with open(f"{out}/model.gguf", "wb") as f:
    f.write(head)
    for *_, d in tensors:
        f.write(d + b"\0" * (-len(d) % 32))
EOF

IN_MB=$(python3 -c "import os; print(os.path.getsize('$DIR/model.safetensors') / 1e6)")
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; $LAYERS layers, $IN_MB MB of F16 weights"
echo
echo "| input | format | threads | peak RSS (MB) | wall (s) | MB/s |"
echo "|---|---|---:|---:|---:|---:|"
run() { # input format ext threads
    local log=$DIR/time.log
    sync
    /usr/bin/time -f "%M %e" -o "$log" "$BIN" quantize "$DIR/$1" -f "$2" --pure --threads "$4" \
        -o "$DIR/out.$3" > /dev/null
    read -r kb secs < "$log"
    rm -f "$DIR/out.$3"
    awk -v i="$1" -v f="$2" -v t="$4" -v kb="$kb" -v s="$secs" -v mb="$IN_MB" \
        'BEGIN { printf "| %s | %s | %d | %.0f | %.1f | %.0f |\n", i, f, t, kb / 1000, s, mb / s }'
}
for t in $THREADS; do
    run model.safetensors int4-asym-g128 safetensors "$t"
    run model.safetensors nf4 safetensors "$t"
    run model.gguf q4_0 gguf "$t"
    run model.gguf q4_k gguf "$t"
done
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
