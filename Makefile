# zoosync: the two commands a user needs are `make run` and `make test`.
# Both install what is missing (Debian/Ubuntu packages, npm packages) first.

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build build-asan test unit integration client browser run bench clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@MAKEFLAGS= cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory

build-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DZOOSYNC_SANITIZE=ON >/dev/null
	@MAKEFLAGS= cmake --build $(ASAN_BUILD) -j $(JOBS) -- --no-print-directory

# Unit tests in both builds, the integration tests against a real
# ZooKeeper and the sanitized gateway, the client's unit tests (Node,
# fake-indexeddb, a real gateway), then the real-browser tests (Chromium).
test: build build-asan
	@$(MAKE) --no-print-directory unit integration client browser

unit:
	cd $(BUILD) && ctest --output-on-failure
	cd $(ASAN_BUILD) && ctest --output-on-failure

integration:
	LSAN_OPTIONS=suppressions=$(CURDIR)/test/lsan.supp ZOOSYNCD=$(CURDIR)/$(ASAN_BUILD)/zoosyncd node --test --test-concurrency=1 test/integration/

client:
	ZOOSYNCD=$(CURDIR)/$(BUILD)/zoosyncd node --test --test-concurrency=1 test/client/

browser:
	ZOOSYNCD=$(CURDIR)/$(BUILD)/zoosyncd node --test --test-concurrency=1 test/browser/

run: build
	@scripts/run.sh $(BUILD)/zoosyncd

# Benchmarks (not part of `make test`): JSON lines on stdout, each with its
# ceiling measured in the same run. See docs/PERFORMANCE.md.
bench: build
	@bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
