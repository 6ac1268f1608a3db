#!/usr/bin/env bash
# Builds k3snet's image tarballs, each one OCI image layout tagged with the names the manifests
# use, for <data-dir>/agent/images/ or `ctr -n k8s.io images import`. No registry, no Docker.
#   - the air-gap tarball of a k3snet cluster: every image the cluster runs (the pause sandbox,
#     CoreDNS, Traefik, the ServiceLB forwarder with Debian's iptables, the end-to-end test server,
#     the helm job);
#   - the install tarball of deploy/: the controllers image (cmd/k3snet as /k3snet, its node
#     build -tags k3snet_node as /k3snet-node for the node DaemonSet, Debian's iptables and
#     ipset), the ServiceLB forwarder and the helm job.
#
# Usage: hack/build-images.sh NODE_DIR   the air-gap tarball; prints its path
#        hack/build-images.sh --install  the install tarball; prints its path
#   NODE_DIR is the directory hack/build-node.sh prints (image-bin/coredns, image-bin/traefik).
#   K3SNET_IMAGE names the controllers image (default k3snet.local/k3snet:v0.1.0, as deploy/base);
#   K3SNET_VERSION is what `k3snet --version` prints (default v0.1.0).
# Writes ${K3SNET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k3snet}/images/k3s-airgap-images-<arch>.tar
# (or, with --install, k3snet-images-<arch>.tar beside it), replacing it only when its content
# changes (so its mtime says when it last changed); progress goes to stderr.
set -euo pipefail

usage="usage: $0 NODE_DIR (the directory hack/build-node.sh prints) | --install"
node=""
install=false
case "$#:${1:-}" in
1:--install) install=true ;;
1:-*) echo "$usage" >&2; exit 2 ;;
1:?*) node=$1 ;;
*) echo "$usage" >&2; exit 2 ;;
esac
if ! $install; then
	for prog in coredns traefik; do
		if [ ! -x "$node/image-bin/$prog" ]; then
			echo "$node/image-bin/$prog is missing: run hack/build-node.sh first" >&2
			exit 1
		fi
	done
fi

# The images carry this machine's iptables (nft and legacy, Debian 12's 1.8.9) and ipset.
need=()
if [ ! -x /usr/sbin/xtables-nft-multi ] || [ ! -x /usr/sbin/xtables-legacy-multi ]; then
	need+=(iptables)
fi
[ -x /usr/sbin/ipset ] || need+=(ipset)
if [ ${#need[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	echo "installing ${need[*]}" >&2
	$sudo apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${K3SNET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k3snet}
arch=$(cd "$root" && go env GOARCH)
out_dir="$cache/images"
name=k3s-airgap-images-$arch.tar
pkgs=(./servicelb/forwarder/cmd/klipper-lb ./internal/images/pause ./internal/images/testserver ./packaged/helm/cmd/klipper-helm)
if $install; then
	name=k3snet-images-$arch.tar
	pkgs=(./servicelb/forwarder/cmd/klipper-lb ./cmd/k3snet ./packaged/helm/cmd/klipper-helm)
fi
out="$out_dir/$name"
mkdir -p "$out_dir"

tmp=$(mktemp -d)
new="$out_dir/.$name.new"
trap 'rm -rf "$tmp"; rm -f "$new"' EXIT

# -buildvcs=false keeps the commit out of the binaries: the tarball changes only when code does.
# build OUT PKG [GO BUILD FLAGS...]
build() {
	local out=$1 pkg=$2 ldflags="-s -w"
	shift 2
	echo "building $pkg $*" >&2
	[ "$pkg" != ./cmd/k3snet ] || ldflags+=" -X main.version=${K3SNET_VERSION:-v0.1.0}"
	CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "$ldflags" "$@" -o "$out" "$pkg"
}
cd "$root"
for pkg in "${pkgs[@]}"; do
	build "$tmp/$(basename "$pkg")" "$pkg"
done
# The node DaemonSet's binary: k3snet without the cluster-wide controllers (and their Helm,
# kustomize and ORAS libraries), half the resident memory on every node.
if $install; then
	build "$tmp/k3snet-node" ./cmd/k3snet -tags k3snet_node
fi
go build -o "$tmp/build-airgap" ./internal/images/cmd/build-airgap

echo "writing the image tarball" >&2
if $install; then
	args=(--klipper-lb "$tmp/klipper-lb" --klipper-helm "$tmp/klipper-helm" --k3snet "$tmp/k3snet" --k3snet-node "$tmp/k3snet-node" --install-out "$new")
	[ -z "${K3SNET_IMAGE:-}" ] || args+=(--k3snet-image "$K3SNET_IMAGE")
else
	args=(--pause "$tmp/pause" --coredns "$node/image-bin/coredns" --traefik "$node/image-bin/traefik"
		--klipper-lb "$tmp/klipper-lb" --testserver "$tmp/testserver" --klipper-helm "$tmp/klipper-helm" --out "$new")
fi
"$tmp/build-airgap" "${args[@]}"

if [ -f "$out" ] && [ "$(sha256sum <"$new")" = "$(sha256sum <"$out")" ]; then
	echo "unchanged: $out" >&2
else
	mv -f "$new" "$out"
	echo "wrote $out ($(du -h "$out" | cut -f1))" >&2
fi
echo "$out"
