#!/usr/bin/env bash
# `npm test`: sets up if needed (scripts/setup.sh, no server), then runs every suite:
#   1. cargo test  — Rust unit + integration tests, GPU tests on lavapipe (QUANTLAB_REQUIRE_GPU=1)
#   2. vitest      — web unit tests and the wasm core's tests in Node (tests/web, tests/wasm)
#   3. node --test — browser end-to-end tests in headless Chromium (tests/e2e)
#   4. lint        — cargo fmt, clippy -D warnings (native + wasm32), tsc (scripts/lint.sh)
#   5. fuzz        — each cargo-fuzz target for 20 s from the fixture corpus (scripts/fuzz.sh)
# Every suite runs even if an earlier one fails; the exit code is non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
export PATH="$HOME/.cargo/bin:$PATH"

bash scripts/setup.sh || exit 1

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
failed_suites=()
run_suite() {
  local name=$1; shift
  step "$name: $*"
  "$@" 2>&1 | tee "$logs/$name.log"
  local rc=${PIPESTATUS[0]}
  ((rc == 0)) || failed_suites+=("$name (exit $rc)")
}

export QUANTLAB_REQUIRE_GPU=1
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
run_suite cargo cargo test --workspace --color never
run_suite vitest node_modules/.bin/vitest run --config tests/vitest.config.ts
run_suite e2e node --test --test-reporter=spec tests/e2e/
run_suite lint bash scripts/lint.sh
run_suite fuzz bash scripts/fuzz.sh 20

# One closing line over all suites, counted from each runner's own summary.
passed=0; failed=0
while read -r p f; do passed=$((passed + p)); failed=$((failed + f)); done < <(
  grep -hoE 'test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' "$logs/cargo.log" | awk '{print $4, $6}'
  sed -E 's/\x1b\[[0-9;]*m//g' "$logs/vitest.log" | grep -hE '^ +Tests +' | awk '{p=0;f=0; for(i=1;i<=NF;i++){if($i=="passed")p=$(i-1); if($i=="failed")f=$(i-1)} print p, f}'
  grep -hE '^ℹ (pass|fail) [0-9]+' "$logs/e2e.log" | awk '{a[$2]=$3} END {print a["pass"]+0, a["fail"]+0}'
)
echo
if ((${#failed_suites[@]})); then
  echo "FAILED suites: ${failed_suites[*]}"
  failed=$((failed > 0 ? failed : 1))
fi
echo "quantlab: $passed passed, $failed failed"
((${#failed_suites[@]} == 0))
