#!/usr/bin/env bash
# Builds the control-plane binaries that the integration tests and examples/k3slike need
# (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kine, kwok) from the
# tools module into a cache outside the checkout, keyed by the tools module's go.mod and
# go.sum, and writes kwok's node and pod Stage documents (shipped in the kwok module) next
# to them. A second run with the same key builds nothing. Prints the bin directory on stdout.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/internal/tools"
key=$(cat "$tools/go.mod" "$tools/go.sum" | sha256sum | cut -c1-16)
cache=${K3SNET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k3snet}
bin="$cache/bin/$key"

kube_version=v1.37.2

# Without these the binaries report v0.0.0-master+$Format:%H$, which kubectl cannot parse.
version_ldflags() {
	local v=$1 major minor f="-s -w"
	major=$(echo "${v#v}" | cut -d. -f1)
	minor=$(echo "${v#v}" | cut -d. -f2)
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		f+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
		f+=" -X $pkg.gitCommit=0000000000000000000000000000000000000000 -X $pkg.gitTreeState=clean"
		f+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
	done
	echo "$f"
}

build() { # name package ldflags
	local name=$1 pkg=$2 flags=$3
	[ -x "$bin/$name" ] && return 0
	echo "building $name ($pkg) into $bin" >&2
	local start=$SECONDS
	(cd "$tools" && go build -trimpath -ldflags "$flags" -o "$bin/$name.tmp" "$pkg")
	mv "$bin/$name.tmp" "$bin/$name"
	echo "built $name in $((SECONDS - start)) s" >&2
}

mkdir -p "$bin"
kube_flags=$(version_ldflags $kube_version)
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$kube_flags"
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$kube_flags"
build kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler "$kube_flags"
build kubectl k8s.io/kubernetes/cmd/kubectl "$kube_flags"
build kubelet k8s.io/kubernetes/cmd/kubelet "$kube_flags"
build kube-proxy k8s.io/kubernetes/cmd/kube-proxy "$kube_flags"
CGO_ENABLED=1 build kine github.com/k3s-io/kine "-s -w"
build kwok sigs.k8s.io/kwok/cmd/kwok "-s -w"

# kwok does nothing without Stage definitions: take the fast node/pod lifecycle ones that
# its module ships, as the kwok binary itself was built from that module.
if [ ! -s "$bin/kwok-stages.yaml" ]; then
	kwok_dir=$(cd "$tools" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
	{
		for f in "$kwok_dir"/kustomize/stage/node/fast/node-initialize.yaml \
			"$kwok_dir"/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
			"$kwok_dir"/kustomize/stage/pod/fast/pod-*.yaml; do
			echo "---"
			cat "$f"
		done
	} > "$bin/kwok-stages.yaml.tmp"
	mv "$bin/kwok-stages.yaml.tmp" "$bin/kwok-stages.yaml"
fi
echo "$bin"
