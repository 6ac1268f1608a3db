package netpol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/k3snet/k3snet/internal/netns"

	"github.com/k3snet/k3snet/netpol/reference"
)

// The dataplane tests build a small node in network namespaces and push real packets
// through the rules Apply installs:
//
//	pod x/a, x/b, y/a, y/b ──veth── node ──veth── pod z/a (on node-2, pod CIDR 10.42.1.0/24)
//	(node-1, pod CIDR 10.42.0.0/24)      └──veth── external client 192.168.100.2
//
// Every link is routed (a /30 per pod, as Calico does), so all pod traffic crosses the node's
// FORWARD chain, where kube-router hooks routed pod traffic. Each pod and the
// external client serve TCP and UDP echo on ports 80 and 81; the model pods also declare the
// e2e named ports serve-80-tcp etc. (fixtures_test.go). The observed matrix of every probe
// must equal the reference evaluator's Reachability.

const (
	// probeAllowed bounds a probe expected to pass; it returns as soon as the echo arrives.
	probeAllowed = 5 * time.Second
	// nodeName is the node under test.
	nodeName = "node-1"
)

// testNode is the topology above.
type testNode struct {
	node *netns.Namespace
	dp   *Dataplane
	// hosts are the pods and the external client, in matrix order.
	hosts []testHost
	pods  []*corev1.Pod
	nss   []*corev1.Namespace
	// cidrs are node-1's pod CIDRs.
	cidrs []netip.Prefix
}

// testHost is one end of the matrix: a pod or the external client.
type testHost struct {
	ns     *netns.Namespace
	pod    *corev1.Pod // nil for the external client
	v4, v6 netip.Addr
}

// endpoint returns the host as an evaluator endpoint of fam.
func (h testHost) endpoint(fam corev1.IPFamily) reference.Endpoint {
	if h.pod != nil {
		return reference.Endpoint{Pod: h.pod}
	}
	if fam == corev1.IPv6Protocol {
		return reference.Endpoint{IP: h.v6}
	}
	return reference.Endpoint{IP: h.v4}
}

// nsRunner runs commands inside ns: ExecRunner on a thread switched into the namespace, whose
// children inherit it. That spares each command the mount work of `ip netns exec`.
func nsRunner(ns *netns.Namespace) Runner {
	return func(ctx context.Context, stdin io.Reader, name string, args ...string) (string, error) {
		var out string
		err := ns.Do(func() error {
			var err error
			out, err = ExecRunner(ctx, stdin, name, args...)
			return err
		})
		return out, err
	}
}

// newTestNode builds the topology, skipping the test when namespaces cannot be made.
func newTestNode(t *testing.T) *testNode {
	t.Helper()
	ctx := t.Context()
	tn := newBareNode(t, netip.MustParsePrefix("10.42.0.0/24"), netip.MustParsePrefix("fd42::/64"))
	for _, ns := range []string{"x", "y", "z"} {
		tn.nss = append(tn.nss, makeNamespace(ns))
	}
	// link joins h to the node over a /30 (/126): the node side takes base+1, the host base+2.
	link := func(i int, prefix string, base4, base6 string) testHost {
		h := testHost{ns: netns.NewT(t, prefix)}
		hostEnd, nodeEnd, err := h.ns.AddVeth(ctx, "eth0", tn.node, fmt.Sprintf("v%d", i))
		require.NoError(t, err)
		b4, b6 := netip.MustParseAddr(base4), netip.MustParseAddr(base6)
		g4, g6 := b4.Next(), b6.Next()
		h.v4, h.v6 = g4.Next(), g6.Next()
		require.NoError(t, nodeEnd.AddAddr(ctx, netip.PrefixFrom(g4, 30)))
		require.NoError(t, nodeEnd.AddAddr(ctx, netip.PrefixFrom(g6, 126)))
		require.NoError(t, hostEnd.AddAddr(ctx, netip.PrefixFrom(h.v4, 30)))
		require.NoError(t, hostEnd.AddAddr(ctx, netip.PrefixFrom(h.v6, 126)))
		require.NoError(t, h.ns.AddDefaultRoute(ctx, g4))
		require.NoError(t, h.ns.AddDefaultRoute(ctx, g6))
		serveEcho(t, h.ns, netns.TCP, netns.UDP)
		return h
	}
	for i, name := range []string{"x/a", "x/b", "y/a", "y/b"} {
		ns, pod, _ := strings.Cut(name, "/")
		h := link(i, "pod", fmt.Sprintf("10.42.0.%d", 4*i), fmt.Sprintf("fd42::%x", 4*i))
		h.pod = makePod(ns, pod, onNode(nodeName), withIPs(h.v4.String(), h.v6.String()))
		tn.hosts = append(tn.hosts, h)
	}
	remote := link(4, "pod", "10.42.1.0", "fd42:1::")
	remote.pod = makePod("z", "a", onNode("node-2"), withIPs(remote.v4.String(), remote.v6.String()))
	tn.hosts = append(tn.hosts, remote, link(5, "ext", "192.168.100.0", "fd99::"))
	for _, h := range tn.hosts {
		if h.pod != nil {
			tn.pods = append(tn.pods, h.pod)
		}
	}
	return tn
}

