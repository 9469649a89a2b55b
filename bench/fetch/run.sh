#!/usr/bin/env bash
# The `litchi fetch` benchmark: litchi vs curl --parallel, wget2 and aria2c on
# 5,000 images from nginx on 127.0.0.1, plus a 50 ms latency case. Writes the
# "fetch" section of docs/benchmarks.md. See bench/fetch/bench.py for details.
#   bench/fetch/run.sh [--litchi PATH] [--repeat N] [--no-docs]
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
exec /usr/bin/python3 bench/fetch/bench.py "$@"
