#!/usr/bin/env bash
# Builds the two wasm cores of the web lab: cargo (release, wasm32) → wasm-bindgen (--target web)
# → wasm-opt (npm binaryen@132; Debian's binaryen 108 produces broken modules, never use it).
# - web/src/pkg/: one thread, for pages that are not cross-origin isolated (and the wasm tests);
# - web/src/pkg-threads/: atomics and shared memory, whose `initThreadPool` starts web workers
#   (wasm-bindgen-rayon); the lab worker loads it where the page is cross-origin isolated.
# Both git-ignored. Each skips its bindgen/opt steps when its cargo output is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

target=${CARGO_TARGET_DIR:-target}

# bindgen_opt RAW OUT STAMP [WASM-OPT FLAGS...]: wasm-bindgen and wasm-opt of RAW into OUT.
bindgen_opt() {
  local raw=$1 out=$2 stamp=$3
  shift 3
  local sum
  sum=$(sha256sum "$raw" | cut -d' ' -f1)
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$sum" && -f "$out/quantlab_bg.wasm" && -f "$out/quantlab.js" ]]; then
    note "wasm core unchanged ($out)"
    return
  fi
  step "wasm-bindgen → $out"
  rm -rf "$out"
  wasm-bindgen --target web --out-dir "$out" --out-name quantlab "$raw"
  step "wasm-opt -O3 ($out)"
  # Chromium and Node 20 support these post-MVP features; rustc already emits them.
  node_modules/.bin/wasm-opt -O3 \
    --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue --enable-simd "$@" \
    "$out/quantlab_bg.wasm" -o "$out/quantlab_bg.opt.wasm"
  mv "$out/quantlab_bg.opt.wasm" "$out/quantlab_bg.wasm"
  mkdir -p .setup && echo "$sum" > "$stamp"
  note "wasm core: $(du -h "$out/quantlab_bg.wasm" | cut -f1) ($out)"
}

cargo_wasm build -p quantlab --lib --release --target wasm32-unknown-unknown
bindgen_opt "$target/wasm32-unknown-unknown/release/quantlab.wasm" web/src/pkg .setup/wasm.sha256

# `cargo rustc`: the link arguments go to this crate's link only, not into every dependency's flags.
cargo_wasm_threads rustc -p quantlab --lib --crate-type cdylib --release --target wasm32-unknown-unknown \
  --target-dir "$target/wasm-threads" -- "${WASM_THREADS_LINK_ARGS[@]}"
bindgen_opt "$target/wasm-threads/wasm32-unknown-unknown/release/quantlab.wasm" web/src/pkg-threads \
  .setup/wasm-threads.sha256 --enable-threads
# wasm-bindgen-rayon's pool worker (pkg-threads/snippets/…/workerHelpers.js) imports the module as
# its package folder ('../../..'); this names the entry, as wasm-pack's package.json would.
echo '{ "name": "quantlab-threads", "type": "module", "main": "quantlab.js", "types": "quantlab.d.ts" }' \
  > web/src/pkg-threads/package.json
