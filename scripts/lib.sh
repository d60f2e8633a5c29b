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
