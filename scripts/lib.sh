# Shared helpers for the setup/build/test scripts (sourced, not run).
step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() {
  printf '\nquantlab setup failed: %s\n' "$1" >&2
  [[ $# -gt 1 ]] && printf '%s\n' "${@:2}" >&2
  exit 1
}
# Runs cargo for wasm32, preferring the rustup target; falls back to the private Debian
# rustc-web toolchain that setup.sh unpacks when rustup cannot add the target (DEVELOPERS.md).
cargo_wasm() {
  if [[ -f .setup/rustc-web/env ]]; then
    # shellcheck disable=SC1091
    ( source .setup/rustc-web/env && cargo "$@" -Zbuild-std=std,panic_abort )
  else
    cargo "$@"
  fi
}
# Runs cargo for the threaded wasm32 core: std rebuilt with atomics (-Zbuild-std under
# RUSTC_BOOTSTRAP=1; rustup's toolchain needs its rust-src component). RUSTFLAGS replaces
# .cargo/config.toml's wasm32 flags, so SIMD128 is named again. Callers give it its own target
# folder: other RUSTFLAGS would otherwise rebuild the single-thread core's artifacts each time.
cargo_wasm_threads() {
  local flags="-C target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128"
  if [[ -f .setup/rustc-web/env ]]; then
    # shellcheck disable=SC1091
    ( source .setup/rustc-web/env && RUSTFLAGS="$flags" cargo -Zbuild-std=std,panic_abort "$@" )
  else
    RUSTC_BOOTSTRAP=1 RUSTFLAGS="$flags" cargo -Zbuild-std=std,panic_abort "$@"
  fi
}

# The link of the threaded core (rustc 1.95 does not pass these for +atomics on wasm32): one memory, shared
# between the pool's workers and imported (wasm-bindgen creates it as a SharedArrayBuffer), up to
# 4 GiB as the single-thread core; and the thread-local storage symbols wasm-bindgen's thread
# start-up needs.
WASM_THREADS_LINK_ARGS=(
  -C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--max-memory=4294967296
  -C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size
  -C link-arg=--export=__tls_align -C link-arg=--export=__tls_base
)
