# `make test` runs every test chatd has: Go (with the race detector) and the
# Node end-to-end suites that drive a real chatd binary with real clients.
GO ?= go
BIN := $(CURDIR)/bin

.PHONY: all build test go-test node-test vet lint fmt-check soak soak-attack clean test-sqlite-cgo build-sqlite-cgo

all: build

build:
	$(GO) build -o $(BIN)/chatd ./cmd/chatd

test: fmt-check vet lint go-test node-test

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# staticcheck, with the checks staticcheck.conf chooses, at the version .ci/run
# pins. An installed copy (GOBIN, the first GOPATH's bin, then PATH) is used;
# without one, `go run` fetches and builds that version from the module proxy,
# so `make test` works on a fresh machine.
STATICCHECK_VERSION := $(shell sed -n 's/^STATICCHECK_VERSION=//p' .ci/run)
STATICCHECK ?= $(shell d="$$($(GO) env GOBIN)"; [ -n "$$d" ] || d="$$($(GO) env GOPATH | cut -d: -f1)/bin"; \
	if [ -x "$$d/staticcheck" ]; then echo "$$d/staticcheck"; else command -v staticcheck; fi)

lint: vet
	$(or $(STATICCHECK),$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)) ./...

go-test:
	$(GO) test -race -timeout 20m ./...

# The cgo SQLite driver (mattn/go-sqlite3) instead of modernc: a C compiler
# is needed; the default build stays pure Go (docs/benchmarks.md, The SQLite
# driver).
SQLITE_CGO_TAGS := sqlite_cgo,sqlite_fts5

test-sqlite-cgo:
	$(GO) test -race -tags $(SQLITE_CGO_TAGS) ./internal/store/sqlite/

build-sqlite-cgo:
	$(GO) build -tags $(SQLITE_CGO_TAGS) -o $(BIN)/chatd-cgo ./cmd/chatd
	$(GO) build -tags $(SQLITE_CGO_TAGS) -o $(BIN)/chatbench-cgo ./cmd/chatbench

# Two test files at a time: each starts its own chatd on a free port with its
# own data directory (test/lib/chatd.mjs), and most of a file's time is spent
# waiting, so two halve the suite's time on two cores; more gain nothing.
NODE_TEST_CONCURRENCY ?= 2

node-test: build
	cd test && npm ci --no-audit --no-fund --loglevel=error
	CHATD_BIN=$(BIN)/chatd node --test --test-concurrency=$(NODE_TEST_CONCURRENCY) --test-timeout=300000 $$(find test -name '*.test.mjs' -not -path '*/node_modules/*' | sort)

# `make soak` holds 10,000 sockets on loopback, sends for three minutes, lets
# the clients leave and checks chatd's /metrics return to their baseline.
soak: build
	$(GO) run ./cmd/chatsoak -chatd $(BIN)/chatd

# `make soak-attack` runs chatd with its default limits; honest clients send for
# two minutes alone, then two more while the transport attacks of SECURITY.md
# run (docs/soak.md). Not part of `make test`.
soak-attack: build
	$(GO) run ./cmd/chatsoak -attack -chatd $(BIN)/chatd -sockets 1000 -senders 200 -rate 2 -duration 4m

clean:
	rm -rf $(BIN) test/node_modules

# `make bench` compares chatd with the Node socket.io peer (short run, about
# ten minutes: three interleaved rounds, ramps until the p99 bound is missed)
# and writes bench/results/latest.md, latest.json and the ramp charts
# (ramp-*.svg). With CHATD_TEST_POSTGRES (and CHATD_TEST_REDIS,
# CHATD_TEST_NATS) set it also runs the two-node cluster scenario.
.PHONY: bench
bench:
	GO=$(GO) bench/run.sh
