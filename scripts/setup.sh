#!/usr/bin/env bash
# Idempotent set-up of everything the build and the tests need on a fresh machine, and
# nothing else: the wasm32 target, wasm-bindgen-cli at exactly Cargo.lock's version (into
# .tools/, git-ignored), Debian's chromium + chromium-driver, and the npm dev dependencies.
# Every step is skipped when already satisfied, so a warm run takes about a second.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
cd "$root"

say() { printf '[setup] %s\n' "$*"; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# The CLI must match the wasm-bindgen crate in Cargo.lock exactly, or generated glue breaks.
want=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
have=$("$tools/bin/wasm-bindgen" --version 2>/dev/null | awk '{print $2}' || true)
if [ -z "$want" ]; then echo "[setup] cannot find wasm-bindgen in Cargo.lock" >&2; exit 1; fi
if [ "$want" != "$have" ]; then
  say "installing wasm-bindgen-cli $want into .tools (a few minutes, once)"
  export CARGO_TARGET_DIR="$tools/target"
  # --locked first; its lockfile can want crate versions the registry lacks, then resolve fresh.
  cargo install --quiet --locked wasm-bindgen-cli --version "$want" --root "$tools" \
    || cargo install --quiet wasm-bindgen-cli --version "$want" --root "$tools"
  unset CARGO_TARGET_DIR
fi

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  say "installing Debian chromium and chromium-driver"
  sudo_cmd=""
  if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# npm ci only when package-lock.json changed since the last install.
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f node_modules/.kalam-lock-sum ] || [ "$(cat node_modules/.kalam-lock-sum)" != "$lock_sum" ]; then
  say "installing npm dev dependencies"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > node_modules/.kalam-lock-sum
fi
