# k3snet: make test runs every test tier; make run starts the reference server on this machine.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
DATA_DIR ?= $(CURDIR)/data
RUN_ARGS ?=
GO_TEST_FLAGS ?= -count=1 -timeout 45m

.PHONY: all setup tools test lint unit run bench clean-data

all: test

# System packages the dataplane tests and the server need (iptables, ipset, iproute2, conntrack).
setup:
	hack/setup.sh

# The control-plane binaries, built once into ~/.cache/k3snet/bin/<key> (cold: ~30 min on 2 cores).
tools:
	hack/build-tools.sh >/dev/null

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	go vet ./...
	go run $(STATICCHECK) ./...

# Every tier: unit tables, integration against the real control plane, dataplane in netns.
test: setup tools lint
	K3SNET_BIN_DIR=$$(hack/build-tools.sh) go test $(GO_TEST_FLAGS) ./...

# Quick run without building the control plane: tests that need it, or root, skip and say so.
unit:
	go test -count=1 ./...

run: setup tools
	K3SNET_BIN_DIR=$$(hack/build-tools.sh) go run ./examples/k3slike --data-dir=$(DATA_DIR) $(RUN_ARGS)

bench: setup tools
	K3SNET_BIN_DIR=$$(hack/build-tools.sh) go test -run '^$$' -bench . -benchmem ./...

clean-data:
	rm -rf $(DATA_DIR)
