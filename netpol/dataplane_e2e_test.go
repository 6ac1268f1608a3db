package netpol

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/k3snet/k3snet/internal/netns"
	"github.com/k3snet/k3snet/netpol/netpoltest"

	"github.com/k3snet/k3snet/netpol/reference"
)

// The upstream e2e model on a real kernel: namespaces x, y, z with pods a, b, c, each pod a
// network namespace with the model's addresses (10.0.<ns>.<pod> and fd00::<ns>:<pod>, see
// fixtures_test.go), all on node-1, so every policy of the model is the node's to enforce:
//
//	pod x/a ──veth m0──┐
//	pod x/b ──veth m1──┤ node (pod CIDRs 10.0.0.0/16, fd00::/64)
//	  ...              │
//	pod z/c ──veth m8──┘
//
// Pods are routed as Calico routes them: each has a /32 (/128) and a default route through a
// link-local gateway the node answers for, and the node routes each pod address to its veth,
// so pod-to-pod traffic of every namespace crosses the node's FORWARD chain.

const (
	// modelGateway4 is the IPv4 gateway of every model pod. It lives on the node's lo, so the
	// node answers ARP for it on every veth and sends its ICMP errors from it.
	modelGateway4 = "169.254.1.1"
	// modelGateway6 is the IPv6 gateway of every model pod, on each node end of a veth.
	modelGateway6 = "fe80::1"
	// modelNodeAddr6 gives the node a global IPv6 source for its ICMPv6 errors, outside the
	// pod CIDR.
	modelNodeAddr6 = "fd00:ffff::1"
)

// newModelNode builds the model above, skipping the test when namespaces cannot be made.
// Its hosts and pods are the model's, in x/a, x/b, ..., z/c order; each pod serves TCP and
// UDP (and SCTP when the kernel has it) on 80 and 81 under the e2e container port names.
func newModelNode(t *testing.T) *testNode {
	t.Helper()
	ctx := t.Context()
	tn := newBareNode(t, netip.MustParsePrefix("10.0.0.0/16"), netip.MustParsePrefix("fd00::/64"))
	lo := tn.node.Link("lo")
	require.NoError(t, lo.AddAddr(ctx, netip.MustParsePrefix(modelGateway4+"/32")))
	require.NoError(t, lo.AddAddr(ctx, netip.MustParsePrefix(modelNodeAddr6+"/128")))
	protos := []netns.Proto{netns.TCP, netns.UDP}
	if ok, err := netns.SCTPSupported(); err == nil && ok {
		protos = append(protos, netns.SCTP)
	}
	m := newModel(nil, nil)
	tn.nss, tn.pods = m.namespaces, m.pods
	for i, pod := range m.pods {
		h := testHost{ns: netns.NewT(t, "pod"), pod: pod,
			v4: addr(pod.Status.PodIPs[0].IP), v6: addr(pod.Status.PodIPs[1].IP)}
		podEnd, nodeEnd, err := h.ns.AddVeth(ctx, "eth0", tn.node, fmt.Sprintf("m%d", i))
		require.NoError(t, err)
		require.NoError(t, podEnd.AddAddr(ctx, netip.PrefixFrom(h.v4, 32)))
		require.NoError(t, podEnd.AddAddr(ctx, netip.PrefixFrom(h.v6, 128)))
		require.NoError(t, nodeEnd.AddAddr(ctx, netip.MustParsePrefix(modelGateway6+"/64")))
		for _, c := range []struct {
			ns   *netns.Namespace
			args []string
		}{
			{h.ns, []string{"route", "add", modelGateway4, "dev", "eth0", "scope", "link"}},
			{h.ns, []string{"route", "add", "default", "via", modelGateway4, "dev", "eth0"}},
			{h.ns, []string{"-6", "route", "add", "default", "via", modelGateway6, "dev", "eth0"}},
			{tn.node, []string{"route", "add", h.v4.String() + "/32", "dev", nodeEnd.Name()}},
			{tn.node, []string{"-6", "route", "add", h.v6.String() + "/128", "dev", nodeEnd.Name()}},
		} {
			_, err := c.ns.Exec(ctx, "ip", c.args...)
			require.NoError(t, err)
		}
		serveEcho(t, h.ns, protos...)
		tn.hosts = append(tn.hosts, h)
	}
	return tn
}

// modelInput returns the compiler input of the model node for m's objects and policies.
func (tn *testNode) modelInput(m model, policies ...*networkingv1.NetworkPolicy) Input {
	return Input{NodeName: nodeName, PodCIDRs: tn.cidrs, Pods: m.pods, Namespaces: m.namespaces, Policies: policies}
}

// sctpUnsupportedSkip is the reason SCTP connectivity cells are not probed on this kernel.
const sctpUnsupportedSkip = "SCTP connectivity cells not probed: socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) fails with EPROTONOSUPPORT on this kernel"

// modelNodes is how many model nodes a test spreads its cases over. A blocked IPv6 TCP cell
// costs a second (Linux honours the ICMPv6 error only after the first SYN retransmission), so
// nodes probing side by side save more time than they cost to build (under a second each).
const modelNodes = 6

