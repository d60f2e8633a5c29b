#!/usr/bin/env bash
# Builds the wasm core for the web lab: cargo (release, wasm32) → wasm-bindgen (--target web)
# → wasm-opt (npm binaryen@132; Debian's binaryen 108 produces broken modules, never use it).
# Output: web/src/pkg/ (git-ignored). Skips the bindgen/opt steps when the cargo output is
# unchanged since the last run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

out=web/src/pkg
raw=${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/release/quantlab.wasm
stamp=.setup/wasm.sha256

cargo_wasm build -p quantlab --lib --release --target wasm32-unknown-unknown

sum=$(sha256sum "$raw" | cut -d' ' -f1)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$sum" && -f "$out/quantlab_bg.wasm" && -f "$out/quantlab.js" ]]; then
  note "wasm core unchanged ($out)"
  exit 0
fi
step "wasm-bindgen → $out"
rm -rf "$out"
wasm-bindgen --target web --out-dir "$out" --out-name quantlab "$raw"
step "wasm-opt -O3"
# Chromium and Node 20 support these post-MVP features; rustc already emits them.
node_modules/.bin/wasm-opt -O3 \
  --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue --enable-simd \
  "$out/quantlab_bg.wasm" -o "$out/quantlab_bg.opt.wasm"
mv "$out/quantlab_bg.opt.wasm" "$out/quantlab_bg.wasm"
mkdir -p .setup && echo "$sum" > "$stamp"
note "wasm core: $(du -h "$out/quantlab_bg.wasm" | cut -f1)"
