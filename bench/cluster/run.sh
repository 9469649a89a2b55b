#!/usr/bin/env bash
# The scale-out benchmark: 1, 2 and 3 nodes on one PostgreSQL against a
# latency-bound origin (SQLite beside them), the queue alone
# (litchi_queue_bench), progress latency across nodes, and accepting a
# 1,000,000-URL job. Prints a table, writes bench/cluster/results.json and the
# "Scale-out" section of docs/benchmarks.md. See bench/cluster/bench.py.
#   bench/cluster/run.sh [--images 3000] [--jobs 16] [--parts i,ii,iii,iv] [--no-docs] ...
# Builds build/release/litchi and litchi_queue_bench first (only those targets).
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake --preset release >/dev/null
cmake --build --preset release -j "${JOBS:-2}" --target litchi litchi_queue_bench
exec /usr/bin/python3 bench/cluster/bench.py "$@"
