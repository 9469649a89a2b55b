#!/usr/bin/env bash
# Fair shares: a fast job beside a slow-host job, against the same job alone,
# through `litchi serve` (issue 9's target: within 1.5x). Writes the "fair"
# section of docs/benchmarks.md. See bench/serve/fair.py.
#   bench/serve/fair.sh [--litchi PATH] [--baseline PATH] [--repeat N] [--no-docs]
# Uses build/release/litchi (built here if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."

litchi=build/release/litchi
for arg in "$@"; do
  case "$arg" in --litchi=*|--litchi) litchi="" ;; esac
done
if [ -n "$litchi" ] && [ -z "${LITCHI_BENCH_BIN:-}" ] && [ ! -x "$litchi" ]; then
  cmake --preset release >/dev/null
  cmake --build --preset release --target litchi
fi
exec /usr/bin/python3 bench/serve/fair.py "$@"
