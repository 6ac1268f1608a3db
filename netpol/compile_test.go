package netpol

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// chainRules returns the rules of the chain called name in rs, or nil.
func chainRules(rs Ruleset, name string) []string {
	for _, ch := range rs.Chains {
		if ch.Name == name {
			return ch.Rules
		}
	}
	return nil
}

// ruleset returns the ruleset of fam in st.
func ruleset(t *testing.T, st State, fam corev1.IPFamily) Ruleset {
	t.Helper()
	for _, rs := range st.Rulesets {
		if rs.Family == fam {
			return rs
		}
	}
	t.Fatalf("no %s ruleset", fam)
	return Ruleset{}
}

// ipSet and netSet name the set a test expects, from its entries.
func ipSet(prefix string, fam corev1.IPFamily, entries ...string) string {
	return setName(prefix, fam, setTypeIP, entries)
}
func netSet(prefix string, fam corev1.IPFamily, entries ...string) string {
	return setName(prefix, fam, setTypeNet, entries)
}

// wantGroupChain builds the rules a pod group chain of direction dir should have: the head,
// middle and tail.
func wantGroupChain(dir string, middle ...string) []string {
	out := []string{"-j KUBE-NWPLCY-COMMON"}
	if dir == dirIngress {
		out = append(out, "-m addrtype --src-type LOCAL -j ACCEPT")
	}
	return append(append(out, middle...), "-m mark ! --mark 0x10000/0x10000 -m limit --limit 10/min --limit-burst 10 -j NFLOG --nflog-group 100",
		"-m mark ! --mark 0x10000/0x10000 -j REJECT", "-j MARK --set-xmark 0x0/0x10000", "-j MARK --set-xmark 0x20000/0x20000")
}

// groupChain names the chain of the pods policyChains select in direction dir.
func groupChain(fam corev1.IPFamily, dir string, policyChains ...string) string {
	return podGroupChainName(fam, dir, policyChains)
}

// dispatch is the top-level rule sending a direction of the pods at addrs through chain, with
// the set named by its content as byContent names it.
func dispatch(fam corev1.IPFamily, dir, chain string, addrs ...string) string {
	if dir == dirIngress {
		return "-m set --match-set " + ipSet(dstSetPrefix, fam, addrs...) + " dst -j " + chain
	}
	return "-m set --match-set " + ipSet(srcSetPrefix, fam, addrs...) + " src -j " + chain
}

// byTarget sorts top-level rules as compile orders them, by the chain they jump to, and ends
// them with the jump to the tail.
func byTarget(rules ...string) []string {
	target := func(r string) string { return r[strings.LastIndex(r, " -j ")+4:] }
	slices.SortStableFunc(rules, func(a, b string) int { return strings.Compare(target(a), target(b)) })
	return append(rules, "-j "+ChainTail)
}

const mark = "-j MARK --set-xmark 0x10000/0x10000"

