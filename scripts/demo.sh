#!/usr/bin/env bash
# Runs the demo: builds the packages (release) and the test server, then
# www-demo/tools/run.mjs starts kalam-testserver as the embedded server (serving the site,
# with the demo schema and users), prints the URL and the credentials and runs until Ctrl-C.
# The site includes the React example at /react/ (bundled from www-demo/react on start).
# With KALAMDB_URL (+ KALAMDB_ROOT_USER/KALAMDB_ROOT_PASSWORD) it seeds that server instead,
# serves the site itself and starts no test server.
#   DEMO_PORT=N          port to serve on (default: a free one)
#   DEMO_SKIP_BUILD=1    use dist/ and target/debug/kalam-testserver as they are (tests)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/setup.sh
export PATH="$root/.tools/bin:$root/node_modules/.bin:$PATH"

if [ "${DEMO_SKIP_BUILD:-}" != 1 ]; then
  echo "==> building the npm packages (release)"
  node scripts/build.mjs
fi
if [ -z "${KALAMDB_URL:-}" ] && [ -z "${DEMO_TESTSERVER_BIN:-}" ]; then
  if [ "${DEMO_SKIP_BUILD:-}" != 1 ] || [ ! -x target/debug/kalam-testserver ]; then
    echo "==> building the test server"
    # The default target dir, so builds of scripts/test.sh are reused.
    env -u CARGO_TARGET_DIR cargo build -p kalam-testserver 2>&1 | tail -n 2
  fi
fi

exec node www-demo/tools/run.mjs
