#!/usr/bin/env bash
# Runs the web app's browser tests (issue 5) and litchi-client's (issue 13:
# its README example in the browser, the client in Node): Debian's chromium
# via playwright-core against a real `litchi serve` and the test origin.
#
#   LITCHI_BIN=build/asan/litchi tests/browser/run.sh [extra node --test args]
#   e.g. ... run.sh --test-name-pattern='^1:'
#
# It builds clients/js/dist (the litchi-client package, which the app and
# client-example.test.mjs use) and web/dist when missing (npm ci + npm run
# build in each), installs playwright-core and axe-core here with `npm ci` (no
# browser download), then runs `node --test` (TAP lines for CI). Each test
# bounds itself (its own timeout option); --test-timeout, which node also
# applies to a whole test file, is the overall budget, so a file of many tests
# is not cut at one test's limit.
# The test harness (harness.mjs) starts the origin (tests/origin/origin.py) and one `litchi serve --allow-private` per
# test on a fresh data folder, with a user made by `litchi user add`. The test
# process runs in its own process group, which is killed on exit, so nothing
# it started outlives this script even on failure or timeout.
# Screenshots go to $LITCHI_SCREENSHOT_DIR (default build/browser-screenshots);
# --update-docs copies the README's four into docs/screenshots afterwards.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# Below ctest's TIMEOUT (1800 s) so this script, not ctest, ends a hung run and cleans up.
overall_timeout_s=${LITCHI_BROWSER_TIMEOUT:-1740}

update_docs=0
args=()
for arg in "$@"; do
  if [[ $arg == --update-docs ]]; then update_docs=1; else args+=("$arg"); fi
done

if [[ -z ${LITCHI_BIN:-} ]]; then
  echo "run.sh: set LITCHI_BIN to the built litchi binary (e.g. build/asan/litchi)" >&2
  exit 2
fi
LITCHI_BIN=$(cd "$(dirname "$LITCHI_BIN")" && pwd)/$(basename "$LITCHI_BIN")
export LITCHI_BIN
export LITCHI_SCREENSHOT_DIR=${LITCHI_SCREENSHOT_DIR:-$repo/build/browser-screenshots}
chromium=${CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $chromium ]]; then
  echo "run.sh: $chromium is missing (apt-get install chromium, or scripts/install-deps.sh test)" >&2
  exit 2
fi

if [[ ! -f $repo/clients/js/dist/index.js ]]; then
  echo "run.sh: building the litchi-client package (clients/js/dist is missing)" >&2
  (cd "$repo/clients/js" && npm ci --no-audit --no-fund && npm run build)
fi
if [[ ! -f $repo/web/dist/index.html ]]; then
  echo "run.sh: building the web app (web/dist is missing)" >&2
  (cd "$repo/web" && npm ci --no-audit --no-fund && npm run build)
fi
if [[ ! -f $here/node_modules/playwright-core/package.json || ! -f $here/node_modules/axe-core/axe.min.js || ! -f $here/node_modules/ws/package.json ]]; then
  (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi

# The tests and everything they spawn share one process group (set -m), so the
# trap can end all of it: servers, origin, browser.
test_pid=
cleanup() {
  if [[ -n $test_pid ]] && kill -0 "$test_pid" 2>/dev/null; then
    kill -TERM -- "-$test_pid" 2>/dev/null || true
    sleep 2
    kill -KILL -- "-$test_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT INT TERM

cd "$here"
set -m
timeout --kill-after=15 "$overall_timeout_s" \
  node --test --test-concurrency=1 --test-timeout=$((overall_timeout_s * 1000)) "${args[@]}" ./*.test.mjs &
test_pid=$!
set +m
status=0
wait "$test_pid" || status=$?

if [[ $update_docs == 1 && $status == 0 ]]; then
  mkdir -p "$repo/docs/screenshots"
  for name in 1-job-progress 2-jobs-list 4-reconnecting 7-failed-list; do
    cp "$LITCHI_SCREENSHOT_DIR/$name.png" "$repo/docs/screenshots/$name.png"
  done
  echo "run.sh: README screenshots copied to docs/screenshots" >&2
fi
exit "$status"
