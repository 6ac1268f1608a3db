package netpol

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-base/metrics"

	"github.com/k3snet/k3snet/internal/netns"
)

// The tests of this file hold the behaviours kube-router users rely on: ping reaching an
// isolated pod, denied packets on NFLOG group 100, and kube-router's metric names.

func TestCommonChainAcceptsKubeRoutersICMP(t *testing.T) {
	const v4, v6 = corev1.IPv4Protocol, corev1.IPv6Protocol
	conntrack := []string{"-m conntrack --ctstate INVALID -j DROP", "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"}
	icmp4 := func(t string) string { return "-p icmp -m icmp --icmp-type " + t + " -j ACCEPT" }
	icmp6 := func(t string) string { return "-p ipv6-icmp -m icmp6 --icmpv6-type " + t + " -j ACCEPT" }
	for _, tc := range []struct {
		name   string
		family corev1.IPFamily
		deny   bool
		want   []string
	}{
		{"IPv4 by default", v4, false, append(slices.Clone(conntrack),
			icmp4("echo-request"), icmp4("destination-unreachable"), icmp4("time-exceeded"))},
		{"IPv4 with DenyICMPEcho", v4, true, append(slices.Clone(conntrack),
			icmp4("destination-unreachable"), icmp4("time-exceeded"))},
		{"IPv6 by default", v6, false, append(slices.Clone(conntrack),
			icmp6("echo-request"), icmp6("destination-unreachable"), icmp6("time-exceeded"),
			icmp6("neighbour-solicitation"), icmp6("neighbour-advertisement"), icmp6("echo-reply"))},
		{"IPv6 with DenyICMPEcho", v6, true, append(slices.Clone(conntrack),
			icmp6("destination-unreachable"), icmp6("time-exceeded"),
			icmp6("neighbour-solicitation"), icmp6("neighbour-advertisement"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := Compile(Input{NodeName: nodeName, Families: []corev1.IPFamily{tc.family}, DenyICMPEcho: tc.deny})
			require.NoError(t, err)
			assert.Equal(t, tc.want, chainRules(ruleset(t, st, tc.family), ChainCommon))
		})
	}
}

const nflogRule = "-m mark ! --mark 0x10000/0x10000 -m limit --limit 10/min --limit-burst 10 -j NFLOG --nflog-group 100"

// TestPodChainLogsDeniedPacketsBeforeTheReject: every pod chain, isolated or not, sends what
// it is about to reject to NFLOG group 100 first, rate-limited as kube-router does, and the
// restore text carries the rule.
func TestPodChainLogsDeniedPacketsBeforeTheReject(t *testing.T) {
	xa := makePod("x", "a", onNode(nodeName), withIPs("10.42.0.5", "fd42::5"))
	xb := makePod("x", "b", onNode(nodeName), withIPs("10.42.0.6", "fd42::6"))
	in := Input{NodeName: nodeName, Pods: []*corev1.Pod{xa, xb}, Namespaces: []*corev1.Namespace{makeNamespace("x")},
		Policies: []*networkingv1.NetworkPolicy{makePolicy("x", "deny", targets(labelsSel("pod", "a")), ingressRules())},
		PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.42.0.0/24"), netip.MustParsePrefix("fd42::/64")}}
	st, err := Compile(in)
	require.NoError(t, err)
	require.Len(t, st.Rulesets, 2)
	for _, rs := range st.Rulesets {
		for pod, ips := range map[string][2]string{"a": {"10.42.0.5", "fd42::5"}, "b": {"10.42.0.6", "fd42::6"}} {
			ip := ips[0]
			if rs.Family == corev1.IPv6Protocol {
				ip = ips[1]
			}
			for _, dir := range []string{dirIngress, dirEgress} {
				rules := chainRules(rs, groupChainOf(rs, dir, ip))
				i := slices.Index(rules, "-m mark ! --mark 0x10000/0x10000 -j REJECT")
				require.Positive(t, i, "%s x/%s %s", rs.Family, pod, dir)
				assert.Equal(t, nflogRule, rules[i-1], "%s x/%s %s: the log rule goes right before the reject", rs.Family, pod, dir)
			}
		}
		text := renderIPTables(rs, tableState{}, nil)
		assert.Contains(t, text, "-A "+groupChain(rs.Family, dirIngress, policyChainName(rs.Family, "x", "deny", dirIngress))+" "+nflogRule+"\n")
	}
}

// TestControllerHonoursDenyICMPEcho: the option reaches the compiled state.
func TestControllerHonoursDenyICMPEcho(t *testing.T) {
	for _, deny := range []bool{false, true} {
		t.Run("DenyICMPEcho="+strconv.FormatBool(deny), func(t *testing.T) {
			dp := &recordingDataplane{}
			f, ctx := newFixture(t, Options{MinSyncInterval: 10 * time.Millisecond, DenyICMPEcho: deny}, dp, makeNamespace("x"))
			require.NoError(t, f.ctrl.Start(ctx, f.factory))
			require.Eventually(t, func() bool { return f.syncs(t, syncApplied) >= 1 }, waitFor, 10*time.Millisecond)
			st, _ := dp.last()
			rules := chainRules(ruleset(t, st, corev1.IPv4Protocol), ChainCommon)
			assert.Equal(t, !deny, slices.Contains(rules, "-p icmp -m icmp --icmp-type echo-request -j ACCEPT"), "%q", rules)
		})
	}
}

// TestControllerExportsKubeRouterMetrics reads kube-router's netpol metrics from the registry:
// the two sync-time histograms (seconds, the client's default buckets, no labels) observed on
// every sync, and the gauges of policy chains and policy ipsets of the applied state.
func TestControllerExportsKubeRouterMetrics(t *testing.T) {
	dp := &recordingDataplane{}
	policy := makePolicy("x", "web", ingressRules(from(peers(podPeer(labelsSel("pod", "b")), cidrPeer("192.0.2.0/24")))))
	f, ctx := newFixture(t, Options{MinSyncInterval: 10 * time.Millisecond}, dp, makeNamespace("x"),
		makePod("x", "a", onNode(nodeName), withIPs("10.42.0.5")), makePod("x", "b", onNode("node-2"), withIPs("10.42.1.5")), policy)
	require.NoError(t, f.ctrl.Start(ctx, f.factory))
	require.Eventually(t, func() bool { return f.syncs(t, syncApplied) >= 1 }, waitFor, 10*time.Millisecond)
	// An event with no effect: one more sync, which kube-router would time as well.
	ns := makeNamespace("x")
	ns.Labels["team"] = "blue"
	_, err := f.client.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return f.syncs(t, syncUnchanged) >= 1 }, waitFor, 10*time.Millisecond)

	ours := histogram(t, f.registry, "netpol_sync_duration_seconds")
	syncTime := histogram(t, f.registry, "kube_router_controller_iptables_sync_time")
	chainsTime := histogram(t, f.registry, "kube_router_controller_policy_chains_sync_time")
	syncs := uint64(f.syncs(t, syncApplied) + f.syncs(t, syncUnchanged) + f.syncs(t, syncFailed))
	assert.Equal(t, syncs, syncTime.GetSampleCount(), "every sync is timed")
	assert.Equal(t, ours.GetSampleCount(), syncTime.GetSampleCount())
	assert.InDelta(t, ours.GetSampleSum(), syncTime.GetSampleSum(), 1e-9, "the same measurement as ours")
	assert.Equal(t, syncs, chainsTime.GetSampleCount(), "every compile is timed")
	assert.LessOrEqual(t, chainsTime.GetSampleSum(), syncTime.GetSampleSum(), "the compile is part of the sync")
	for _, h := range []*dto.Histogram{syncTime, chainsTime} {
		var bounds []float64
		for _, b := range h.GetBucket() {
			bounds = append(bounds, b.GetUpperBound())
		}
		assert.Equal(t, metrics.DefBuckets, bounds)
	}

	// One ingress chain; the sets of the pod peer and of the ipBlock. The set of programmed
	// local pods and the sets of x/a's ingress and egress groups are no policy's.
	assert.Equal(t, 1.0, f.metric(t, "kube_router_controller_policy_chains"))
	assert.Equal(t, 2.0, f.metric(t, "kube_router_controller_policy_ipsets"))
	assert.Equal(t, 5.0, f.metric(t, "netpol_ipsets", "family", "IPv4"), "ours counts the local pods' and the groups' sets too")
}

