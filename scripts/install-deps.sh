#!/usr/bin/env bash
# Installs the Debian 12 packages Litchi needs to build, test and benchmark,
# only those missing. Idempotent; run as root (make run / make test call it).
#   scripts/install-deps.sh            build + run
#   scripts/install-deps.sh test       + what the tests need (chromium, python3-websockets,
#                                        PostgreSQL 15 for scripts/pg-temp.sh, nginx for the cluster demo,
#                                        clang-14 and libFuzzer for make fuzz)
#   scripts/install-deps.sh cluster    + PostgreSQL 15 and nginx (make cluster)
#   scripts/install-deps.sh bench      + the peers the benchmarks compare against (and valgrind)
#   scripts/install-deps.sh corpus     + the encoders tests/unit/images/make-corpus.sh runs
# Debian's postgresql-15 may create and start a system cluster (15/main on
# port 5432); the tests never use it: scripts/pg-temp.sh runs its own servers
# in throwaway folders on free ports, so it is left alone either way.
set -euo pipefail

build_pkgs=(build-essential cmake ninja-build pkg-config ccache
  libboost1.81-dev libboost-url1.81-dev libboost-json1.81-dev
  libcurl4-openssl-dev libssl-dev libvips-dev libvips-tools libsodium-dev libarchive-dev libsqlite3-dev libpq-dev
  libcli11-dev libspdlog-dev libfmt-dev python3)
test_pkgs=(libgtest-dev googletest python3-websockets chromium sqlite3 unzip clang-format postgresql-15 nginx
  clang-14 libfuzzer-14-dev libclang-rt-14-dev)
bench_pkgs=(curl wget2 aria2 libbenchmark-dev valgrind time)
corpus_pkgs=(libvips-tools webp gifsicle libjpeg-turbo-progs)

want=("${build_pkgs[@]}")
case "${1:-}" in
  test) want+=("${test_pkgs[@]}") ;;
  cluster) want+=(postgresql-15 nginx) ;;
  bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  corpus) want+=("${corpus_pkgs[@]}") ;;
esac

missing=()
# Node.js: this machine image ships Node 20 (with npm) outside Debian's
# packages; Debian 12's own nodejs is 18, too old for Vite 8 / Vitest 4.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then missing+=(nodejs npm); fi
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "need root to install packages" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
