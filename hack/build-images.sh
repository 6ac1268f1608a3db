#!/usr/bin/env bash
# Builds the air-gap image tarball of a k3snet cluster: one OCI image layout holding every
# image the cluster runs (the pause sandbox, CoreDNS, Traefik, the ServiceLB forwarder with
# Debian's iptables, the end-to-end test server), tagged with the names the manifests use,
# for <data-dir>/agent/images/ or `ctr -n k8s.io images import`. No registry, no Docker.
#
# Usage: hack/build-images.sh NODE_DIR
#   NODE_DIR is the directory hack/build-node.sh prints (image-bin/coredns, image-bin/traefik).
# Writes ${K3SNET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k3snet}/images/k3s-airgap-images-<arch>.tar,
# replacing it only when its content changes (so its mtime says when it last changed), and
# prints its path on stdout; progress goes to stderr.
set -euo pipefail

node=${1:-}
if [ -z "$node" ] || [ $# -ne 1 ]; then
	echo "usage: $0 NODE_DIR (the directory hack/build-node.sh prints)" >&2
	exit 2
fi
for prog in coredns traefik; do
	if [ ! -x "$node/image-bin/$prog" ]; then
		echo "$node/image-bin/$prog is missing: run hack/build-node.sh first" >&2
		exit 1
	fi
done

# The LB image carries this machine's iptables (nft and legacy, Debian 12's 1.8.9).
if [ ! -x /usr/sbin/xtables-nft-multi ] || [ ! -x /usr/sbin/xtables-legacy-multi ]; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	echo "installing iptables" >&2
	$sudo apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends iptables >&2
fi

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${K3SNET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k3snet}
arch=$(cd "$root" && go env GOARCH)
out_dir="$cache/images"
out="$out_dir/k3s-airgap-images-$arch.tar"
mkdir -p "$out_dir"

tmp=$(mktemp -d)
new="$out_dir/.k3s-airgap-images-$arch.tar.new"
trap 'rm -rf "$tmp"; rm -f "$new"' EXIT

# -buildvcs=false keeps the commit out of the binaries: the tarball changes only when code does.
cd "$root"
for pkg in ./internal/images/pause ./internal/images/testserver ./servicelb/forwarder/cmd/klipper-lb; do
	echo "building $pkg" >&2
	CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$tmp/$(basename "$pkg")" "$pkg"
done
go build -o "$tmp/build-airgap" ./internal/images/cmd/build-airgap

echo "writing the image tarball" >&2
"$tmp/build-airgap" \
	--pause "$tmp/pause" \
	--coredns "$node/image-bin/coredns" \
	--traefik "$node/image-bin/traefik" \
	--klipper-lb "$tmp/klipper-lb" \
	--testserver "$tmp/testserver" \
	--out "$new"

if [ -f "$out" ] && [ "$(sha256sum <"$new")" = "$(sha256sum <"$out")" ]; then
	echo "unchanged: $out" >&2
else
	mv -f "$new" "$out"
	echo "wrote $out ($(du -h "$out" | cut -f1))" >&2
fi
echo "$out"
