#!/usr/bin/env bash
# Installs the system tools the dataplane tests and the reference server need, when missing:
# iptables (nft backend), ipset, iproute2, conntrack, nsenter (util-linux); and what building a
# node needs: libseccomp-dev (runc with seccomp) and pkg-config. Needs root (or sudo) and
# Debian's apt. Raises the inotify limits several real clusters at once need.
set -euo pipefail

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# Every kubelet and containerd takes inotify instances; the kernel's default of 128 per user
# runs out when the tests run several real clusters at once (pods then fail with "too many
# open files"). Raised as kind's known-issues page advises, never lowered.
for limit in max_user_instances:512 max_user_watches:524288; do
	key=fs.inotify.${limit%%:*} want=${limit##*:}
	if [ "$(sysctl -n "$key")" -lt "$want" ]; then
		$sudo sysctl -qw "$key=$want" || echo "setup: could not raise $key to $want" >&2
	fi
done

need=()
command -v iptables >/dev/null 2>&1 || need+=(iptables)
command -v ipset >/dev/null 2>&1 || need+=(ipset)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v conntrack >/dev/null 2>&1 || need+=(conntrack)
command -v nsenter >/dev/null 2>&1 || need+=(util-linux)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
dpkg -s libseccomp-dev >/dev/null 2>&1 || need+=(libseccomp-dev)
[ ${#need[@]} -eq 0 ] && exit 0

echo "installing ${need[*]}" >&2
$sudo apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