// newBareNode returns a node namespace with pod CIDRs cidrs and a Dataplane programming it,
// routing between its links, with no host attached yet.
func newBareNode(t *testing.T, cidrs ...netip.Prefix) *testNode {
	t.Helper()
	netns.Require(t)
	tn := &testNode{node: netns.NewT(t, "node"), cidrs: cidrs}
	tn.dp = NewDataplane(nsRunner(tn.node))
	require.NoError(t, tn.node.EnableForwarding())
	// REJECT answers with ICMP errors, which the kernel rate-limits per destination; blocked
	// probes must see every one, or they wait for their timeout.
	for _, key := range []string{"net.ipv4.icmp_ratelimit", "net.ipv6.icmp.ratelimit", "net.ipv4.icmp_msgs_per_sec"} {
		value := "0"
		if key == "net.ipv4.icmp_msgs_per_sec" {
			value = "100000"
		}
		require.NoError(t, tn.node.SetSysctl(key, value))
	}
	return tn
}

// serveEcho starts echo servers on ports 80 and 81 in ns, one per protocol, on every address.
func serveEcho(t *testing.T, ns *netns.Namespace, protos ...netns.Proto) {
	t.Helper()
	for _, port := range []uint16{80, 81} {
		for _, proto := range protos {
			srv, err := ns.Serve(t.Context(), proto, netip.AddrPortFrom(netip.IPv6Unspecified(), port))
			require.NoError(t, err)
			t.Cleanup(func() { assert.NoError(t, srv.Close()) })
		}
	}
}

// input returns the compiler input of the test node with policies.
func (tn *testNode) input(policies ...*networkingv1.NetworkPolicy) Input {
	return Input{NodeName: nodeName, PodCIDRs: tn.cidrs, Pods: tn.pods, Namespaces: tn.nss, Policies: policies}
}

// apply compiles in and applies it, then forgets conntrack state so no flow admitted under
// the previous rules is taken for a reply under the new ones.
func (tn *testNode) apply(t *testing.T, in Input) {
	t.Helper()
	st, err := Compile(in)
	require.NoError(t, err)
	require.NoError(t, tn.dp.Apply(t.Context(), st))
	_, _ = tn.node.Exec(t.Context(), "conntrack", "-F") // exits 1 when the table is empty
}

// observe probes every ordered pair of hosts and returns the observed matrix.
func (tn *testNode) observe(t *testing.T, probe reference.Probe) reference.Matrix {
	t.Helper()
	return tn.observeCells(t, probe, nil)
}

// observeCells probes the ordered pairs of hosts for which probed returns true, every pair
// when it is nil, and returns the observed matrix; cells not probed are left denied.
func (tn *testNode) observeCells(t *testing.T, probe reference.Probe, probed func(i, j int) bool) reference.Matrix {
	t.Helper()
	eps := make([]reference.Endpoint, len(tn.hosts))
	for i, h := range tn.hosts {
		eps[i] = h.endpoint(probe.Family)
	}
	m := reference.NewMatrix(probe, eps)
	proto := netns.TCP
	switch probe.Protocol {
	case corev1.ProtocolUDP:
		proto = netns.UDP
	case corev1.ProtocolSCTP:
		proto = netns.SCTP
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []error
	// Linux reports an ICMPv6 port unreachable to a TCP connect only after the first SYN
	// retransmission (1 s), so blocked IPv6 TCP cells are slow; run many at once.
	sem := make(chan struct{}, 16)
	for i, src := range tn.hosts {
		for j, dst := range tn.hosts {
			if i == j {
				// Loopback never leaves the pod, so no dataplane sees it.
				m.Allowed[i][j] = true
				continue
			}
			if probed != nil && !probed(i, j) {
				continue
			}
			addr := dst.v4
			if probe.Family == corev1.IPv6Protocol {
				addr = dst.v6
			}
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				err := src.ns.Probe(proto, netip.AddrPortFrom(addr, uint16(probe.Port)), probeAllowed)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					m.Allowed[i][j] = true
				case !netns.IsBlocked(err):
					failures = append(failures, fmt.Errorf("%s -> %s: %w", m.Endpoints[i], m.Endpoints[j], err))
				}
			})
		}
	}
	wg.Wait()
	require.NoError(t, errors.Join(failures...))
	return m
}

