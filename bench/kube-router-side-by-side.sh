#!/usr/bin/env bash
# Runs kube-router v2.1.0's NetworkPolicy controller (the one K3s embeds) and k3snet's
# (`k3snet node`) one after the other against the same API server and the same NetworkPolicy
# workload, each in a fresh network namespace as node-0, and prints what each costs:
#   first sync   process start → every local pod's rules in place (programmed below)
#   pod added    a new local pod created → its rules in place (and from the moment the pod got
#                its address, which kwok gives it)
#   RSS          VmRSS / VmHWM of the process after those two
#   ipsets, rules  what it wrote: `ipset list -n` and `-A` lines of iptables-save
#
#   bench/kube-router-side-by-side.sh [SCALE]      SCALE 1 (default) is the workload of record:
#       50 nodes, 100 namespaces, 5,000 pods of which 100 on node-0, 1,000 policies; 10 is 10×
#
# Needs root, iproute2, iptables, ipset, Go. Environment:
#   K3SNET_BIN_DIR   control-plane binaries (default: hack/build-tools.sh builds or finds them)
#   KUBE_ROUTER      a kube-router binary to use instead of building v2.1.0 from its module
#   ONLY             "k3snet" or "kube-router" to run one side only
#   KEEP=1           leave the work directory (control-plane logs, each controller's log)
# Everything it starts lives in network namespaces it creates (sbs-*-PID, 172.16.0.0/12 on
# veth links between them) and is removed on exit.
set -euo pipefail

scale=${1:-1}
case $scale in '' | *[!0-9]* | 0) echo "usage: $0 [SCALE]  (a positive integer)" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "$0: needs root (network namespaces, iptables)" >&2; exit 1; }
for tool in ip iptables-save ipset go; do
	command -v $tool >/dev/null || { echo "$0: $tool not found" >&2; exit 1; }
done

root=$(cd "$(dirname "$0")/.." && pwd)
kube_router_version=v2.1.0
cache=${K3SNET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k3snet}
local_pods=$((100 * scale))
pods=$((5000 * scale))
cp_addr=172.16.0.1 node0_addr=172.16.0.2 prefix=12 # node-0's InternalIP (internal/benchworkload)

