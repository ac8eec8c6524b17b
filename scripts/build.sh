#!/usr/bin/env bash
# Builds the npm packages into dist/ (set-up first, idempotent). Arguments go to build.mjs:
# bundle names from wasm-pack.toml (default: all) and --dev for a fast unoptimised build.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
export PATH="$root/.tools/bin:$root/node_modules/.bin:$PATH"
exec node "$root/scripts/build.mjs" "$@"
