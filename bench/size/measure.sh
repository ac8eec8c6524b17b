#!/usr/bin/env bash
# Measures the release .wasm of the client and consumer bundles the way scripts/build.mjs
# builds them (cargo release -> wasm-bindgen --target web -> wasm-opt with the flags in
# wasm-pack.toml), without tsc or packaging, and prints gzip -9 bytes of each .wasm and of
# its minified wasm-bindgen glue. For comparing one change at a time; the shipped numbers
# are the size report of `node scripts/build.mjs`.
# Usage: bash bench/size/measure.sh [client|consumer ...]   (default: both)
#   SIZE_TOP=40      with twiggy on PATH (or ~/.cargo/bin), also print its top-N of each bundle
#                    (a second wasm-opt run that keeps names, so the figures are per function)
#   WASM_OPT_FLAGS   override the wasm_opt line of wasm-pack.toml (space separated)
#   SIZE_OUT         where to write the modules (default /tmp/kalam-size)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export PATH="$root/.tools/bin:$root/node_modules/.bin:$HOME/.cargo/bin:$PATH"
out=${SIZE_OUT:-/tmp/kalam-size}
mkdir -p "$out"
bundles=("$@"); [ ${#bundles[@]} -eq 0 ] && bundles=(client consumer)
target_dir=${CARGO_TARGET_DIR:-$root/target}

# The wasm_opt flags and features come from wasm-pack.toml, so this measures what ships.
read_toml() { node --input-type=module -e "
  import { parse } from 'smol-toml'; import { readFileSync } from 'node:fs';
  const m = parse(readFileSync('wasm-pack.toml', 'utf8'));
  const [what, name] = process.argv.slice(1);
  console.log(what === 'opt' ? m.build.wasm_opt.join(' ') : m.bundles[name].features.join(','));" "$@"; }
opt_flags=${WASM_OPT_FLAGS:-$(read_toml opt)}

gz() { gzip -9 -c "$1" | wc -c; }
printf '%-9s %10s %10s %10s\n' bundle wasm_raw wasm_gzip glue_gzip
for b in "${bundles[@]}"; do
  features=$(read_toml features "$b")
  cargo build -q --lib --target wasm32-unknown-unknown -p kalam-wasm --no-default-features \
    --features "$features" --profile release 2>"$out/$b.cargo.log" || { cat "$out/$b.cargo.log"; exit 1; }
  rm -rf "$out/$b"; mkdir -p "$out/$b"
  wasm-bindgen --target web --out-dir "$out/$b" --out-name k \
    "$target_dir/wasm32-unknown-unknown/release/kalam_wasm.wasm"
  # shellcheck disable=SC2086
  wasm-opt $opt_flags "$out/$b/k_bg.wasm" -o "$out/$b/opt.wasm" >"$out/$b/names.json"
  # The short import/export names of --minify-imports-and-exports-and-modules, in the glue.
  node scripts/wasm-names.mjs "$out/$b/names.json" "$out/$b/opt.wasm" "$out/$b/k.js"
  esbuild "$out/$b/k.js" --minify --format=esm --target=es2022 --log-level=warning >"$out/$b/k.min.js"
  printf '%-9s %10d %10d %10d\n' "$b" "$(wc -c <"$out/$b/opt.wasm")" "$(gz "$out/$b/opt.wasm")" "$(gz "$out/$b/k.min.js")"
  if [ -n "${SIZE_TOP:-}" ] && command -v twiggy >/dev/null; then
    # Same passes, names kept (--keep-debug, --debuginfo), so twiggy can attribute bytes to
    # functions.
    wasm-bindgen --target web --keep-debug --out-dir "$out/$b/named" --out-name k \
      "$target_dir/wasm32-unknown-unknown/release/kalam_wasm.wasm"
    # shellcheck disable=SC2086
    wasm-opt $(echo "$opt_flags" | sed 's/--strip-debug//; s/--strip-producers//') --debuginfo \
      "$out/$b/named/k_bg.wasm" -o "$out/$b/named.wasm" >/dev/null
    twiggy top -n "$SIZE_TOP" "$out/$b/named.wasm" >"$out/$b/twiggy.txt"
    echo "  twiggy top $SIZE_TOP -> $out/$b/twiggy.txt"
  fi
done
