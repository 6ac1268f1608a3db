# k3snet: make test runs every test tier; make run starts the reference server on this machine.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
DATA_DIR ?= $(CURDIR)/data
RUN_ARGS ?=
GO_TEST_FLAGS ?= -count=1 -timeout 70m
FUZZTIME ?= 10s
# Keeps kustomize's Go plugin loader (reached through Helm) out of k3slike: linked into a cgo
# build it makes the binary 30 MB larger and its idle RSS 6 MiB or more higher (internal/gobuild).
GO_TAGS ?= kustomize_disable_go_plugin_support

.PHONY: all setup tools test lint unit fuzz run killall bench clean-data

# Where the built parts are, as the scripts that build them print it (they build nothing when
# their cache is warm): control plane + kubelet + kube-proxy, the node's containerd, runc and
# CNI plugins, and the air-gap image tarball.
BUILT_ENV = K3SNET_BIN_DIR=$$(hack/build-tools.sh) K3SNET_NODE_BIN_DIR=$$(hack/build-node.sh) \
	K3SNET_AIRGAP_IMAGES=$$(hack/build-images.sh "$$(hack/build-node.sh)")

all: test

# System packages the dataplane tests and the server need (iptables, ipset, iproute2, conntrack,
# nsenter, libseccomp-dev).
setup:
	hack/setup.sh

# Everything a cluster runs, built once into ~/.cache/k3snet: the control plane with kubelet and
# kube-proxy (bin/<key>) and the node's runtime (node/<key>) side by side, then the air-gap images
# and the install images of deploy/ (images/).
tools:
	hack/build-tools.sh >/dev/null & tools=$$!; hack/build-node.sh >/dev/null; wait $$tools
	hack/build-images.sh "$$(hack/build-node.sh)" >/dev/null
	hack/build-images.sh --install >/dev/null

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	go vet ./...
	go run $(STATICCHECK) ./...

# Every tier: unit tables, integration against the real control plane, dataplane in netns,
# then a short fuzz run.
test: setup tools lint
	$(BUILT_ENV) go test $(GO_TEST_FLAGS) ./...
	$(MAKE) fuzz

# Every Go fuzz target for FUZZTIME each, one after another (their seed corpora in
# testdata/fuzz already ran as tests). A failing input is left in testdata/fuzz to commit.
fuzz:
	FUZZTIME=$(FUZZTIME) hack/fuzz.sh

# Quick run without building the control plane: tests that need it, or root, skip and say so.
unit:
	go test -count=1 ./...

# A real single-node cluster on this machine, as `k3s server` runs one: the air-gap images go
# into the data dir's agent/images, where the agent imports them at start.
run: setup tools
	mkdir -p $(DATA_DIR)/agent/images
	ln -sf "$$(hack/build-images.sh "$$(hack/build-node.sh)")" $(DATA_DIR)/agent/images/
	$(BUILT_ENV) go run -tags $(GO_TAGS) ./examples/k3slike server --data-dir=$(DATA_DIR) $(RUN_ARGS)

# What k3s-killall.sh does, for the data dir of `make run`: containers, mounts, pod network, rules.
killall:
	go run -tags $(GO_TAGS) ./examples/k3slike killall --data-dir=$(DATA_DIR)

bench: setup tools
	$(BUILT_ENV) go test -run '^$$' -bench . -benchmem ./...

clean-data:
	rm -rf $(DATA_DIR)