func TestCompile(t *testing.T) {
	v4, v6 := corev1.IPv4Protocol, corev1.IPv6Protocol
	xa, xb, ya := makePod("x", "a"), makePod("x", "b"), makePod("y", "a", onNode("node-2"))
	yaWeb := makePod("y", "a", onNode("node-2"), servingOnly(containerPort("serve-80-tcp", "", 8080)))
	twoWay := makePolicy("x", "two-way", policyTypes(typeIngress, typeEgress),
		ingressRules(from(peers(podPeer(labelsSel())))), egressRules(to(nil, protoPort(corev1.ProtocolUDP, 53))))
	twoWayChains := []string{policyChainName(v4, "x", "two-way", dirIngress), policyChainName(v4, "x", "two-way", dirEgress)}
	tests := []struct {
		name     string
		pods     []*corev1.Pod
		policies []*networkingv1.NetworkPolicy
		cidrs    []string
		family   corev1.IPFamily
		// want maps chain names to their rules.
		want    map[string][]string
		wantErr bool
	}{
		{
			name:   "a pod no policy selects gets the default mark in both directions",
			pods:   []*corev1.Pod{xa},
			family: v4,
			want: map[string][]string{
				groupChain(v4, dirIngress): wantGroupChain(dirIngress, "-j KUBE-NWPLCY-DEFAULT"),
				groupChain(v4, dirEgress):  wantGroupChain(dirEgress, "-j KUBE-NWPLCY-DEFAULT"),
				ChainForward: byTarget(dispatch(v4, dirIngress, groupChain(v4, dirIngress), "10.0.1.1"),
					dispatch(v4, dirEgress, groupChain(v4, dirEgress), "10.0.1.1")),
				ChainInput: byTarget(dispatch(v4, dirEgress, groupChain(v4, dirEgress), "10.0.1.1")),
			},
		},
		{
			name:     "a two-way policy gets one chain per direction; the pods it selects share a group chain per direction, entered only for that direction",
			pods:     []*corev1.Pod{xa, xb, ya},
			policies: []*networkingv1.NetworkPolicy{twoWay},
			family:   v4,
			want: map[string][]string{
				groupChain(v4, dirIngress, twoWayChains[0]): wantGroupChain(dirIngress, "-j "+twoWayChains[0]),
				groupChain(v4, dirEgress, twoWayChains[1]):  wantGroupChain(dirEgress, "-j "+twoWayChains[1]),
				ChainOutput: byTarget(dispatch(v4, dirIngress, groupChain(v4, dirIngress, twoWayChains[0]), "10.0.1.1", "10.0.1.2"),
					dispatch(v4, dirEgress, groupChain(v4, dirEgress, twoWayChains[1]), "10.0.1.1", "10.0.1.2")),
				policyChainName(v4, "x", "two-way", dirIngress): {"-m set --match-set " + ipSet(srcSetPrefix, v4, "10.0.1.1", "10.0.1.2") + " src " + mark},
				policyChainName(v4, "x", "two-way", dirEgress):  {"-p udp -m udp --dport 53 " + mark},
			},
		},
		{
			name: "an except in one ipBlock peer does not remove what another peer allows",
			pods: []*corev1.Pod{xa},
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "blocks", ingressRules(from(peers(
				cidrPeer("0.0.0.0/0", "10.0.0.0/8"), cidrPeer("10.0.1.0/24"), cidrPeer("fd00::/8"))))),
			},
			family: v4,
			want: map[string][]string{
				policyChainName(v4, "x", "blocks", dirIngress): {"-m set --match-set " + netSet(srcSetPrefix, v4,
					"0.0.0.0/5", "8.0.0.0/7", "10.0.1.0/24", "11.0.0.0/8", "12.0.0.0/6", "16.0.0.0/4", "32.0.0.0/3", "64.0.0.0/2", "128.0.0.0/1") + " src " + mark},
			},
		},
		{
			name: "::/0 becomes its two halves, which hash:net can hold and which cover every address",
			pods: []*corev1.Pod{xa},
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "all-v6", policyTypes(typeEgress),
				egressRules(to(peers(cidrPeer("::/0"), cidrPeer("0.0.0.0/0")), port(443))))},
			family: v6,
			want: map[string][]string{
				policyChainName(v6, "x", "all-v6", dirEgress): {"-m set --match-set " + netSet(dstSetPrefix, v6, "::/1", "8000::/1") + " dst -p tcp -m tcp --dport 443 " + mark},
			},
		},
		{
			name: "an egress named port without to resolves on the pods of every namespace, per number",
			pods: []*corev1.Pod{xa, xb, yaWeb},
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "named", targets(labelsSel("pod", "a")), policyTypes(typeEgress),
				egressRules(to(nil, namedPort("serve-80-tcp"))))},
			family: v4,
			want: map[string][]string{
				policyChainName(v4, "x", "named", dirEgress): {
					"-m set --match-set " + ipSet(dstSetPrefix, v4, "10.0.1.1", "10.0.1.2") + " dst -p tcp -m tcp --dport 80 " + mark,
					"-m set --match-set " + ipSet(dstSetPrefix, v4, "10.0.2.1") + " dst -p tcp -m tcp --dport 8080 " + mark,
				},
			},
		},
		{
			name: "numeric ports, ranges and protocol-only entries become one rule each per peer",
			pods: []*corev1.Pod{xa, ya},
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "ports", ingressRules(from(
				peers(nsPeer(labelsSel("ns", "y")), cidrPeer("192.0.2.0/24")),
				port(80), portRange(corev1.ProtocolUDP, 1000, 2000), protoOnly(corev1.ProtocolSCTP))))},
			family: v4,
			want: map[string][]string{
				policyChainName(v4, "x", "ports", dirIngress): {
					"-m set --match-set " + ipSet(srcSetPrefix, v4, "10.0.2.1") + " src -p tcp -m tcp --dport 80 " + mark,
					"-m set --match-set " + ipSet(srcSetPrefix, v4, "10.0.2.1") + " src -p udp -m udp --dport 1000:2000 " + mark,
					"-m set --match-set " + ipSet(srcSetPrefix, v4, "10.0.2.1") + " src -p sctp " + mark,
					"-m set --match-set " + netSet(srcSetPrefix, v4, "192.0.2.0/24") + " src -p tcp -m tcp --dport 80 " + mark,
					"-m set --match-set " + netSet(srcSetPrefix, v4, "192.0.2.0/24") + " src -p udp -m udp --dport 1000:2000 " + mark,
					"-m set --match-set " + netSet(srcSetPrefix, v4, "192.0.2.0/24") + " src -p sctp " + mark,
				},
			},
		},
		{
			name:   "the default deny covers every pod CIDR of the node and exempts the node's own addresses",
			pods:   []*corev1.Pod{xa, ya},
			cidrs:  []string{"10.0.1.0/24", "10.0.9.0/24", "fd00::/64"},
			family: v4,
			want: map[string][]string{
				ChainTail: {
					"-s 10.0.1.0/24 -m addrtype ! --src-type LOCAL -m set ! --match-set " + ipSet(dstSetPrefix, v4, "10.0.1.1") + ` src -m comment --comment "reject unprogrammed local pod" -j REJECT`,
					"-d 10.0.1.0/24 -m addrtype ! --dst-type LOCAL -m set ! --match-set " + ipSet(dstSetPrefix, v4, "10.0.1.1") + ` dst -m comment --comment "reject unprogrammed local pod" -j REJECT`,
					"-s 10.0.9.0/24 -m addrtype ! --src-type LOCAL -m set ! --match-set " + ipSet(dstSetPrefix, v4, "10.0.1.1") + ` src -m comment --comment "reject unprogrammed local pod" -j REJECT`,
					"-d 10.0.9.0/24 -m addrtype ! --dst-type LOCAL -m set ! --match-set " + ipSet(dstSetPrefix, v4, "10.0.1.1") + ` dst -m comment --comment "reject unprogrammed local pod" -j REJECT`,
					`-m mark --mark 0x20000/0x20000 -m comment --comment "accept netpol-ok" -j ACCEPT`,
				},
			},
		},
		{
			name: "an invalid peer is reported and left out, and the policy still isolates (fail closed)",
			pods: []*corev1.Pod{xa},
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "bad", ingressRules(from(peers(
				networkingv1.NetworkPolicyPeer{}, cidrPeer("not-a-cidr")))))},
			family:  v4,
			wantErr: true,
			want: map[string][]string{
				policyChainName(v4, "x", "bad", dirIngress): nil,
				groupChain(v4, dirIngress, policyChainName(v4, "x", "bad", dirIngress)): wantGroupChain(dirIngress,
					"-j "+policyChainName(v4, "x", "bad", dirIngress)),
				groupChain(v4, dirEgress): wantGroupChain(dirEgress, "-j KUBE-NWPLCY-DEFAULT"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{NodeName: "node-1", Pods: tt.pods, Namespaces: []*corev1.Namespace{makeNamespace("x"), makeNamespace("y")},
				Policies: tt.policies, Families: []corev1.IPFamily{v4, v6}}
			for _, c := range tt.cidrs {
				in.PodCIDRs = append(in.PodCIDRs, netip.MustParsePrefix(c))
			}
			st, err := Compile(in)
			if tt.wantErr {
				require.ErrorIs(t, err, ErrInvalidPolicy)
			} else {
				require.NoError(t, err)
			}
			rs := ruleset(t, st, tt.family)
			// Every set a rule names is in the ruleset.
			text := renderIPTables(rs, tableState{}, nil)
			for _, s := range rs.Sets {
				assert.Contains(t, text, s.Name+" ", "set %s is unused", s.Name)
			}
			for _, word := range strings.Fields(text) {
				if isOwnSet(word) {
					assert.True(t, hasSet(rs, word), "rule names %s, which the ruleset lacks", word)
				}
			}
			rs = byContent(rs)
			for chain, want := range tt.want {
				assert.Equal(t, want, chainRules(rs, chain), "chain %s", chain)
			}
		})
	}
}

