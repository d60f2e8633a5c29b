#!/usr/bin/env bash
# GPTQ and AWQ against round to nearest on the default model (#14): `quantlab eval` of each
# format with --method rtn, gptq (layer-sequential, and --gptq-inputs float) and awq, same protocol (the
# default: ctx 512 × 5 windows of the held-out chapters 1-3), calibration on chapters 4+. Prints
# each eval table and the wall time of each run (GPTQ's includes its calibration).
#
#     scripts/bench-methods.sh [MODEL]       # FORMATS=int4-sym-g64,q4_0 CALIB_TOKENS=2048 to change
#
# Needs a release build (cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${QUANTLAB_BIN:-target/release/quantlab}
model=${1:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
formats=${FORMATS:-int4-sym-g64,int3-asym-g64,q4_0}
calib_tokens=${CALIB_TOKENS:-4096}
[[ -x $bin ]] || { echo "no $bin: run cargo build --release" >&2; exit 1; }

run() {
  local label=$1; shift
  local t0 t1
  t0=$(date +%s.%N)
  "$bin" eval "$model" -f "$formats" --device cpu "$@"
  t1=$(date +%s.%N)
  printf '%s: %.0f s wall\n\n' "$label" "$(echo "$t1 - $t0" | bc)"
}

echo "# $(date -u +%F) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); formats $formats; calibration $calib_tokens tokens"
run "rtn" --method rtn
run "gptq (layer-sequential)" --method gptq --calib-tokens "$calib_tokens"
run "gptq (float inputs)" --method gptq --gptq-inputs float --calib-tokens "$calib_tokens"
run "awq" --method awq --calib-tokens "$calib_tokens"
