#!/usr/bin/env bash
# Runs every test of kalam-wasm, from a fresh clone: set-up (idempotent), formatting and
# lints, native core and test-server tests, the package build, wasm-bindgen-test in headless
# Chromium (page and dedicated worker) against a freshly started test server, and the npm
# package tests. Ends with one line: "N passed, M failed".
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
started=$(date +%s)

bash scripts/setup.sh
export PATH="$root/.tools/bin:$root/node_modules/.bin:$PATH"
export CHROMEDRIVER=/usr/bin/chromedriver
export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-60}
mkdir -p tests/output
log=tests/output/test-run.log
: > "$log"

server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
}
summary() {
  local rc=$?
  cleanup
  # cargo (native and wasm runner) prints "test result: ok. N passed; M failed; ...",
  # node's runner "# pass N" / "# fail N".
  local passed failed
  passed=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) if ($i ~ /^passed;?$/) s += $(i-1) } /^# pass / { s += $3 } END { print s + 0 }' "$log")
  failed=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) if ($i ~ /^failed;?$/) s += $(i-1) } /^# fail / { s += $3 } END { print s + 0 }' "$log")
  if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then failed=1; echo "a step failed before its tests could report (exit $rc): see above"; fi
  echo
  echo "total time: $(( $(date +%s) - started )) s"
  echo "$passed passed, $failed failed"
  exit "$rc"
}
trap summary EXIT

step() {
  echo
  echo "==> $1"
  shift
  "$@" 2>&1 | tee -a "$log"
  return "${PIPESTATUS[0]}"
}

step "rustfmt" cargo fmt --all --check
step "clippy (native, workspace)" cargo clippy --workspace --all-targets -- -D warnings
step "clippy (wasm32, client + consumer)" cargo clippy -p kalam-wasm --target wasm32-unknown-unknown --all-targets -- -D warnings
step "clippy (wasm32, consumer bundle alone)" cargo clippy -p kalam-wasm --target wasm32-unknown-unknown --lib --no-default-features --features consumer -- -D warnings
step "clippy (wasm32, client bundle alone)" cargo clippy -p kalam-wasm --target wasm32-unknown-unknown --lib --no-default-features --features client -- -D warnings
step "native tests (core and test server)" cargo test --workspace
step "build npm packages (tsc typechecks the bindings)" node scripts/build.mjs

echo
echo "==> start the test server"
cargo build -p kalam-testserver 2>&1 | tail -n 2
export KALAMDB_ROOT_PASSWORD=${KALAMDB_ROOT_PASSWORD:-kalam-test-root}
server_log=tests/output/testserver.log
target/debug/kalam-testserver --listen 127.0.0.1:0 > "$server_log" 2>&1 &
server_pid=$!
url=""
for _ in $(seq 1 300); do
  url=$(sed -n 's/^kalam-testserver listening on \(http:[^ ]*\).*/\1/p' "$server_log" | head -n 1)
  [ -n "$url" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$url" ]; then echo "the test server did not start:"; cat "$server_log"; exit 1; fi
echo "test server at $url"
export KALAMDB_TEST_URL="$url" KALAMDB_TEST_ROOT_PASSWORD="$KALAMDB_ROOT_PASSWORD" KALAMDB_URL="$url"

step "wasm-bindgen-test in headless Chromium (page and dedicated worker)" \
  cargo test -p kalam-wasm --target wasm32-unknown-unknown --test browser_main --test browser_worker
step "npm package tests (Node $(node --version), headless Chromium, tsc)" node --test tests/packages/
# Files run one at a time; those that inject server-wide faults start private servers.
KALAM_E2E_OWN_SERVER=1 step "end-to-end tests against test servers (Node and headless Chromium, pages and workers)" \
  node --test --test-concurrency=1 tests/e2e/
# Time-bounded fuzzing of every network decoder (src/core/fuzz_tests.rs); prints its seed.
step "fuzz the decoders (${KALAM_FUZZ_SECS:=45} s)" env KALAM_FUZZ_SECS="$KALAM_FUZZ_SECS" \
  cargo test -p kalam-wasm --lib fuzz_for_a_while -- --ignored --nocapture