// byContent returns rs with every set renamed after its content (setName), in the sets and
// in the rules, so that expectations can name a set by its members (ipSet, netSet) whatever
// it is really named after.
func byContent(rs Ruleset) Ruleset {
	out := Ruleset{Family: rs.Family}
	var pairs []string
	for _, s := range rs.Sets {
		prefix := srcSetPrefix
		if strings.Contains(s.Name, dstSetPrefix) {
			prefix = dstSetPrefix
		}
		renamed := s
		renamed.Name = setName(prefix, s.Family, s.Type, s.Entries)
		out.Sets = append(out.Sets, renamed)
		pairs = append(pairs, " "+s.Name+" ", " "+renamed.Name+" ")
	}
	r := strings.NewReplacer(pairs...)
	for _, ch := range rs.Chains {
		var rules []string
		if ch.Rules != nil {
			rules = make([]string, len(ch.Rules))
		}
		for i, rule := range ch.Rules {
			rules[i] = strings.TrimSpace(r.Replace(" " + rule + " "))
		}
		out.Chains = append(out.Chains, Chain{Name: ch.Name, Rules: rules})
	}
	return out
}

// groupChainOf returns the chain direction dir of the local pod at ip goes through in rs: the
// target of the FORWARD rule whose set holds ip, or "" when there is none.
func groupChainOf(rs Ruleset, dir, ip string) string {
	side := " src -j "
	if dir == dirIngress {
		side = " dst -j "
	}
	for _, rule := range chainRules(rs, ChainForward) {
		name, chain, ok := strings.Cut(strings.TrimPrefix(rule, "-m set --match-set "), side)
		if !ok || strings.HasPrefix(rule, name) {
			continue
		}
		for _, s := range rs.Sets {
			if s.Name == name && slices.Contains(s.Entries, ip) {
				return chain
			}
		}
	}
	return ""
}

