package main

import (
	"context"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/netns"
)

// TestNetworkPolicyInTheServersNetworkNamespace runs k3slike in a network namespace of its
// own, which plays the node: a pod kwok runs on that node gets a network namespace routed
// from it, a client outside the cluster sends it real connections, and the NetworkPolicies
// applied with kubectl decide what passes. Multi-cluster CIDR is on (K3s warns that its
// policy controller may not work with it): a pod on a second node, whose pod CIDR comes from
// the K3s documentation's worker2 ClusterCIDR, is let in by a pod selector. A restart with
// --disable-network-policy removes every rule and set again.
func TestNetworkPolicyInTheServersNetworkNamespace(t *testing.T) {
	netns.Require(t)
	ctx := t.Context()
	node := netns.NewT(t, "k3snode")
	require.NoError(t, node.EnableForwarding())
	c := newCluster(t, "netpol-e2e", "192.0.2.90")
	c.netns = node.Name()
	srv := c.start("--multi-cluster-cidr")

	// The controller manager creates each namespace's default ServiceAccount, which pods need.
	c.eventually("the default ServiceAccount exists", func() bool { return len(c.names("serviceaccount/default")) == 1 })
	c.kubectl("run", "server", "--image=registry.k8s.io/pause:3.10", "--labels=app=server")
	c.eventually("kwok runs the pod with an IP from the node's pod CIDR", func() bool {
		return strings.HasPrefix(c.value("{.status.podIP}", "pod", "server"), "10.42.0.")
	})
	podIP := netip.MustParseAddr(c.value("{.status.podIP}", "pod", "server"))
	gateway := netip.MustParseAddr("10.42.0.254")
	require.NotEqual(t, gateway, podIP, "the node side of the pod's link takes .254")

	// The pod: its IP in the pod CIDR behind a veth whose node end is the gateway.
	pod := routedFromNode(t, node, "pod", netip.PrefixFrom(podIP, 24), gateway)
	echo, err := pod.Serve(ctx, netns.TCP, netip.AddrPortFrom(netip.IPv4Unspecified(), 80))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, echo.Close()) })

	// The client: outside every pod CIDR, routed through the node.
	client := routedFromNode(t, node, "client", netip.MustParsePrefix("192.168.50.2/30"), netip.MustParseAddr("192.168.50.1"))

	target := netip.AddrPortFrom(podIP, 80)
	reachable := func() bool { return client.Probe(netns.TCP, target, time.Second) == nil }
	blocked := func() bool { return netns.IsBlocked(client.Probe(netns.TCP, target, time.Second)) }
	c.eventually("with no policy the pod is reachable once netpol has programmed it", reachable)

	c.kubectlIn(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress}
spec:
  podSelector: {matchLabels: {app: server}}
  policyTypes: [Ingress]
`, "apply", "-f", "-")
	c.eventually("a default-deny policy isolates the pod", blocked)

	c.kubectlIn(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress:
  - from: [{ipBlock: {cidr: 192.168.50.0/24}}]
    ports: [{port: 80, protocol: TCP}]
`, "apply", "-f", "-")
	c.eventually("an ipBlock rule lets the client in again", reachable)

	// worker2 gets its pod CIDR from the K3s docs' example ClusterCIDR, and runs a client pod whose
	// network namespace is routed from the node like the external client.
	c.kubectlIn(`apiVersion: networking.x-k8s.io/v1
kind: ClusterCIDR
metadata: {name: worker2}
spec:
  nodeSelector:
    nodeSelectorTerms:
    - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [worker2]}]
  perNodeHostBits: 8
  ipv4: 10.247.0.0/16
---
apiVersion: v1
kind: Node
metadata:
  name: worker2
  labels: {kubernetes.io/hostname: worker2}
  annotations: {kwok.x-k8s.io/node: fake}
`, "apply", "-f", "-")
	c.eventually("worker2 gets its pod CIDR from the worker2 ClusterCIDR", func() bool {
		return c.value("{.spec.podCIDR}", "node", "worker2") == "10.247.0.0/24"
	})
	c.kubectl("run", "client", "--image=registry.k8s.io/pause:3.10", "--labels=app=client",
		`--overrides={"apiVersion":"v1","spec":{"nodeName":"worker2"}}`)
	c.eventually("kwok runs the client pod with an IP from worker2's pod CIDR", func() bool {
		return strings.HasPrefix(c.value("{.status.podIP}", "pod", "client"), "10.247.0.")
	})
	remoteIP := netip.MustParseAddr(c.value("{.status.podIP}", "pod", "client"))
	remote := routedFromNode(t, node, "remote", netip.PrefixFrom(remoteIP, 24), netip.MustParseAddr("10.247.0.254"))
	fromRemote := func() error { return remote.Probe(netns.TCP, target, time.Second) }
	c.eventually("the ipBlock rule does not admit the pod on worker2", func() bool { return netns.IsBlocked(fromRemote()) })

	c.kubectlIn(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client-pods}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