work=$(mktemp -d /tmp/k3snet-side-by-side.XXXXXX)
ns_cp=sbs-cp-$$
cp_pid=
declare -a node_namespaces=()
cleanup() {
	set +e
	for ns in "${node_namespaces[@]}"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null; done
	done
	if [ -n "$cp_pid" ]; then kill "$cp_pid" 2>/dev/null; wait "$cp_pid" 2>/dev/null; fi
	for ns in "${node_namespaces[@]}" "$ns_cp"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
	if [ "${KEEP:-}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[$(date +%T)] $*" >&2; }
now() { date +%s.%N; }
elapsed() { echo "$1 $2" | awk '{printf "%.2f", $2 - $1}'; } # seconds from $1 to $2

# --- binaries -------------------------------------------------------------------------------
export K3SNET_BIN_DIR=${K3SNET_BIN_DIR:-$("$root/hack/build-tools.sh")}
mkdir -p "$work/bin"
log "building netpol-workload, controlplane and k3snet"
# The tag keeps kustomize's Go plugin loader out of k3snet, as every build of it here does
# (internal/gobuild).
(cd "$root" && go build -tags kustomize_disable_go_plugin_support -o "$work/bin/" ./bench/netpol-workload ./bench/controlplane ./cmd/k3snet)
kubectl() { ip netns exec "$ns_cp" "$K3SNET_BIN_DIR/kubectl" --kubeconfig "$work/cp/admin.kubeconfig" "$@"; }

# kube-router from its Go module, as K3s builds it in: github.com/cloudnativelabs/kube-router/v2
# (main package cmd/kube-router). v2.1.0 has reported security flaws; it is built here only to
# measure it, never to run a cluster.
kube_router=${KUBE_ROUTER:-}
if [ -z "$kube_router" ] && [ "${ONLY:-}" != k3snet ]; then
	kube_router=$cache/kube-router/$kube_router_version/kube-router
	if [ ! -x "$kube_router" ]; then
		log "building kube-router $kube_router_version from its Go module (a few minutes)"
		if ! (cd "$work" && GOFLAGS=-mod=mod GOBIN=$(dirname "$kube_router") \
			go install "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$kube_router_version"); then
			log "kube-router $kube_router_version could not be built (see above): measuring k3snet only"
			kube_router=
		fi
	fi
fi

# --- control plane in its own namespace -------------------------------------------------------
# Its address is on a bridge there; each node namespace is a veth port of that bridge.
ip netns add "$ns_cp"
ip -n "$ns_cp" link set lo up
ip -n "$ns_cp" link add br0 type bridge
ip -n "$ns_cp" addr add "$cp_addr/$prefix" dev br0
ip -n "$ns_cp" link set br0 up
log "starting the control plane (kine, kube-apiserver, controller manager, scheduler, kwok)"
ip netns exec "$ns_cp" "$work/bin/controlplane" -data-dir "$work/cp" -bind-address "$cp_addr" \
	>"$work/controlplane.out" 2>"$work/controlplane.log" &
cp_pid=$!

# node_link NAME NS: NS as node-0, linked to the control plane's bridge by veth NAME.
node_link() {
	ip -n "$ns_cp" neigh flush dev br0 2>/dev/null || true # the previous node-0's address
	ip -n "$ns_cp" link add "$1" type veth peer name eth0 netns "$2"
	ip -n "$ns_cp" link set "$1" master br0 up
	ip -n "$2" addr add "$node0_addr/$prefix" dev eth0
	ip -n "$2" link set eth0 up
	ip -n "$2" link set lo up
}

for _ in $(seq 1 600); do
	[ -s "$work/controlplane.out" ] && break
	kill -0 $cp_pid 2>/dev/null || { cat "$work/controlplane.log" >&2; exit 1; }
	sleep 0.5
done
[ -s "$work/controlplane.out" ] || { log "the control plane did not start"; exit 1; }
log "control plane up"

# --- the workload -----------------------------------------------------------------------------
wl() { "$work/bin/netpol-workload" -scale "$scale" "$@"; }
apply() { # PART: kubectl create of one part of the workload, in chunks kubectl takes quickly
	wl -part "$1" >"$work/$1.yaml"
	kubectl create -f "$work/$1.yaml" >/dev/null
}
start=$(now)
apply nodes
kubectl wait --for=condition=Ready node --all --timeout=600s >/dev/null
# A Node create drops status: the addresses go through the status subresource, before the
# pods, so kwok gives each pod its node's address as hostIP.
wl -part node-addresses | while read -r name patch; do
	kubectl patch node "$name" --subresource=status --type=merge -p "$patch" >/dev/null
done
apply namespaces
# Pods need each namespace's default ServiceAccount, which the controller manager creates.
until [ "$(kubectl get serviceaccounts -A --field-selector metadata.name=default --no-headers 2>/dev/null | grep -c '^ns-')" -ge $((100 * scale)) ]; do sleep 1; done
apply pods
apply policies
log "workload created in $(elapsed "$start" "$(now)") s; waiting for kwok to run every pod"
until [ "$(kubectl get pods -A --field-selector status.phase!=Running --no-headers 2>/dev/null | wc -l)" = 0 ]; do sleep 2; done
log "all $pods pods running ($(elapsed "$start" "$(now)") s after the first create)"

# --- one controller ---------------------------------------------------------------------------
# programmed NS NAME: how many local pods have their rules in place. kube-router gives each its
# own KUBE-POD-FW-* chain; k3snet sends pods whose policies are the same through one chain per
# direction and adds a pod to the set its tail lets through once its rules are live.
programmed() {
	if [ "$2" = kube-router ]; then
		ip netns exec "$1" iptables-save -t filter 2>/dev/null | grep -c '^:KUBE-POD-FW-' || true
		return
	fi
	local set
	set=$(ip netns exec "$1" iptables-save -t filter 2>/dev/null |
		grep -o -m1 'match-set [^ ]* src -m comment --comment "reject unprogrammed local pod"' | awk '{print $2}' || true)
	if [ -z "$set" ]; then echo 0; return; fi
	ip netns exec "$1" ipset list -t "$set" 2>/dev/null | awk -F': ' '/^Number of entries/ {print $2}' || echo 0
}

# measure NAME COMMAND...: runs COMMAND in a fresh namespace as node-0 and prints one table row.
measure() {
	local name=$1 ns=sbs-$1-$$ ; shift
	node_namespaces+=("$ns")
	ip netns add "$ns"
	node_link "sbs-${name:0:8}" "$ns"
	log "$name: starting"
	local t0 t1 pid
	t0=$(now)
	ip netns exec "$ns" "$@" >"$work/$name.log" 2>&1 &
	pid=$!
	local deadline=$((SECONDS + 600 * scale))
	until [ "$(programmed "$ns" "$name")" -ge "$local_pods" ]; do
		kill -0 $pid 2>/dev/null || { log "$name exited:"; tail -20 "$work/$name.log" >&2; return 1; }
		[ $SECONDS -lt $deadline ] || { log "$name: not $local_pods pods programmed after $((600 * scale)) s"; return 1; }
		sleep 0.05
	done
	t1=$(now)
	local first; first=$(elapsed "$t0" "$t1")
	log "$name: $local_pods pods programmed after $first s"
	sleep 2 # let the sync finish writing what follows the chains

	# One local pod added: created → its rules in place; kwok gives it an address first.
	local pod=new-$name ip_at=$work/$name.ip-at fifo=$work/$name.watch
	mkfifo "$fifo"
	ip netns exec "$ns_cp" "$K3SNET_BIN_DIR/kubectl" --kubeconfig "$work/cp/admin.kubeconfig" get pods -n ns-0 \
		--field-selector "metadata.name=$pod" --watch -o jsonpath='{.status.podIP}{"\n"}' >"$fifo" 2>/dev/null &
	local watcher=$!
	while read -r ip; do [ -n "$ip" ] && { now >"$ip_at"; break; }; done <"$fifo" &
	local reader=$!
	sleep 1
	local c0 c1
	c0=$(now)
	wl -part pods -nodes 1 -namespaces 1 -pods 1 -local 1 -scale 1 | sed "s/name: pod-0/name: $pod/" | kubectl create -f - >/dev/null
	until [ "$(programmed "$ns" "$name")" -gt "$local_pods" ]; do
		[ $SECONDS -lt $deadline ] || { log "$name: the new pod's rules never came"; return 1; }
		sleep 0.02
	done
	c1=$(now)
	for _ in $(seq 1 50); do [ -s "$ip_at" ] && break; sleep 0.1; done
	kill $watcher $reader 2>/dev/null || true
	local added from_ip=?
	added=$(elapsed "$c0" "$c1")
	[ -s "$ip_at" ] && from_ip=$(elapsed "$(cat "$ip_at")" "$c1")
	local rss hwm
	rss=$(awk '/^VmRSS/ {printf "%.0f", $2/1024}' /proc/$pid/status)
	hwm=$(awk '/^VmHWM/ {printf "%.0f", $2/1024}' /proc/$pid/status)
	local ipsets rules
	ipsets=$(ip netns exec "$ns" ipset list -n | wc -l)
	rules=$(ip netns exec "$ns" iptables-save | grep -c '^-A' || true)
	printf '| %s | %s s | %s s (%s s after its address) | %s MB (peak %s MB) | %s | %s |\n' \
		"$name" "$first" "$added" "$from_ip" "$rss" "$hwm" "$ipsets" "$rules" >>"$work/table"
	log "$name: pod added → chain in $added s; RSS $rss MB"

	kubectl delete pod -n ns-0 "$pod" --wait=true >/dev/null
	kill $pid; wait $pid 2>/dev/null || true
	ip netns del "$ns"
}

echo "| controller | first sync (start → $local_pods pods programmed) | one local pod added → its rules | RSS after | ipsets | iptables rules |" >"$work/table"
echo "|---|---|---|---|---|---|" >>"$work/table"
if [ -n "$kube_router" ] && [ "${ONLY:-}" != k3snet ]; then
	measure kube-router "$kube_router" --kubeconfig "$work/cp/admin.kubeconfig" \
		--run-firewall=true --run-router=false --run-service-proxy=false --enable-cni=false \
		--hostname-override=node-0 --service-cluster-ip-range=10.43.0.0/16 --health-port=0 --metrics-port=0
fi
if [ "${ONLY:-}" != kube-router ]; then
	measure k3snet "$work/bin/k3snet" node --kubeconfig "$work/cp/admin.kubeconfig" \
		--node-name node-0 --node-ip "$node0_addr" --metrics-bind-address 127.0.0.1:10266
fi
echo
echo "scale $scale: $((50 * scale)) nodes, $((100 * scale)) namespaces, $pods pods ($local_pods on node-0), $((1000 * scale)) policies; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
cat "$work/table"