// hasSet reports whether rs has a set called name.
func hasSet(rs Ruleset, name string) bool {
	for _, s := range rs.Sets {
		if s.Name == name {
			return true
		}
	}
	return false
}

func TestCompileIsDeterministicAndPure(t *testing.T) {
	m := newModel(nil, map[string][]func(*corev1.Pod){"z/a": {onNode("node-2")}, "z/b": {onNode("node-2")}})
	policies := []*networkingv1.NetworkPolicy{
		makePolicy("x", "deny-all", policyTypes(typeIngress, typeEgress)),
		makePolicy("x", "a-from-y", targets(labelsSel("pod", "a")), ingressRules(from(peers(nsPeer(labelsSel("ns", "y"))), namedPort("serve-81-tcp")))),
		makePolicy("y", "blocks", ingressRules(from(peers(cidrPeer("10.0.0.0/8", "10.0.3.0/24"), cidrPeer("fd00::/8", "fd00::3:0/112"))))),
	}
	in := Input{NodeName: "node-1", Pods: m.pods, Namespaces: m.namespaces, Policies: policies,
		PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16"), netip.MustParsePrefix("fd00::/64")}}
	pods, nss, pols := deepCopyAll(m.pods), deepCopyAll(m.namespaces), deepCopyAll(policies)
	first, err := Compile(in)
	require.NoError(t, err)
	require.Len(t, first.Rulesets, 2)
	assert.Equal(t, pods, m.pods, "Compile modified its pods")
	assert.Equal(t, nss, m.namespaces, "Compile modified its namespaces")
	assert.Equal(t, pols, policies, "Compile modified its policies")

	r := rand.New(rand.NewPCG(1, 2))
	for range 5 {
		shuffled := in
		shuffled.Pods = append([]*corev1.Pod(nil), in.Pods...)
		shuffled.Policies = append([]*networkingv1.NetworkPolicy(nil), in.Policies...)
		shuffled.Namespaces = append([]*corev1.Namespace(nil), in.Namespaces...)
		r.Shuffle(len(shuffled.Pods), func(i, j int) { shuffled.Pods[i], shuffled.Pods[j] = shuffled.Pods[j], shuffled.Pods[i] })
		r.Shuffle(len(shuffled.Policies), func(i, j int) {
			shuffled.Policies[i], shuffled.Policies[j] = shuffled.Policies[j], shuffled.Policies[i]
		})
		again, err := Compile(shuffled)
		require.NoError(t, err)
		for i := range first.Rulesets {
			assert.Equal(t, renderIPTables(first.Rulesets[i], tableState{}, nil), renderIPTables(again.Rulesets[i], tableState{}, nil))
			assert.Equal(t, renderNewSets(first.Rulesets[i].Sets), renderNewSets(again.Rulesets[i].Sets))
		}
	}
}

func TestBlockPrefixes(t *testing.T) {
	block := func(cidr string, except ...string) blockPeer {
		b, err := parseBlockPeer(&networkingv1.IPBlock{CIDR: cidr, Except: except})
		require.NoError(t, err)
		return b
	}
	tests := []struct {
		name   string
		blocks []blockPeer
		v6     bool
		want   []string
	}{
		{name: "a block without except is itself", blocks: []blockPeer{block("10.0.0.0/8")}, want: []string{"10.0.0.0/8"}},
		{name: "an except splits the block around it", blocks: []blockPeer{block("10.0.0.0/22", "10.0.1.0/24")},
			want: []string{"10.0.0.0/24", "10.0.2.0/23"}},
		{name: "an except equal to the cidr leaves nothing", blocks: []blockPeer{block("10.0.0.0/24", "10.0.0.0/24")}, want: []string{}},
		{name: "nested and duplicate peers collapse", blocks: []blockPeer{block("10.0.0.0/8"), block("10.1.0.0/16"), block("10.0.0.0/8")},
			want: []string{"10.0.0.0/8"}},
		{name: "host bits are masked as the kernel does", blocks: []blockPeer{block("10.0.0.7/24")}, want: []string{"10.0.0.0/24"}},
		{name: "the other family's blocks are ignored", blocks: []blockPeer{block("10.0.0.0/8"), block("fd00::/8", "fd00::/9")}, v6: true,
			want: []string{"fd80::/9"}},
		{name: "/0 with an except inside one half keeps the other half whole", blocks: []blockPeer{block("::/0", "::/1")}, v6: true,
			want: []string{"8000::/1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := []string{}
			prefixes, ok := blockPrefixes(tt.blocks, tt.v6, maxPolicyBlockEntries)
			require.True(t, ok)
			for _, p := range prefixes {
				got = append(got, p.String())
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestNamesFitTheKernelLimits(t *testing.T) {
	long := strings.Repeat("n", 253)
	assert.Len(t, podGroupChainName(corev1.IPv6Protocol, dirEgress, []string{long, long}), 28, "iptables chain names are at most 28 characters")
	assert.Len(t, podGroupSetName(corev1.IPv6Protocol, dirIngress, long), 31, "ipset names are at most 31 characters")
	assert.NotEqual(t, podGroupChainName(corev1.IPv4Protocol, dirIngress, nil), podGroupChainName(corev1.IPv4Protocol, dirEgress, nil))
	assert.Len(t, policyChainName(corev1.IPv6Protocol, long, long, dirEgress), 28)
	assert.Len(t, setName(dstSetPrefix, corev1.IPv6Protocol, setTypeNet, []string{"::/1"}), 31, "ipset names are at most 31 characters")
	assert.Len(t, tempSetName(setName(dstSetPrefix, corev1.IPv6Protocol, setTypeNet, nil)), 31)
	assert.NotEqual(t, policyChainName(corev1.IPv4Protocol, "x", "p", dirIngress), policyChainName(corev1.IPv4Protocol, "x", "p", dirEgress))
	assert.NotEqual(t, policyChainName(corev1.IPv4Protocol, "x", "p", dirIngress), policyChainName(corev1.IPv6Protocol, "x", "p", dirIngress))
}
