#!/usr/bin/env bash
# Builds the node half of a K3s-like cluster from the Go module proxy into a cache outside the
# checkout: containerd with its runc shim and ctr, runc (with seccomp, which containerd's default
# sandbox profile needs), the CNI plugins a bridge network uses (bridge, host-local, loopback,
# portmap), and the CoreDNS and Traefik programs that go into the air-gap images. Each program is
# built inside its own released module, with that module's go.mod and go.sum, as its Makefile
# would. kubelet and kube-proxy come from hack/build-tools.sh (the Kubernetes tools module).
# The cache is keyed by this file, so a second run builds nothing. Prints the directory on stdout:
# bin/ (containerd, containerd-shim-runc-v2, ctr, runc), cni/ (the plugins), image-bin/ (coredns,
# traefik).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
key=$(sha256sum "$root/hack/build-node.sh" | cut -c1-16)
cache=${K3SNET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k3snet}
out="$cache/node/$key"

containerd_version=v2.4.2
runc_version=v1.5.3
cni_plugins_version=v1.10.0
coredns_version=v1.12.3
traefik_version=v3.6.12

# module_dir downloads module@version through the module proxy and prints its directory.
module_dir() {
	go mod download -json "$1@$2" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p'
}

# build name module version subdir [go build flags...]: builds one program of a module into
# $out/<dest> where dest is name's directory part (bin/ctr → bin).
build() {
	local name=$1 module=$2 version=$3 pkg=$4
	shift 4
	[ -x "$out/$name" ] && return 0
	echo "building $name ($module $version) into $out" >&2
	local start=$SECONDS dir
	dir=$(module_dir "$module" "$version")
	mkdir -p "$(dirname "$out/$name")"
	# The module cache is read-only; -modcacherw is not needed to build from it.
	(cd "$dir" && go build -trimpath "$@" -o "$out/$name.tmp" "$pkg")
	mv "$out/$name.tmp" "$out/$name"
	echo "built $name in $((SECONDS - start)) s" >&2
}

mkdir -p "$out"
containerd_ldflags="-s -w -X github.com/containerd/containerd/v2/version.Version=$containerd_version -X github.com/containerd/containerd/v2/version.Package=github.com/containerd/containerd/v2"
CGO_ENABLED=0 build bin/containerd github.com/containerd/containerd/v2 $containerd_version ./cmd/containerd \
	-tags "no_btrfs no_devmapper no_zfs urfave_cli_no_docs" -ldflags "$containerd_ldflags"
CGO_ENABLED=0 build bin/containerd-shim-runc-v2 github.com/containerd/containerd/v2 $containerd_version ./cmd/containerd-shim-runc-v2 \
	-tags "no_grpc urfave_cli_no_docs" -ldflags "$containerd_ldflags"
CGO_ENABLED=0 build bin/ctr github.com/containerd/containerd/v2 $containerd_version ./cmd/ctr \
	-tags "no_btrfs no_devmapper no_zfs urfave_cli_no_docs" -ldflags "$containerd_ldflags"
# runc needs cgo (its nsenter) and libseccomp (hack/setup.sh installs libseccomp-dev).
CGO_ENABLED=1 build bin/runc github.com/opencontainers/runc $runc_version . \
	-tags "seccomp urfave_cli_no_docs" -ldflags "-s -w -X main.gitCommit=$runc_version"
for plugin in main/bridge ipam/host-local main/loopback meta/portmap; do
	CGO_ENABLED=0 build "cni/$(basename $plugin)" github.com/containernetworking/plugins $cni_plugins_version "./plugins/$plugin" \
		-ldflags "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$cni_plugins_version"
done
CGO_ENABLED=0 build image-bin/coredns github.com/coredns/coredns $coredns_version . -ldflags "-s -w"
CGO_ENABLED=0 build image-bin/traefik github.com/traefik/traefik/v3 $traefik_version ./cmd/traefik \
	-ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=${traefik_version#v}"
echo "$out"
