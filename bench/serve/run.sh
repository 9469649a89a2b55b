#!/usr/bin/env bash
# The `litchi serve` benchmark: one 5,000-URL job through the server (POST to
# `done`) against `litchi fetch` and `curl --parallel` on the same nginx origin
# as bench/fetch, plus the time to accept a 100,000-URL job. Writes the
# "Server" section of docs/benchmarks.md. See bench/serve/bench.py.
#   bench/serve/run.sh [--litchi PATH] [--repeat N] [--where disk,tmpfs] [--no-docs]
# Uses build/release/litchi (built here if missing; `make bench` builds it too).
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
exec /usr/bin/python3 bench/serve/bench.py "$@"