// requireMatrix probes the node with each probe and compares with the evaluator.
func (tn *testNode) requireMatrix(t *testing.T, cluster reference.Cluster, probes ...reference.Probe) {
	t.Helper()
	for _, probe := range probes {
		eps := make([]reference.Endpoint, len(tn.hosts))
		for i, h := range tn.hosts {
			eps[i] = h.endpoint(probe.Family)
		}
		want, err := reference.Reachability(cluster, eps, probe)
		require.NoError(t, err)
		got := tn.observe(t, probe)
		if diff := want.Diff(got); len(diff) > 0 {
			t.Errorf("probe %s: the dataplane disagrees with the evaluator:\n%s\nwant:\n%sgot:\n%s", probe, strings.Join(diff, "\n"), want, got)
		}
	}
}

// TestDataplaneMatchesEvaluator applies policies to the test node and compares the real-packet
// reachability matrix with the evaluator's, in both families, over TCP and UDP.
func TestDataplaneMatchesEvaluator(t *testing.T) {
	t.Parallel()
	tn := newTestNode(t)
	var (
		podA, podB = labelsSel("pod", "a"), labelsSel("pod", "b")
		nsY        = labelsSel("ns", "y")
		tcp80      = reference.Probe{Port: 80, Family: corev1.IPv4Protocol}
		tcp81      = reference.Probe{Port: 81, Family: corev1.IPv4Protocol}
		udp80      = reference.Probe{Protocol: corev1.ProtocolUDP, Port: 80, Family: corev1.IPv4Protocol}
		tcp80v6    = reference.Probe{Port: 80, Family: corev1.IPv6Protocol}
		udp81v6    = reference.Probe{Protocol: corev1.ProtocolUDP, Port: 81, Family: corev1.IPv6Protocol}
		all        = []reference.Probe{tcp80, tcp81, udp80, tcp80v6, udp81v6}
	)
	tests := []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		probes   []reference.Probe
	}{
		{name: "no policy leaves everything open", probes: all},
		{
			name:     "a deny-all-ingress policy closes every pod of its namespace",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "deny-ingress", ingressRules())},
			probes:   all,
		},
		{
			name: "a namespaceSelector peer admits only pods of the labelled namespace",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "a-from-y", targets(podA),
				ingressRules(from(peers(nsPeer(nsY)))))},
			probes: all,
		},
		{
			name: "a podSelector AND namespaceSelector peer admits only matching pods, remote ones included",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "a-from-a-in-y-z", targets(podA),
				ingressRules(from(peers(podNSPeer(podA, exprSel("ns", "In", "y", "z")), podNSPeer(podB, labelsSel("ns", "x"))))))},
			probes: all,
		},
		{
			name: "an except in one ipBlock peer does not undo another peer of the same rule",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "a-from-blocks", targets(podA),
				ingressRules(from(peers(
					cidrPeer("0.0.0.0/0", "10.42.0.0/16"), cidrPeer("10.42.1.0/24"),
					cidrPeer("::/0", "fd42::/32"), cidrPeer("fd42:1::/64")))))},
			probes: all,
		},
		{
			name: "an egress ipBlock /0 with an except reaches everything but the except",
			policies: []*networkingv1.NetworkPolicy{makePolicy("y", "b-to-all-but-x-a", targets(podB),
				policyTypes(typeEgress), egressRules(to(peers(cidrPeer("0.0.0.0/0", "10.42.0.0/30"), cidrPeer("::/0", "fd42::/126")))))},
			probes: all,
		},
		{
			name: "a named ingress port opens only the port the target declares under that name",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "serve-81", ingressRules(
				from(nil, namedPort("serve-81-tcp"), protoNamedPort(corev1.ProtocolUDP, "serve-80-udp"))))},
			probes: all,
		},
		{
			name: "an egress named port without to reaches pods of every namespace and no external address",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "a-egress-named", targets(podA),
				policyTypes(typeEgress), egressRules(to(nil, namedPort("serve-80-tcp"))))},
			probes: []reference.Probe{tcp80, tcp81, tcp80v6},
		},
		{
			name: "an egress policy without rules denies everything the pod sends",
			policies: []*networkingv1.NetworkPolicy{makePolicy("y", "a-no-egress", targets(podA),
				policyTypes(typeEgress))},
			probes: all,
		},
		{
			// kube-router's bug: the ingress rule "from x" would satisfy x/a's
			// egress to x/b, which the egress rules (UDP 53 only) deny.
			name: "the ingress rules of a two-way policy do not allow its egress",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "two-way", policyTypes(typeIngress, typeEgress),
				ingressRules(from(peers(podPeer(labelsSel())))),
				egressRules(to(nil, protoPort(corev1.ProtocolUDP, 53))))},
			probes: all,
		},
		{
			name: "a policy allowing only SCTP still isolates the pod for TCP and UDP",
			policies: []*networkingv1.NetworkPolicy{makePolicy("y", "sctp-only", ingressRules(
				from(nil, protoOnly(corev1.ProtocolSCTP))))},
			probes: []reference.Probe{tcp80, udp80},
		},
		{
			name: "stacked policies are OR-ed and a port range admits its ends",
			policies: []*networkingv1.NetworkPolicy{
				makePolicy("x", "a-81-from-y", targets(podA), ingressRules(from(peers(nsPeer(nsY)), port(81)))),
				makePolicy("x", "a-range-from-ext", targets(podA), ingressRules(from(peers(cidrPeer("192.168.100.0/24"), cidrPeer("fd99::/64")), portRange(corev1.ProtocolTCP, 79, 80)))),
			},
			probes: all,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tn.apply(t, tn.input(tt.policies...))
			tn.requireMatrix(t, reference.Cluster{Namespaces: tn.nss, Policies: tt.policies}, tt.probes...)
		})
	}
}