// histogram returns the unlabelled histogram name of reg.
func histogram(t *testing.T, reg metrics.KubeRegistry, name string) *dto.Histogram {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range families {
		if mf.GetName() == name {
			require.Equal(t, dto.MetricType_HISTOGRAM, mf.GetType())
			require.Len(t, mf.GetMetric(), 1)
			require.Empty(t, mf.GetMetric()[0].GetLabel())
			return mf.GetMetric()[0].GetHistogram()
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

// TestDataplaneICMPEchoAndNFLOG sends real packets to a pod isolated for ingress: a ping gets
// its reply by default and none with DenyICMPEcho, in both families, and a denied TCP
// connection counts on the NFLOG rule of the pod's chain.
func TestDataplaneICMPEchoAndNFLOG(t *testing.T) {
	t.Parallel()
	tn := newTestNode(t)
	src, dst := tn.hosts[2], tn.hosts[0] // y/a -> x/a
	require.Equal(t, "x/a", dst.pod.Namespace+"/"+dst.pod.Name)
	in := tn.input(makePolicy("x", "deny-ingress", ingressRules()))
	chain := func(tool string) string {
		fam := corev1.IPv4Protocol
		if tool == "ip6tables" {
			fam = corev1.IPv6Protocol
		}
		return groupChain(fam, dirIngress, policyChainName(fam, "x", "deny-ingress", dirIngress))
	}

	tn.apply(t, in)
	for _, addr := range []netip.Addr{dst.v4, dst.v6} {
		assert.True(t, ping(t, src.ns, addr, probeAllowed), "ping %s: kube-router accepts echo requests", addr)
		for _, tool := range []string{"iptables", "ip6tables"} {
			if (tool == "ip6tables") != addr.Is6() {
				continue
			}
			before := nflogPackets(t, tn, tool, chain(tool))
			err := src.ns.Probe(netns.TCP, netip.AddrPortFrom(addr, 80), probeAllowed)
			require.True(t, netns.IsBlocked(err), "TCP to %s must be denied: %v", addr, err)
			assert.Greater(t, nflogPackets(t, tn, tool, chain(tool)), before, "%s: the denied SYN is logged to NFLOG group 100", tool)
		}
	}

	in.DenyICMPEcho = true
	tn.apply(t, in)
	for _, addr := range []netip.Addr{dst.v4, dst.v6} {
		assert.False(t, ping(t, src.ns, addr, 2*time.Second), "ping %s with DenyICMPEcho", addr)
	}
	// The pod that is not isolated still answers.
	assert.True(t, ping(t, dst.ns, src.v4, probeAllowed))
	assert.True(t, ping(t, dst.ns, src.v6, probeAllowed))
}

// nflogPackets returns the packet counter of the NFLOG rule of chain in the node, read with
// `iptables -L -v -x`.
func nflogPackets(t *testing.T, tn *testNode, tool, chain string) uint64 {
	t.Helper()
	out, err := tn.node.Exec(t.Context(), tool, "-t", "filter", "-L", chain, "-v", "-x", "-n")
	require.NoError(t, err)
	for line := range strings.Lines(out) {
		fields := strings.Fields(line)
		if len(fields) > 2 && fields[2] == "NFLOG" && strings.Contains(line, "nflog-group 100") {
			n, err := strconv.ParseUint(fields[0], 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatalf("no NFLOG rule in %s:\n%s", chain, out)
	return 0
}

// pingID tells this process's echo requests apart.
var pingID atomic.Uint32

// ping sends one ICMP echo request from ns to dst on a raw socket and reports whether its
// echo reply arrives within wait; a reject or no answer is false.
func ping(t *testing.T, ns *netns.Namespace, dst netip.Addr, wait time.Duration) bool {
	t.Helper()
	network, request, reply := "ip4:icmp", byte(8), byte(0)
	if dst.Is6() {
		network, request, reply = "ip6:ipv6-icmp", 128, 129
	}
	id := uint16(os.Getpid()) ^ uint16(pingID.Add(1))
	var answered bool
	require.NoError(t, ns.Do(func() error {
		conn, err := net.DialIP(network, nil, &net.IPAddr{IP: dst.AsSlice()})
		if err != nil {
			return err
		}
		defer conn.Close()
		msg := []byte{request, 0, 0, 0, byte(id >> 8), byte(id), 0, 1, 'k', '3', 's'}
		if dst.Is4() {
			// The kernel computes ICMPv6 checksums itself, not ICMPv4 ones.
			sum := icmpChecksum(msg)
			msg[2], msg[3] = byte(sum>>8), byte(sum)
		}
		if _, err := conn.Write(msg); err != nil {
			return err
		}
		if err := conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
			return err
		}
		buf := make([]byte, 1500)
		for {
			// ReadFrom strips the IPv4 header; Read would not.
			n, _, err := conn.ReadFrom(buf)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil
			}
			// The connected socket reports the ICMP error a REJECT answers with.
			if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) {
				return nil
			}
			if err != nil {
				return err
			}
			if n >= 8 && buf[0] == reply && buf[4] == byte(id>>8) && buf[5] == byte(id) {
				answered = true
				return nil
			}
		}
	}))
	return answered
}

// icmpChecksum is the Internet checksum of b (RFC 1071).
func icmpChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
