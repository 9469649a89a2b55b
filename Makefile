# Litchi: `make run` and `make test` work on a fresh Debian 12 machine as root.
JOBS ?= $(shell nproc)
LISTEN ?= 127.0.0.1:9527
DATA ?= var

.PHONY: run test deps deps-test build build-asan unit integration web web-test bench format clean

run: deps build
	@if [ -x build/release/litchi ] && build/release/litchi serve --help >/dev/null 2>&1; then \
	  exec build/release/litchi serve --listen $(LISTEN) --data $(DATA); \
	else \
	  build/release/litchi --help; \
	  echo; echo "Example:  build/release/litchi fetch -o images https://example.com/a.jpg"; \
	fi

test: deps-test build-asan
	ctest --preset asan -j $(JOBS) --output-on-failure

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

bench: build
	@scripts/install-deps.sh bench
	bench/fetch/run.sh

format:
	clang-format -i $$(git ls-files 'src/*.cpp' 'src/*.hpp' 'tests/*.cpp')

clean:
	rm -rf build
