# Litchi: `make run` and `make test` work on a fresh Debian 12 machine as root.
JOBS ?= $(shell nproc)
LISTEN ?= 127.0.0.1:9527
DATA ?= var
WEB_SOURCES := $(shell find web/src web/index.html web/package.json web/vite.config.ts -type f 2>/dev/null)
CLIENT_JS_SOURCES := $(shell find clients/js/src clients/js/package.json clients/js/tsconfig.json clients/js/tsconfig.build.json -type f 2>/dev/null)

.PHONY: run cluster test check deps deps-test build build-asan web web-deps test-deps bench format clean fuzz

## make run: install what is missing, build, start the server with its embedded SQLite store.
run: deps build web
	build/release/litchi serve --listen $(LISTEN) --data $(DATA) --web web/dist

## make cluster: the same, scaled out on this machine: a throwaway PostgreSQL,
## three nodes (127.0.0.1:9531-9533) sharing it and one blob folder, and an
## nginx load balancer on 127.0.0.1:9527 (docs/scale-out.md). Ctrl-C stops all.
## CLUSTER_ARGS go to scripts/cluster.sh, e.g. CLUSTER_ARGS="--nodes 2 -- -j 8".
CLUSTER_ARGS ?=
cluster: deps build web
	@scripts/install-deps.sh cluster
	scripts/cluster.sh --listen $(LISTEN) $(CLUSTER_ARGS)

## make test: everything (C++ unit + integration, web and litchi-client unit, browser, conformance), on the ASan+UBSan build.
test: deps-test check build-asan web test-deps
	ctest --preset asan -j $(JOBS)

## make fuzz: builds the libFuzzer targets of tests/fuzz/ (clang-14, ASan + UBSan,
## build/fuzz) and runs each for FUZZ_SECONDS, one after the other (FUZZ_TARGETS
## picks some; FUZZ_ARGS go to libFuzzer). New inputs go to build/fuzz/corpus/<target>/,
## a crash to build/fuzz/artifacts/<target>/; the seeds in tests/fuzz/corpus/ are
## only read. Stops at the first target that finds something.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= url_admission image_header ws_frames client_messages job_body manifest
FUZZ_ARGS ?=
fuzz: deps-test
	cmake --preset fuzz >/dev/null
	cmake --build --preset fuzz -j $(JOBS)
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p build/fuzz/corpus/$$t build/fuzz/artifacts/$$t; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  build/fuzz/tests/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/artifacts/$$t/ $(FUZZ_ARGS) \
	    build/fuzz/corpus/$$t tests/fuzz/corpus/$$t || exit 1; \
	done

# C++ sources formatted as .clang-format says; `make format` fixes what this finds.
CXX_SOURCES = $(shell git ls-files 'src/*.cpp' 'src/*.hpp' 'tests/*.cpp' 'tests/*.hpp' 2>/dev/null)

## make check: fails on a formatting difference or an include that breaks the
## arrows between rooms (CI runs it through make test).
check: deps-test
	@clang-format --dry-run --Werror $(CXX_SOURCES) && echo "format: $(words $(CXX_SOURCES)) files clean"
	@scripts/check-layers.sh

deps:
	@scripts/install-deps.sh

deps-test:
	@scripts/install-deps.sh test

build:
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS)

build-asan:
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS)

## make web: the litchi-client package (clients/js/dist, which the app imports
## through file:../clients/js), then the app (web/dist).
web: web/dist/index.html

clients/js/node_modules/.package-lock.json: clients/js/package-lock.json
	cd clients/js && npm ci --no-audit --no-fund
	@touch $@

clients/js/dist/index.js: clients/js/node_modules/.package-lock.json $(CLIENT_JS_SOURCES)
	cd clients/js && npm run build
	@touch $@

web/node_modules/.package-lock.json: web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	@touch $@

web/dist/index.html: web/node_modules/.package-lock.json clients/js/dist/index.js $(WEB_SOURCES)
	cd web && npm run build

# npm packages the tests use (clients that are not ours, the browser driver,
# the OpenAPI validators of tests/openapi).
test-deps:
	@for d in tests/clients tests/browser tests/openapi; do \
	  if [ -f $$d/package-lock.json ]; then (cd $$d && npm ci --no-audit --no-fund) || exit 1; fi; \
	done

bench: build
	@scripts/install-deps.sh bench
	bench/fetch/run.sh
	bench/serve/run.sh
	bench/fanout/run.sh

format:
	clang-format -i $(CXX_SOURCES)

clean:
	rm -rf build web/dist clients/js/dist