// kernelDump returns what iptables-save, ip6tables-save and ipset save print in the node,
// without the timestamp comments, for before/after comparisons.
func (tn *testNode) kernelDump(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, cmd := range [][]string{{"iptables-save"}, {"ip6tables-save"}, {"ipset", "save"}} {
		out, err := tn.node.Exec(t.Context(), cmd[0], cmd[1:]...)
		require.NoError(t, err)
		for line := range strings.Lines(out) {
			if !strings.HasPrefix(line, "#") {
				b.WriteString(line)
			}
		}
	}
	return b.String()
}

// ownObjects lists the lines of a kernel dump that name one of our chains or sets.
func ownObjects(dump string) []string {
	var out []string
	for line := range strings.Lines(dump) {
		for _, marker := range []string{ChainInput, ChainForward, ChainOutput, podChainPrefix, policyChainPrefix, srcSetPrefix, dstSetPrefix} {
			if strings.Contains(line, marker) {
				out = append(out, strings.TrimSpace(line))
				break
			}
		}
	}
	return out
}

// TestDataplaneHousekeeping checks what a sync leaves alone and what Cleanup removes: foreign
// rules, chains and sets survive every sync; a second sync of the same state changes nothing;
// a local pod the state does not know is isolated by the default deny; K3s's documented
// `iptables-save | grep -v KUBE-ROUTER | iptables-restore` unhooks every rule of ours and
// leaves only unreferenced chains and sets; Cleanup leaves nothing of ours.
func TestDataplaneHousekeeping(t *testing.T) {
	t.Parallel()
	tn := newTestNode(t)
	ctx := t.Context()
	for _, cmd := range [][]string{
		{"iptables", "-A", "FORWARD", "-s", "203.0.113.0/24", "-m", "comment", "--comment", "foreign", "-j", "ACCEPT"},
		{"ip6tables", "-A", "FORWARD", "-s", "2001:db8::/32", "-m", "comment", "--comment", "foreign", "-j", "ACCEPT"},
		{"iptables", "-N", "KUBE-FORWARD"}, // kube-proxy's chain: KUBE- but not ours
		{"iptables", "-A", "KUBE-FORWARD", "-m", "mark", "--mark", "0x4000/0x4000", "-j", "ACCEPT"},
		{"iptables", "-A", "FORWARD", "-j", "KUBE-FORWARD"},
		{"ipset", "create", "foreign", "hash:ip"},
		{"ipset", "add", "foreign", "203.0.113.7"},
	} {
		_, err := tn.node.Exec(ctx, cmd[0], cmd[1:]...)
		require.NoError(t, err)
	}
	foreign := []string{
		"-A FORWARD -s 203.0.113.0/24 -m comment --comment foreign -j ACCEPT",
		"-A FORWARD -s 2001:db8::/32 -m comment --comment foreign -j ACCEPT",
		"-A KUBE-FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT",
		"-A FORWARD -j KUBE-FORWARD",
		"add foreign 203.0.113.7",
	}
	requireForeign := func(t *testing.T, dump string) {
		t.Helper()
		for _, line := range foreign {
			require.Contains(t, dump, line+"\n")
		}
	}
	deny := makePolicy("x", "deny-ingress", ingressRules())
	tcp80 := reference.Probe{Port: 80, Family: corev1.IPv4Protocol}
	tcp80v6 := reference.Probe{Port: 80, Family: corev1.IPv6Protocol}

	t.Run("foreign rules and sets survive syncs and our jumps come first", func(t *testing.T) {
		tn.apply(t, tn.input())
		tn.apply(t, tn.input(deny))
		dump := tn.kernelDump(t)
		requireForeign(t, dump)
		require.Contains(t, dump, "-A FORWARD -m comment --comment \"kube-router netpol - ")
		require.Regexp(t, `(?m)^-A INPUT -m comment --comment "kube-router netpol - \w+" -j KUBE-ROUTER-INPUT\n-A FORWARD -m comment --comment "kube-router netpol - \w+" -j KUBE-ROUTER-FORWARD\n`, dump)
		tn.requireMatrix(t, reference.Cluster{Namespaces: tn.nss, Policies: []*networkingv1.NetworkPolicy{deny}}, tcp80, tcp80v6)
	})

	t.Run("the node reaches an isolated pod, as kubelet probes must", func(t *testing.T) {
		xa := tn.hosts[0]
		require.NoError(t, tn.node.Probe(netns.TCP, netip.AddrPortFrom(xa.v4, 80), probeAllowed))
		require.NoError(t, tn.node.Probe(netns.UDP, netip.AddrPortFrom(xa.v6, 81), probeAllowed))
		ext := tn.hosts[len(tn.hosts)-1]
		require.True(t, netns.IsBlocked(ext.ns.Probe(netns.TCP, netip.AddrPortFrom(xa.v4, 80), probeAllowed)))
	})

	t.Run("a second sync of the same state changes nothing", func(t *testing.T) {
		before := tn.kernelDump(t)
		tn.apply(t, tn.input(deny))
		require.Equal(t, before, tn.kernelDump(t))
		// A restarted controller has no cache: it reads the table and restores it unchanged.
		st, err := Compile(tn.input(deny))
		require.NoError(t, err)
		require.NoError(t, NewDataplane(nsRunner(tn.node)).Apply(ctx, st))
		require.Equal(t, before, tn.kernelDump(t))
	})

	t.Run("a jump moved by someone else is put back at position 1 once", func(t *testing.T) {
		_, err := tn.node.Exec(ctx, "iptables", "-I", "FORWARD", "1", "-s", "198.51.100.0/24", "-j", "ACCEPT")
		require.NoError(t, err)
		tn.apply(t, tn.input(deny))
		out, err := tn.node.Exec(ctx, "iptables", "-S", "FORWARD")
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		require.Contains(t, lines[1], "-j KUBE-ROUTER-FORWARD")
		require.Equal(t, 1, strings.Count(out, "-j KUBE-ROUTER-FORWARD"))
	})

	t.Run("edits inside our chains and sets are repaired once the caches are forgotten", func(t *testing.T) {
		tn.apply(t, tn.input(deny))
		want := tn.kernelDump(t)
		// Someone opens our forward chain and removes a member from one of our sets.
		_, err := tn.node.Exec(ctx, "iptables", "-I", "KUBE-ROUTER-FORWARD", "1", "-m", "comment", "--comment", "drift", "-j", "ACCEPT")
		require.NoError(t, err)
		var member []string
		for _, line := range ownObjects(want) {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "add" {
				member = f[1:]
				break
			}
		}
		require.NotNil(t, member, "no set member to remove in:\n%s", want)
		_, err = tn.node.Exec(ctx, "ipset", "del", member[0], member[1])
		require.NoError(t, err)
		drifted := tn.kernelDump(t)

		// An Apply from the caches checks only our jumps: this is what the controller's
		// MaxSyncInterval repair (ForgetApplied, then Apply) is for.
		tn.apply(t, tn.input(deny))
		require.Equal(t, drifted, tn.kernelDump(t))
		tn.dp.ForgetApplied()
		tn.apply(t, tn.input(deny))
		require.Equal(t, want, tn.kernelDump(t))
	})

	t.Run("a local pod missing from the state is isolated by the default deny", func(t *testing.T) {
		in := tn.input()
		in.Pods = tn.pods[1:] // x/a runs but is not programmed yet
		tn.apply(t, in)
		ext := tn.hosts[len(tn.hosts)-1]
		xa, yb := tn.hosts[0], tn.hosts[3]
		for _, c := range []struct {
			from, to *netns.Namespace
			addr     netip.Addr
			allowed  bool
		}{
			{ext.ns, xa.ns, xa.v4, false}, {xa.ns, ext.ns, ext.v4, false}, {yb.ns, xa.ns, xa.v6, false},
			{ext.ns, yb.ns, yb.v4, true}, {yb.ns, ext.ns, ext.v6, true},
		} {
			err := c.from.Probe(netns.TCP, netip.AddrPortFrom(c.addr, 80), probeAllowed)
			if c.allowed {
				require.NoError(t, err, "to %s", c.addr)
			} else {
				require.True(t, netns.IsBlocked(err), "to %s: %v", c.addr, err)
			}
		}
	})

	t.Run("K3s's grep -v KUBE-ROUTER unhooks every rule of ours", func(t *testing.T) {
		tn.apply(t, tn.input(deny))
		for _, fam := range []string{"iptables", "ip6tables"} {
			_, err := tn.node.Exec(ctx, "sh", "-c", fam+"-save | grep -v KUBE-ROUTER | "+fam+"-restore")
			require.NoError(t, err)
		}
		dump := tn.kernelDump(t)
		requireForeign(t, dump)
		// What the grep leaves: our pod and policy chains, which nothing jumps to any more, and
		// every set. Traffic is back to no policy at all.
		for _, line := range ownObjects(dump) {
			require.Regexp(t, `^(:KUBE-(POD-FW|NWPLCY)-[A-Z0-9-]+ - \[0:0\]|-A KUBE-(POD-FW|NWPLCY)-[A-Z0-9-]+ .*|(create|add) (inet6:)?KUBE-(SRC|DST)-.*)$`, line)
		}
		tn.requireMatrix(t, reference.Cluster{Namespaces: tn.nss}, tcp80, tcp80v6)
	})

	t.Run("Cleanup leaves nothing of ours and keeps the rest", func(t *testing.T) {
		tn.apply(t, tn.input(deny))
		require.NoError(t, tn.dp.Cleanup(ctx))
		dump := tn.kernelDump(t)
		require.Empty(t, ownObjects(dump))
		requireForeign(t, dump)
		require.NoError(t, tn.dp.Cleanup(ctx), "a second Cleanup has nothing to do")
		tn.requireMatrix(t, reference.Cluster{Namespaces: tn.nss}, tcp80)
	})
}

