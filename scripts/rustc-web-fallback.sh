#!/usr/bin/env bash
# Fallback wasm32 toolchain when `rustup target add wasm32-unknown-unknown` is impossible:
# Debian 12's rustc-web/cargo-web (1.96, bookworm-security) and rust-web-src, unpacked
# privately under .setup/rustc-web/root (installed system-wide they would clash with rustup's
# toolchain), building std from source with -Zbuild-std (RUSTC_BOOTSTRAP=1) and linking with
# LLVM's wasm-ld. Writes .setup/rustc-web/env, which scripts/lib.sh (cargo_wasm) sources.
# See DEVELOPERS.md.
#
# Layout facts this relies on (checked with 1.96.0+dfsg1-1~deb12u2):
#  - rustc's sysroot is the directory above its binary, so root/usr; rust-web-src ships
#    usr/lib/rustlib/src/rust -> ../../../src/rustc-<ver>, which is exactly where cargo's
#    -Zbuild-std looks for library/ (no override variable needed). Its library/vendor and
#    library/Cargo.lock pin std's dependencies (cargo fetches them from crates.io).
#  - rustc needs librustc_driver-*.so from libstd-rust-web-<ver> (put on LD_LIBRARY_PATH)
#    and the system's libLLVM (libllvm<N>); cargo needs libgit2-1.5. These plain shared
#    libraries, and lld-<N> for wasm-ld, are installed system-wide with apt (needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

dest=.setup/rustc-web
min_version=1.87 # the crate's dependencies (wgpu 30) need Rust 1.87

candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}'; }
ver=$(candidate rustc-web)
if [[ -z "$ver" || "$ver" == "(none)" ]] && [[ $(id -u) -eq 0 ]]; then
  apt-get update -qq || die "apt-get update failed: is the Debian package registry reachable?"
  ver=$(candidate rustc-web)
fi
[[ -n "$ver" && "$ver" != "(none)" ]] \
  || die "apt knows no rustc-web package." "The fallback needs Debian 12 (bookworm) with bookworm-security in the apt sources; run apt-get update as root."
dpkg --compare-versions "$ver" ge "$min_version" \
  || die "Debian's rustc-web candidate is $ver, older than $min_version which the crate needs." \
         "Enable bookworm-security (it carries rustc-web 1.96) and run apt-get update."

# The runtime package name carries the Rust version (libstd-rust-web-1.96), and it depends on
# the LLVM major version rustc is linked against (libllvm22): use the same lld version.
libstd=$(apt-cache show "libstd-rust-web-dev=$ver" | grep -m1 -o 'libstd-rust-web-[0-9.]\+' || true)
[[ -n "$libstd" ]] || die "could not find the libstd-rust-web runtime package for rustc-web $ver."
llvm=$(apt-cache show "$libstd=$ver" | grep -m1 -o 'libllvm[0-9]\+' | tr -dc 0-9 || true)
[[ -n "$llvm" ]] || die "could not tell which LLVM $libstd=$ver is linked against."

# System-wide: only shared libraries and lld, none of which clash with rustup.
sys_packages=("lld-$llvm" libgit2-1.5)
missing=()
for p in "${sys_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  step "Installing ${missing[*]} (wasm-ld, and libraries rustc-web/cargo-web need)"
  [[ $(id -u) -eq 0 ]] || die "installing ${missing[*]} needs root." "Run as root, or: apt-get install --no-install-recommends ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed (see the messages above)."
fi
wasm_ld=/usr/lib/llvm-$llvm/bin/wasm-ld
[[ -x "$wasm_ld" ]] || die "lld-$llvm is installed but $wasm_ld is missing."

step "Unpacking Debian rustc-web $ver into $dest (private, ~400 MB)"
rm -rf "$dest" && mkdir -p "$dest/debs"
debs=("rustc-web=$ver" "cargo-web=$ver" "libstd-rust-web-dev=$ver" "$libstd=$ver" "rust-web-src=$ver")
# apt-get download as root warns that the _apt user cannot write here; harmless.
( cd "$dest/debs" && apt-get download -q "${debs[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' ) \
  || true
for d in "${debs[@]}"; do
  deb=$(ls "$dest/debs/${d%%=*}_"*.deb 2>/dev/null) || die "apt-get download ${d} failed: is the Debian package registry reachable?"
  dpkg-deb -x "$deb" "$dest/root"
done
rm -rf "$dest/debs"
root=$dest/root/usr
src=$root/src/rustc-${ver%%+*}
# Only library/ is needed by -Zbuild-std; the compiler and tool sources are ~370 MB.
rm -rf "$src/compiler" "$src/src"

# Check the unpacked toolchain before declaring it usable.
export LD_LIBRARY_PATH="$root/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
for bin in "$root/bin/rustc" "$root/bin/cargo"; do
  [[ -x "$bin" ]] || die "$bin is missing from the unpacked packages."
  if ldd "$bin" | grep -q 'not found'; then
    die "$bin cannot load these libraries:" "$(ldd "$bin" | grep 'not found')"
  fi
done
"$root/bin/rustc" -V >/dev/null || die "the unpacked rustc does not run."
sysroot=$("$root/bin/rustc" --print sysroot)
[[ -f "$sysroot/lib/rustlib/src/rust/library/std/Cargo.toml" ]] \
  || die "std's sources are not at $sysroot/lib/rustlib/src/rust/library, where -Zbuild-std looks."

# The env file locates root/ relative to itself, so it survives moving the checkout.
cat > "$dest/env.part" <<ENV
# Written by scripts/rustc-web-fallback.sh; sourced by cargo_wasm in scripts/lib.sh.
# Use with: cargo build ... --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort
_rw_root="\$(cd "\$(dirname "\${BASH_SOURCE[0]}")" && pwd)/root/usr"
export PATH="\$_rw_root/bin:\$PATH"
export RUSTC="\$_rw_root/bin/rustc"
export RUSTDOC="\$_rw_root/bin/rustdoc"
export LD_LIBRARY_PATH="\$_rw_root/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$wasm_ld"
unset _rw_root
ENV
mv "$dest/env.part" "$dest/env"
note "rustc-web toolchain ($("$root/bin/rustc" -V)) unpacked in $dest"
