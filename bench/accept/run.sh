#!/usr/bin/env bash
# Accepting a large job: POST /api/jobs with 100,000 and 1,000,000 URLs as
# text/plain to `litchi serve` on the embedded SQLite store, request sent ->
# 201 received, and the server's peak RSS. Builds nothing. See bench.py.
#   bench/accept/run.sh [--litchi PATH]... [--repeat N] [--sizes 100000,1000000] [--tmpfs]
# (--litchi repeatable: binaries take turns; default build/release/litchi)
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 bench/accept/bench.py "$@"