// TestDataplaneLeavesKubeRouterServiceChain: kube-router's service proxy keeps its chain
// KUBE-ROUTER-SERVICES in the filter table, jumped to from INPUT. The KUBE-ROUTER- prefix does
// not make it ours: in both families it survives a first Apply, an Apply from the caches, a
// drift-repair Apply, a restarted controller's Apply and Cleanup, which still removes
// everything of ours.
func TestDataplaneLeavesKubeRouterServiceChain(t *testing.T) {
	t.Parallel()
	tn := newBareNode(t, netip.MustParsePrefix("10.42.0.0/24"), netip.MustParsePrefix("fd42::/64"))
	tn.nss = []*corev1.Namespace{makeNamespace("x")}
	tn.pods = []*corev1.Pod{makePod("x", "a", onNode(nodeName), withIPs("10.42.0.2", "fd42::2"))}
	ctx := t.Context()
	const comment = "handle traffic to IPVS service IPs in custom chain"
	for _, tool := range []string{"iptables", "ip6tables"} {
		for _, args := range [][]string{
			{"-N", "KUBE-ROUTER-SERVICES"},
			{"-A", "KUBE-ROUTER-SERVICES", "-p", "tcp", "--dport", "8080", "-j", "ACCEPT"},
			{"-I", "INPUT", "1", "-m", "comment", "--comment", comment, "-j", "KUBE-ROUTER-SERVICES"},
		} {
			_, err := tn.node.Exec(ctx, tool, args...)
			require.NoError(t, err)
		}
	}
	foreign := []string{
		":KUBE-ROUTER-SERVICES - [0:0]",
		"-A INPUT -m comment --comment \"" + comment + "\" -j KUBE-ROUTER-SERVICES",
		"-A KUBE-ROUTER-SERVICES -p tcp -m tcp --dport 8080 -j ACCEPT",
	}
	requireForeign := func(step string) {
		t.Helper()
		for _, save := range []string{"iptables-save", "ip6tables-save"} {
			out, err := tn.node.Exec(ctx, save, "-t", "filter")
			require.NoError(t, err)
			for _, line := range foreign {
				require.Contains(t, out, "\n"+line+"\n", "%s after %s", save, step)
			}
		}
	}
	in := tn.input(makePolicy("x", "deny-ingress", ingressRules()))
	tn.apply(t, in)
	requireForeign("a first Apply")
	synced := tn.kernelDump(t)
	require.Contains(t, synced, "-j "+ChainInput)

	tn.apply(t, in)
	requireForeign("an Apply from the caches")
	require.Equal(t, synced, tn.kernelDump(t), "an unchanged resync changes nothing")

	tn.dp.ForgetApplied()
	tn.apply(t, in)
	requireForeign("a drift-repair Apply")
	require.Equal(t, synced, tn.kernelDump(t))

	st, err := Compile(in)
	require.NoError(t, err)
	require.NoError(t, NewDataplane(nsRunner(tn.node)).Apply(ctx, st))
	requireForeign("a restarted controller's Apply")

	require.NoError(t, tn.dp.Cleanup(ctx))
	requireForeign("Cleanup")
	require.Empty(t, ownObjects(tn.kernelDump(t)))
}

