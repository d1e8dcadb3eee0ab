# zoosync: the two commands a user needs are `make run` and `make test`.
# Both install what is missing (Debian/Ubuntu packages, npm packages) first.

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 10
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)

PREFIX     ?= /usr/local

.PHONY: all deps build build-asan build-fuzz install test unit fuzz fuzz-smoke integration integration-pool client browser chaos chaos-run soak soak-short run bench clean openapi

all: build

# The two commands a user runs (`make run`, `make test`) install what is
# missing first; the builds alone never run apt-get or npm (`make deps` does).
deps:
	@scripts/install-deps.sh

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@MAKEFLAGS= cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory

build-asan:
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DZOOSYNC_SANITIZE=ON >/dev/null
	@MAKEFLAGS= cmake --build $(ASAN_BUILD) -j $(JOBS) -- --no-print-directory

# Installs the release build under PREFIX (default /usr/local), staged under
# DESTDIR when given: bin/zoosyncd, bin/zoosync, share/zoosync/{client,web},
# share/doc/zoosync, lib/systemd/system/zoosyncd.service and
# etc/zoosync/zoosyncd.env.sample (/etc/zoosync when PREFIX is /usr).
install: build
	@DESTDIR=$(DESTDIR) cmake --install $(BUILD) --prefix $(PREFIX)

# libFuzzer targets (clang, ASan, UBSan): a CMake project of its own under
# fuzz/, so the gcc builds above are untouched. See docs/FUZZING.md.
build-fuzz:
	@cmake -S fuzz -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang >/dev/null
	@MAKEFLAGS= cmake --build $(FUZZ_BUILD) -j $(JOBS) -- --no-print-directory

# Unit tests in both builds, a short run of every fuzz target, the
# integration tests against a real ZooKeeper and the sanitized gateway, the
# client's unit tests (Node, fake-indexeddb, a real gateway), the
# real-browser tests (Chromium), the network partitions (about 2 minutes)
# and a 2-minute soak.
test: deps
	@$(MAKE) --no-print-directory build build-asan build-fuzz
	@$(MAKE) --no-print-directory unit fuzz-smoke integration integration-pool client browser chaos-run soak-short

unit:
	cd $(BUILD) && ctest --output-on-failure
	cd $(ASAN_BUILD) && ctest --output-on-failure

# Each fuzz target in turn for FUZZ_SECONDS (fuzz) or FUZZ_SMOKE_SECONDS
# (fuzz-smoke, part of `make test`). A failing input is left in
# $(FUZZ_BUILD)/crashes/<target>/ and the run fails.
fuzz: build-fuzz
	@fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

fuzz-smoke: build-fuzz
	@fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SMOKE_SECONDS)

# ZOOSYNC_OPENAPI_CHECK=1: every response the tests receive through
# tests/lib/http.mjs is checked against docs/openapi.yaml.
integration:
	ZOOSYNC_OPENAPI_CHECK=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp ZOOSYNCD=$(CURDIR)/$(ASAN_BUILD)/zoosyncd node --test --test-concurrency=1 tests/integration/

# The suites that exercise how connections are served, a second time with
# --http-model pool (epoll threads handing requests to workers; the
# default over plain HTTP is a thread per connection, and HTTPS, tested
# above, is always pool).
INTEGRATION_POOL = edge-body edge-framing edge-ops edge-slow edge-streams streams-loop push ops
integration-pool:
	ZOOSYNC_HTTP_MODEL=pool ZOOSYNC_OPENAPI_CHECK=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp ZOOSYNCD=$(CURDIR)/$(ASAN_BUILD)/zoosyncd node --test --test-concurrency=1 $(INTEGRATION_POOL:%=tests/integration/%.test.mjs)

client:
	ZOOSYNCD=$(CURDIR)/$(BUILD)/zoosyncd node --test --test-concurrency=1 tests/client/

browser:
	ZOOSYNCD=$(CURDIR)/$(BUILD)/zoosyncd node --test --test-concurrency=1 tests/browser/

# Network partitions (tests/chaos/): a 3-node ZooKeeper ensemble and two
# sanitized gateways, each in a network namespace the tests create and
# delete; links cut, packets dropped, latency added. Needs root (skipped, with
# the reason, without network namespaces). About 2 minutes. See README,
# "Soak and chaos". ZOOSYNC_LOG_LEVEL=debug keeps the gateways' debug logs.
chaos: build-asan
	@$(MAKE) --no-print-directory chaos-run

chaos-run:
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp ZOOSYNCD=$(CURDIR)/$(ASAN_BUILD)/zoosyncd node --test --test-concurrency=1 tests/chaos/

# Gateway soak (the 10-minute one; `make test` runs soak-short): SOAK_MINUTES of mixed load on two
# sanitized gateways, loopback only; resource growth and consistency checked.
SOAK_MINUTES ?= 10
soak: build-asan
	SOAK_MINUTES=$(SOAK_MINUTES) LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp ZOOSYNCD=$(CURDIR)/$(ASAN_BUILD)/zoosyncd node --test tests/soak/gateway.soak.mjs

# The short soak of `make test`: 2 minutes, sampled every 20 s, with a
# ZooKeeper restart and a gateway restart inside it.
soak-short:
	SOAK_MINUTES=2 SOAK_SAMPLE_S=20 SOAK_ZK_RESTART_S=45 SOAK_GW_RESTART_S=65 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp ZOOSYNCD=$(CURDIR)/$(ASAN_BUILD)/zoosyncd node --test tests/soak/gateway.soak.mjs

run: deps
	@$(MAKE) --no-print-directory build
	@scripts/run.sh $(BUILD)/zoosyncd

# Benchmarks (not part of `make test`): JSON lines on stdout, each with its
# ceiling measured in the same run. See docs/PERFORMANCE.md.
bench: build
	@bench/run.sh $(BUILD)

# docs/openapi.json from docs/openapi.yaml (edit the YAML, then run this;
# the gateway embeds the JSON at build time and serves it at
# /v1/openapi.json; the integration tests fail when the two differ).
openapi:
	node scripts/openapi-json.mjs

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
