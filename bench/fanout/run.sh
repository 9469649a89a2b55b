#!/usr/bin/env bash
# The live-progress fan-out benchmark (issue 4): an offered-load sweep of
# events to 1,000 WebSocket watchers of one user, spread over 4 client
# processes, against `litchi serve` and a plain Node `ws` broadcast server side
# by side (delivered messages/s and latency p50/p99 per step, the highest rate
# with p99 under 50 ms), and server RSS per idle socket at 10,000. Writes the
# "fanout" section of docs/benchmarks.md and bench/out/fanout.json.
# Details: bench/fanout/bench.py.
#   bench/fanout/run.sh [--litchi PATH] [--sockets N] [--clients N] [--step-seconds S]
#                       [--start-rate R] [--max-steps N] [--budget S] [--idle N]
#                       [--only sweep,idle] [--no-docs]
# Without --litchi (or LITCHI_BENCH_BIN) it uses build/release/litchi, built
# here with the release preset when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

litchi="${LITCHI_BENCH_BIN:-build/release/litchi}"
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --litchi) litchi="$2"; shift 2 ;;
    --litchi=*) litchi="${1#--litchi=}"; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
if [ ! -x "$litchi" ]; then
  cmake --preset release >/dev/null
  cmake --build --preset release --target litchi
fi
if [ ! -d tests/clients/node_modules/ws ]; then
  npm ci --prefix tests/clients --no-audit --no-fund
fi

# 10,000 idle sockets need 10,000 descriptors in the server and as many in the
# client (each process has its own limit, inherited from here), plus a few.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt 11000 ]; then
  echo "fanout: need at least 11000 open files per process (ulimit -n is $(ulimit -n))" >&2
  exit 1
fi
exec /usr/bin/python3 bench/fanout/bench.py --litchi "$(realpath "$litchi")" "${args[@]}"
