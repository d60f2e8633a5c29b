#!/usr/bin/env bash
# Lint gates run by `npm test` (scripts/test.sh): formatting, clippy with warnings as errors for the
# native build and for the wasm32 core the lab ships, and the TypeScript type check of web/ and tests/.
# Every gate runs even if an earlier one fails; the exit code is non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
export PATH="$HOME/.cargo/bin:$PATH"

failed=()
gate() {
  local name=$1; shift
  step "lint: $name"
  "$@" || failed+=("$name")
}

gate "cargo fmt --check" cargo fmt --all --check
gate "clippy (native, all targets)" cargo clippy --workspace --all-targets --color never -- -D warnings
if [[ -f .setup/rustc-web/env ]]; then
  # The Debian rustc-web fallback (DEVELOPERS.md) ships no clippy; rustup's wasm32 target is missing.
  echo "lint: clippy (wasm32) skipped: the wasm32 target comes from the rustc-web fallback, which has no clippy"
else
  gate "clippy (wasm32 core)" cargo clippy -p quantlab --lib --target wasm32-unknown-unknown --color never -- -D warnings
fi
gate "tsc (web)" node_modules/.bin/tsc -p web/tsconfig.json --noEmit
gate "tsc (tests)" node_modules/.bin/tsc -p tests/tsconfig.json

if ((${#failed[@]})); then
  echo "lint: FAILED: ${failed[*]}"
  exit 1
fi
echo "lint: all gates passed"
