#!/usr/bin/env bash
# Installs the system tools the dataplane tests and the reference server need, when missing:
# iptables (nft backend), ipset, iproute2, conntrack, nsenter (util-linux); and what building a
# node needs: libseccomp-dev (runc with seccomp) and pkg-config. Needs root (or sudo) and
# Debian's apt.
set -euo pipefail

need=()
command -v iptables >/dev/null 2>&1 || need+=(iptables)
command -v ipset >/dev/null 2>&1 || need+=(ipset)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v conntrack >/dev/null 2>&1 || need+=(conntrack)
command -v nsenter >/dev/null 2>&1 || need+=(util-linux)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
dpkg -s libseccomp-dev >/dev/null 2>&1 || need+=(libseccomp-dev)
[ ${#need[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing ${need[*]}" >&2
$sudo apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