// newModelNodes builds n model nodes.
func newModelNodes(t *testing.T, n int) []*testNode {
	t.Helper()
	nodes := make([]*testNode, n)
	for i := range nodes {
		nodes[i] = newModelNode(t)
	}
	return nodes
}

// runOnNodes runs one subtest per case, named by name, spread over nodes: node k runs cases
// k, k+len(nodes), ... one after another, the nodes side by side. The split is fixed, so a
// run replays the same sequence of syncs on every node; each case applies a whole state, so
// its expectations do not depend on the case before it.
func runOnNodes[C any](t *testing.T, nodes []*testNode, cases []C, name func(C) string, run func(*testing.T, *testNode, C)) {
	t.Helper()
	var wg sync.WaitGroup
	for k, tn := range nodes {
		wg.Go(func() {
			for i := k; i < len(cases); i += len(nodes) {
				t.Run(name(cases[i]), func(t *testing.T) { run(t, tn, cases[i]) })
			}
		})
	}
	wg.Wait()
}

// TestDataplaneUpstreamE2E replays every case of the upstream e2e list on model
// nodes, in both families unless the case is for one: it applies the case's objects and
// policies to the kernel, probes all 72 cells of the 9×9 matrix with real connections and
// requires the observed matrix, the evaluator's and the upstream expectation to agree.
// Without SCTP sockets the SCTP cases check their TCP cells (a policy allowing only SCTP must
// still deny TCP) and that the SCTP rules are in the kernel, then skip the SCTP cells.
func TestDataplaneUpstreamE2E(t *testing.T) {
	t.Parallel()
	sctp, err := netns.SCTPSupported()
	require.NoError(t, err)
	runOnNodes(t, newModelNodes(t, modelNodes), upstreamE2ECases(),
		func(c netpoltest.Case) string { return c.Name },
		func(t *testing.T, tn *testNode, c netpoltest.Case) {
			// One sync serves both families: the kernel holds both at once.
			m := newModel(c.NamespaceTweaks, c.PodTweaks)
			cluster := m.cluster(c.Policies...)
			tn.apply(t, tn.modelInput(m, c.Policies...))
			for _, family := range c.RunFamilies() {
				t.Run(string(family), func(t *testing.T) {
					probe := caseProbe(c)
					probe.Family = family
					if c.TCPWant != nil {
						tn.requireSCTPRules(t, family, c.Policies)
						tcp := probe
						tcp.Protocol = corev1.ProtocolTCP
						tn.requireUpstreamMatrix(t, c.Name, cluster, m, tcp, c.TCPWant)
						if !sctp {
							t.Skip(sctpUnsupportedSkip + "; the TCP cells on the same port were")
						}
					}
					tn.requireUpstreamMatrix(t, c.Name, cluster, m, probe, c.Want)
				})
			}
		})
}

// requireUpstreamMatrix probes every cell of the model node with probe and requires the
// observed matrix, the evaluator's and want to agree.
func (tn *testNode) requireUpstreamMatrix(t *testing.T, name string, cluster reference.Cluster, m model, probe reference.Probe, want *netpoltest.Expectation) {
	t.Helper()
	expected := expectedMatrix(want, probe)
	evaluated, err := reference.Reachability(cluster, m.endpoints(), probe)
	require.NoError(t, err)
	if diff := expected.Diff(evaluated); len(diff) > 0 {
		t.Errorf("case %q, probe %s: the evaluator disagrees with upstream:\n%s", name, probe, strings.Join(diff, "\n"))
	}
	got := tn.observe(t, probe)
	if diff := evaluated.Diff(got); len(diff) > 0 {
		t.Errorf("case %q, probe %s: the kernel disagrees with the evaluator:\n%s\nwant:\n%sgot:\n%s",
			name, probe, strings.Join(diff, "\n"), evaluated, got)
	}
}

// requireSCTPRules requires a rule matching SCTP on every numeric SCTP port the policies
// name, in the tables of family.
func (tn *testNode) requireSCTPRules(t *testing.T, family corev1.IPFamily, policies []*networkingv1.NetworkPolicy) {
	t.Helper()
	var want []*regexp.Regexp
	for _, np := range policies {
		for _, rule := range np.Spec.Ingress {
			for _, p := range rule.Ports {
				if p.Protocol != nil && *p.Protocol == corev1.ProtocolSCTP && p.Port != nil {
					want = append(want, regexp.MustCompile(fmt.Sprintf(`(?m)^-A KUBE-NWPLCY-\w+ -p sctp .*-m sctp --dport %s `, p.Port.String())))
				}
			}
		}
	}
	if len(want) == 0 {
		return
	}
	save := "iptables-save"
	if family == corev1.IPv6Protocol {
		save = "ip6tables-save"
	}
	dump, err := tn.node.Exec(t.Context(), save)
	require.NoError(t, err)
	for _, w := range want {
		if !w.MatchString(dump) {
			t.Errorf("no rule matching %s in the %s kernel tables:\n%s", w, family, strings.Join(ownObjects(dump), "\n"))
		}
	}
}
