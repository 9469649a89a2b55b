#!/usr/bin/env bash
# The live-progress fan-out benchmark (issue 4): 1,000 WebSocket watchers of
# one user on a running job, latency and messages/s, against `litchi serve`
# and a plain Node `ws` broadcast server; RSS per idle socket at 10,000.
# Details: bench/fanout/bench.py. Results: bench/out/fanout.json.
#   bench/fanout/run.sh [--litchi PATH] [--watchers N] [--seconds S] [--idle N]
#                       [--only latency,throughput,idle]
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
exec /usr/bin/python3 bench/fanout/bench.py --litchi "$litchi" "${args[@]}"