`, "apply", "-f", "-")
	c.eventually("a pod selector lets in the client pod from the other ClusterCIDR", func() bool { return fromRemote() == nil })
	c.kubectl("label", "pod", "client", "app=other", "--overwrite")
	c.eventually("and shuts it out once the pod no longer matches", func() bool { return netns.IsBlocked(fromRemote()) })
	assert.True(t, reachable(), "the external client is still let in by its ipBlock")
	t.Logf("kubectl get networkpolicy:\n%s", c.kubectl("get", "networkpolicy"))
	rules := iptablesSave(t, node)
	own := podRules(t, node, rules, target.Addr())
	t.Logf("the pod's rules:\n%s", own)
	assert.Regexp(t, `-A KUBE-POD-FW-[A-Z2-7]{16} -j KUBE-NWPLCY-[A-Z2-7]{16}`, own, "the chain of the pod's group jumps to its policies' chains")
	assert.Regexp(t, `(?m)^-A FORWARD .*-j KUBE-ROUTER-FORWARD$`, rules)
	assert.Contains(t, rules, ":KUBE-NWPLCY-", "the policies have their chains")
	srv.stop(t)

	srv = c.start("--disable-network-policy")
	assert.NotContains(t, iptablesSave(t, node), "KUBE-", "--disable-network-policy removes every rule and chain")
	sets, err := node.Exec(ctx, "ipset", "list", "-n")
	require.NoError(t, err)
	assert.NotContains(t, sets, "KUBE-", "and every ipset")
	assert.True(t, reachable(), "the pod is reachable without enforcement")
	srv.stop(t)
}

// routedFromNode makes a namespace whose eth0 has addr, behind a veth whose node end has
// gateway in the same prefix, with its default route through gateway.
func routedFromNode(t *testing.T, node *netns.Namespace, name string, addr netip.Prefix, gateway netip.Addr) *netns.Namespace {
	t.Helper()
	ctx := t.Context()
	ns := netns.NewT(t, name)
	end, nodeEnd, err := ns.AddVeth(ctx, "eth0", node, "v"+name)
	require.NoError(t, err)
	require.NoError(t, nodeEnd.AddAddr(ctx, netip.PrefixFrom(gateway, addr.Bits())))
	require.NoError(t, end.AddAddr(ctx, addr))
	require.NoError(t, ns.AddDefaultRoute(ctx, gateway))
	return ns
}

func iptablesSave(t *testing.T, ns *netns.Namespace) string {
	t.Helper()
	out, err := ns.Exec(context.Background(), "iptables-save")
	require.NoError(t, err)
	return out
}

// podRules lists the FORWARD jumps whose set holds the pod's address (its groups' chains), those
// chains, and the policy chains they jump to, as `iptables -S` prints them.
func podRules(t *testing.T, ns *netns.Namespace, rules string, pod netip.Addr) string {
	var b strings.Builder
	jump := regexp.MustCompile(`^-A KUBE-ROUTER-FORWARD -m set --match-set (\S+) (?:src|dst) -j (KUBE-POD-FW-[A-Z2-7]{16})$`)
	for line := range strings.Lines(rules) {
		m := jump.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		if _, err := ns.Exec(t.Context(), "ipset", "test", m[1], pod.String()); err != nil {
			continue // another group's set
		}
		b.WriteString(line)
		own, err := ns.Exec(t.Context(), "iptables", "-S", m[2])
		require.NoError(t, err)
		b.WriteString(own)
		for _, target := range regexp.MustCompile(`-j (KUBE-NWPLCY-[A-Z2-7]{16})`).FindAllStringSubmatch(own, -1) {
			policy, err := ns.Exec(t.Context(), "iptables", "-S", target[1])
			require.NoError(t, err)
			b.WriteString(policy)
		}
	}
	return b.String()
}
