#!/usr/bin/env bash
# Coverage-guided fuzzing (#17): builds the cargo-fuzz targets in fuzz/ and runs each for SECONDS
# (default 60), seeded from tests/fixtures (the malformed corpus and small valid files). Exits
# non-zero if any target finds a crash (a panic, an abort, an allocation past -rss_limit_mb or a
# memory error caught by AddressSanitizer); the input is left in fuzz/artifacts/TARGET/.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]        (targets: ls fuzz/fuzz_targets)
# The long run (BENCHMARKS.md) counts executions instead of seconds and may drop the sanitizer:
#   FUZZ_RUNS=10000000 FUZZ_SANITIZER=none scripts/fuzz.sh 0 gguf
# (FUZZ_RUNS: stop each target after that many executions, ignoring SECONDS; FUZZ_SANITIZER:
# cargo fuzz's -s, built into its own target folder so the AddressSanitizer build stays.)
# The corpus each run grows is kept in fuzz/corpus/ (git-ignored), so later runs start further on.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
export PATH="$HOME/.cargo/bin:$PATH"

seconds=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(gguf safetensors safetensors_index tokenizer_json scheme recipe)

command -v cargo-fuzz >/dev/null || die "cargo-fuzz is missing: run scripts/setup.sh (it installs it)"
# libFuzzer's instrumentation needs unstable rustc flags; RUSTC_BOOTSTRAP lets the stable
# toolchain accept them, so no nightly toolchain is needed.
export RUSTC_BOOTSTRAP=1

# Seeds: files a target reads, from the repository's fixtures; names for the scheme parser.
seed() {
  local target=$1; shift
  mkdir -p "fuzz/corpus/$target"
  local f
  for f in "$@"; do
    [[ -f $f ]] && cp -n "$f" "fuzz/corpus/$target/$(basename "$(dirname "$f")")-$(basename "$f")"
  done
}
fixtures=tests/fixtures
seed gguf "$fixtures"/malformed/*.gguf
seed safetensors "$fixtures"/malformed/*.safetensors "$fixtures"/bnb/*-b64*.safetensors \
  "$fixtures"/hf/bf16-tied-sharded/*.safetensors "$fixtures"/hf/f16-mqa-headdim/model.safetensors
seed safetensors_index "$fixtures"/hf/bf16-tied-sharded/model.safetensors.index.json
seed tokenizer_json "$fixtures"/malformed/*.tokenizer.json "$fixtures"/hf/f32-untied/tokenizer.json
mkdir -p fuzz/corpus/scheme
for name in q4_0 q4_k q6_k q8_0 f16 bf16 int8-sym-channel int4-asym-g128 int4-sym-tensor-mse int3-asym-g64-p99.9 \
  nf4-b64 nf4-b64-dq fp4-b128 nf4-b4096-dq256 fp8-e4m3-tensor fp8-e5m2-channel; do
  printf '%s' "$name" >"fuzz/corpus/scheme/$name"
done

# Recipes: valid ones (a default only, per-tensor entries with each method) and near misses
# (another version, an unknown field, a duplicate, a method the format does not take).
mkdir -p fuzz/corpus/recipe
recipe_seed() { printf '%s' "$2" >"fuzz/corpus/recipe/$1.json"; }
recipe_seed default '{"version": 1, "default": {"format": "q4_k_m"}}'
recipe_seed mixed '{"version": 1, "name": "mix", "default": {"format": "q4_0", "method": "rtn"}, "tensors": [{"name": "token_embd.weight", "format": "q8_0"}, {"name": "blk.0.attn_q.weight", "format": "int4-sym-g64", "method": "gptq"}, {"name": "blk.0.ffn_down.weight", "format": "q4_k", "method": "imatrix"}]}'
recipe_seed fallback '{"version": 1, "default": {"format": "nf4-b64-dq"}, "tensors": [{"name": "output.weight", "format": "q6_k"}]}'
recipe_seed version2 '{"version": 2, "default": {"format": "q4_0"}}'
recipe_seed unknown-field '{"version": 1, "default": {"format": "q4_0", "bits": 4}}'
recipe_seed duplicate '{"version": 1, "default": {"format": "q4_0"}, "tensors": [{"name": "a.weight", "format": "q8_0"}, {"name": "a.weight", "format": "q5_0"}]}'
recipe_seed bad-method '{"version": 1, "default": {"format": "nf4"}, "tensors": [{"name": "a.weight", "format": "fp8-e4m3", "method": "gptq"}]}'

sanitizer=${FUZZ_SANITIZER:-address}
build_args=(--fuzz-dir fuzz -s "$sanitizer")
[[ $sanitizer == address ]] || build_args+=(--target-dir "fuzz/target-$sanitizer")
if [[ -n ${FUZZ_RUNS:-} ]]; then
  limit=(-runs="$FUZZ_RUNS")
  what="$FUZZ_RUNS executions"
else
  limit=(-max_total_time="$seconds")
  what="${seconds}s"
fi

step "fuzz: building ${targets[*]} (sanitizer: $sanitizer)"
for target in "${targets[@]}"; do
  cargo fuzz build "${build_args[@]}" "$target" || die "cargo fuzz build $target failed"
done

failed=()
for target in "${targets[@]}"; do
  step "fuzz: $target for $what"
  log=$(mktemp)
  # -rss_limit_mb: an input that makes a reader allocate past 2 GiB is a crash (#17's
  # allocation discipline); -timeout: one input may not take more than 10 s.
  start=$SECONDS
  cargo fuzz run "${build_args[@]}" "$target" "fuzz/corpus/$target" -- \
    "${limit[@]}" -rss_limit_mb=2048 -timeout=10 -max_len=131072 -print_final_stats=1 2>&1 | tee "$log" \
    | grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^Done|ERROR|panicked|SUMMARY|Test unit written'
  rc=${PIPESTATUS[0]}
  runs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$')
  cov=$(grep -oE '^#[0-9]+[[:space:]]+DONE[[:space:]]+cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 | sed -E 's/.*cov: ([0-9]+) ft: ([0-9]+)/cov \1, ft \2/')
  note "$target: ${runs:-?} executions in $((SECONDS - start)) s, ${cov:-no final coverage line (a crash ends the run early)}, exit $rc"
  ((rc == 0)) || failed+=("$target")
  rm -f "$log"
done

if ((${#failed[@]})); then
  echo "fuzz: crashes in ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, $what each (sanitizer: $sanitizer), no crash"
