#!/usr/bin/env bash
# Prefill and decode tokens/s of the default model per weight format, natively: on the GPU
# (quantlab::gpu::forward::GpuModel with GPU sampling, as `quantlab generate --device gpu`; on a
# machine without a GPU that is Mesa's lavapipe) and on the CPU (the runtime's forward, 1 thread
# and all threads). Prints a markdown table (crate/examples/bench_decode.rs explains what is
# timed: upload, pipeline compilation and one warm-up generation are reported apart). Not part
# of `npm test`.
#
#     scripts/bench-decode.sh                          # all default formats, 32 decoded tokens
#     FORMATS=base,q4_0 N_DECODE=16 scripts/bench-decode.sh [--no-cpu | --no-gpu]
#
# Needs, on a fresh clone, what `npm test`'s setup (scripts/setup.sh) installs: the model in
# models/, the Moby-Dick text in data/, Node (to read the prompt) and Vulkan (mesa-vulkan-drivers).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/bench-runtime-common.sh"
MODEL=${MODEL:-$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf}
N_DECODE=${N_DECODE:-32}
FORMATS=${FORMATS:-base,f32,q8_0,q4_0,q4_k,q6_k,int8-sym-channel,int4-sym-g128,nf4}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg-$(id -un)}
mkdir -p "$XDG_RUNTIME_DIR"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

[ -f "$MODEL" ] || { echo "model $MODEL not found (scripts/setup.sh downloads it)" >&2; exit 1; }
bench_prompt "$TMP/prompt.txt"
(cd "$ROOT/crate" && nice cargo build -q --release --example bench_decode)
echo "Machine: $(bench_machine) at start."
"${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/bench_decode" --model "$MODEL" --prompt-file "$TMP/prompt.txt" \
    --n "$N_DECODE" --formats "${FORMATS// /,}" "$@"
echo
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