// TestDataplaneUpdatesSetMembersInPlace relabels a peer in and out of a policy's peer
// selector and starts and removes a local pod: each sync changes only set members (the set
// names stay, as do the policy chains) and the packets follow the evaluator every time.
func TestDataplaneUpdatesSetMembersInPlace(t *testing.T) {
	t.Parallel()
	tn := newTestNode(t)
	ctx := t.Context()
	fromClients := makePolicy("x", "from-clients", ingressRules(from(peers(podNSPeer(labelsSel("role", "client"), labelsSel())))))
	tcp80, tcp80v6 := reference.Probe{Port: 80, Family: corev1.IPv4Protocol}, reference.Probe{Port: 80, Family: corev1.IPv6Protocol}
	const ya = 2
	setNames := func(t *testing.T) string {
		out, err := tn.node.Exec(ctx, "ipset", "list", "-n")
		require.NoError(t, err)
		return out
	}
	relabel := func(i int, kv ...string) {
		pod := tn.hosts[i].pod.DeepCopy()
		pod.Labels = map[string]string{"pod": pod.Name}
		withLabels(kv...)(pod)
		tn.hosts[i].pod = pod
		tn.pods[i] = pod
	}
	tn.apply(t, tn.input(fromClients))
	names := setNames(t)
	for _, step := range []struct {
		name   string
		change func()
	}{
		{"y/a becomes a client", func() { relabel(ya, "role", "client") }},
		{"y/a stops being a client", func() { relabel(ya) }},
	} {
		t.Run(step.name, func(t *testing.T) {
			step.change()
			tn.apply(t, tn.input(fromClients))
			require.Equal(t, names, setNames(t), "members change, set names do not")
			tn.requireMatrix(t, reference.Cluster{Namespaces: tn.nss, Policies: []*networkingv1.NetworkPolicy{fromClients}}, tcp80, tcp80v6)
		})
	}
}
