#!/usr/bin/env bash
# Fallback wasm32 toolchain when `rustup target add wasm32-unknown-unknown` is impossible:
# Debian's rustc-web/cargo-web (1.96) and rust-web-src, unpacked privately under .setup/
# (they conflict with rustup's toolchain if installed system-wide), building std from source
# with -Zbuild-std (RUSTC_BOOTSTRAP=1) and linking with lld's wasm-ld. See DEVELOPERS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
dest=.setup/rustc-web
rm -rf "$dest" && mkdir -p "$dest/debs"
( cd "$dest/debs" && apt-get download rustc-web cargo-web rust-web-src libstd-rust-web-dev 2>/dev/null \
    || apt-get download rustc-web cargo-web rust-web-src ) || die "apt-get download rustc-web failed"
for deb in "$dest"/debs/*.deb; do dpkg -x "$deb" "$dest/root"; done
apt-get install -y -qq --no-install-recommends lld-22 >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends lld >/dev/null
wasm_ld=$(command -v wasm-ld-22 || command -v wasm-ld || ls /usr/lib/llvm-*/bin/wasm-ld 2>/dev/null | tail -1)
[[ -n "$wasm_ld" ]] || die "no wasm-ld found after installing lld"
root=$(cd "$dest/root" && pwd)
rustc=$(ls "$root"/usr/bin/rustc* | head -1)
cargo_bin=$(ls "$root"/usr/bin/cargo* | head -1)
cat > "$dest/env" <<ENV
export RUSTC_BOOTSTRAP=1
export RUSTC="$rustc"
export CARGO="$cargo_bin"
export __CARGO_TESTS_ONLY_SRC_ROOT="$root/usr/src/rustc-web/library"
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$wasm_ld"
export LD_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu:$root/usr/lib/rust-web/lib:\${LD_LIBRARY_PATH:-}"
cargo() { "$cargo_bin" "\$@"; }
ENV
note "rustc-web toolchain unpacked in $dest"
