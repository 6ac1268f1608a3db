package netpol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// fuzzReader decodes the fuzzer's bytes into choices; past the end every choice is 0, so any
// input decodes to some cluster and a mutation changes one choice.
type fuzzReader struct{ data []byte }

func (r *fuzzReader) byte() byte {
	if len(r.data) == 0 {
		return 0
	}
	b := r.data[0]
	r.data = r.data[1:]
	return b
}

func (r *fuzzReader) n(k int) int { return int(r.byte()) % k }

func (r *fuzzReader) pick(vals ...string) string { return vals[r.n(len(vals))] }

// fuzzPolicy is a decoded NetworkPolicy and whether the decoder put in a part Compile must
// report as invalid (an unparsable selector or CIDR, a peer with no field or with ipBlock and
// a selector, a bad port).
type fuzzPolicy struct {
	np      *networkingv1.NetworkPolicy
	invalid bool
}

func (r *fuzzReader) selector(p *fuzzPolicy) *metav1.LabelSelector {
	key := r.pick("pod", "ns", "app")
	switch r.n(6) {
	case 0:
		return &metav1.LabelSelector{}
	case 1, 2:
		return &metav1.LabelSelector{MatchLabels: map[string]string{key: r.pick("a", "b", "c", "x", "y")}}
	case 3:
		op := []metav1.LabelSelectorOperator{metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn}[r.n(2)]
		return exprSel(key, op, r.pick("a", "b", "x"), r.pick("c", "y"))
	case 4:
		op := []metav1.LabelSelectorOperator{metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist}[r.n(2)]
		return exprSel(key, op)
	default:
		// In without values, or an unknown operator: refused by the API server.
		p.invalid = true
		if r.n(2) == 0 {
			return exprSel(key, metav1.LabelSelectorOpIn)
		}
		return exprSel(key, "Bogus", "a")
	}
}

// prefix decodes a CIDR near the pods' addresses (10.0.0.0/16, fd00::/64), or anywhere, with
// host bits possibly set as the API server allows; ok is false for text that is no CIDR.
func (r *fuzzReader) prefix() (s string, ok bool) {
	switch r.n(16) {
	case 0:
		return r.pick("not-a-cidr", "10.0.0.0/33", "10.0.0.0", "fd00::/129", ""), false
	case 1:
		return r.pick("0.0.0.0/0", "::/0"), true
	}
	if r.byte()&1 == 0 {
		a := [4]byte{10, 0, r.byte(), r.byte()}
		if r.n(8) == 0 {
			a = [4]byte{r.byte(), r.byte(), r.byte(), r.byte()}
		}
		return netip.PrefixFrom(netip.AddrFrom4(a), r.n(33)).String(), true
	}
	a := [16]byte{0: 0xfd, 13: r.byte(), 15: r.byte()}
	if r.n(8) == 0 {
		a[1], a[2], a[8] = r.byte(), r.byte(), r.byte()
	}
	return netip.PrefixFrom(netip.AddrFrom16(a), r.n(129)).String(), true
}

// ipBlock decodes an ipBlock: a few excepts, or a run of up to 4,080 excepts so that small
// inputs reach the per-policy entry bound.
func (r *fuzzReader) ipBlock(p *fuzzPolicy) *networkingv1.IPBlock {
	cidr, ok := r.prefix()
	p.invalid = p.invalid || !ok
	b := &networkingv1.IPBlock{CIDR: cidr}
	if r.n(4) == 0 {
		n, stride, v6 := int(r.byte())*16, uint32(r.byte())+1, r.byte()&1 == 1
		plen := r.n(33)
		for i := range n {
			off := uint32(i) * stride
			if v6 {
				var a [16]byte
				a[0] = 0xfd
				binary.BigEndian.PutUint32(a[12:], off)
				b.Except = append(b.Except, netip.PrefixFrom(netip.AddrFrom16(a), 96+plen).String())
			} else {
				a := [4]byte{10, byte(off >> 16), byte(off >> 8), byte(off)}
				b.Except = append(b.Except, netip.PrefixFrom(netip.AddrFrom4(a), max(8, plen)).String())
			}
		}
		return b
	}
	for range r.n(4) {
		e, ok := r.prefix()
		p.invalid = p.invalid || !ok
		b.Except = append(b.Except, e)
	}
	return b
}

func (r *fuzzReader) peer(p *fuzzPolicy) networkingv1.NetworkPolicyPeer {
	switch r.n(8) {
	case 0, 1:
		return podPeer(r.selector(p))
	case 2:
		return nsPeer(r.selector(p))
	case 3:
		return podNSPeer(r.selector(p), r.selector(p))
	case 4, 5:
		return networkingv1.NetworkPolicyPeer{IPBlock: r.ipBlock(p)}
	case 6:
		p.invalid = true
		return networkingv1.NetworkPolicyPeer{IPBlock: r.ipBlock(p), PodSelector: r.selector(p)}
	default:
		p.invalid = true
		return networkingv1.NetworkPolicyPeer{}
	}
}

func (r *fuzzReader) port(p *fuzzPolicy) networkingv1.NetworkPolicyPort {
	var out networkingv1.NetworkPolicyPort
	if proto := corev1.Protocol(r.pick("", "TCP", "UDP", "SCTP", "TCP", "ICMP")); proto != "" {
		out.Protocol = &proto
		p.invalid = p.invalid || proto == "ICMP"
	}
	num := func() int32 {
		if r.n(4) == 0 {
			return int32(r.n(3)) - 1 + []int32{0, 80, 65535}[r.n(3)] // edges, 0 and 65536 included
		}
		return int32(r.byte())%100 + 1
	}
	switch r.n(5) {
	case 0: // every port of the protocol
	case 1, 2:
		n := num()
		out.Port = new(intstr.FromInt32(n))
		if r.n(2) == 0 {
			out.EndPort = new(n + int32(r.n(8)) - 1)
		}
		p.invalid = p.invalid || n < 1 || n > 65535 || (out.EndPort != nil && (*out.EndPort < n || *out.EndPort > 65535))
	case 3:
		out.Port = new(intstr.FromString(r.pick("serve-80-tcp", "serve-81-udp", "serve-80-sctp", "nope")))
	default:
		// endPort without a numeric port.
		p.invalid = true
		out.EndPort = new(int32(90))
		if r.n(2) == 0 {
			out.Port = new(intstr.FromString("serve-80-tcp"))
		}
	}
	return out
}

// fuzzPolicies decodes up to four NetworkPolicies, unique by namespace and name as in the API.
func fuzzPolicies(data []byte) []fuzzPolicy {
	r := &fuzzReader{data: data}
	var out []fuzzPolicy
	seen := map[string]bool{}
	for range r.n(4) + 1 {
		ns, name := r.pick("x", "y"), r.pick("p0", "p1", "p2")
		if seen[ns+"/"+name] {
			continue
		}
		seen[ns+"/"+name] = true
		p := fuzzPolicy{np: makePolicy(ns, name)}
		p.np.Spec.PodSelector = *r.selector(&p)
		switch r.n(4) {
		case 1:
			policyTypes(typeIngress)(p.np)
		case 2:
			policyTypes(typeEgress)(p.np)
		case 3:
			policyTypes(typeIngress, typeEgress)(p.np)
		}
		rule := func() ([]networkingv1.NetworkPolicyPeer, []networkingv1.NetworkPolicyPort) {
			var peers []networkingv1.NetworkPolicyPeer
			var ports []networkingv1.NetworkPolicyPort
			for range r.n(3) {
				peers = append(peers, r.peer(&p))
			}
			for range r.n(3) {
				ports = append(ports, r.port(&p))
			}
			return peers, ports
		}
		for range r.n(3) {
			peers, ports := rule()
			p.np.Spec.Ingress = append(p.np.Spec.Ingress, from(peers, ports...))
		}
		for range r.n(3) {
			peers, ports := rule()
			p.np.Spec.Egress = append(p.np.Spec.Egress, to(peers, ports...))
		}
		out = append(out, p)
	}
	return out
}

// fuzzInput is the e2e model cluster with namespace y's pods on another node, and policies.
func fuzzInput(policies []*networkingv1.NetworkPolicy) Input {
	m := newModel(nil, map[string][]func(*corev1.Pod){
		"y/a": {onNode("node-2")}, "y/b": {onNode("node-2")}, "y/c": {onNode("node-2")},
		"z/c": {withIPs("10.0.3.3")},
	})
	return Input{
		NodeName:      nodeName,
		PodCIDRs:      []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16"), netip.MustParsePrefix("fd00::/64")},
		ServiceCIDRs:  []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12"), netip.MustParsePrefix("fd96::/108")},
		NodePortFirst: 30000, NodePortLast: 32767,
		Families:   []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol},
		Pods:       m.pods,
		Namespaces: m.namespaces,
		Policies:   policies,
	}
}

// FuzzCompile compiles any decoded set of NetworkPolicies against the model cluster.
// Compile either succeeds or returns PolicyErrors naming the policies, exactly for those with
// an invalid part; it fails closed (an invalid peer or port admits nothing, a policy over the
// entry bound keeps isolating with no rule, every selected local pod goes through the chains
// of the policies selecting it); no policy needs more ipBlock entries than the bound; and the
// iptables-restore and ipset restore texts, from an empty table or from the state of a
// previous sync, are well-formed and, replayed on a model of the table, leave exactly the
// compiled chains and sets.
func FuzzCompile(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x00\x00\x00\x00\x01\x01\x01\x01\x04\x00\x01\x02\x01"))
	f.Add([]byte("\x03\x00\x00\x01\x00\x03\x02\x02\x04\x05\x00\x01\x00\x02\x01\x02\x03\x01\x03\x01\x00\x02\x01\x05\x00"))
	// One ipBlock under ::/0 with 4,080 /128 excepts: past the entry bound.
	f.Add([]byte{0, 0, 0, 0, 0, 1, 1, 1, 1, 4, 1, 1, 0, 0xff, 0, 1, 32, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		fps := fuzzPolicies(data)
		policies := make([]*networkingv1.NetworkPolicy, len(fps))
		for i, p := range fps {
			policies[i] = p.np
		}
		in := fuzzInput(policies)
		before := deepCopyAll(policies)
		st, err := Compile(in)
		if !reflect.DeepEqual(before, policies) {
			t.Fatal("Compile modified its input")
		}
		tooLarge := checkPolicyErrors(t, err, fps)
		if again, err2 := Compile(in); !reflect.DeepEqual(st, again) || fmt.Sprint(err) != fmt.Sprint(err2) {
			t.Fatal("a second Compile of the same input differs")
		}
		prev, _ := Compile(fuzzInput(policies[1:]))
		if len(st.Rulesets) != 2 || len(prev.Rulesets) != 2 {
			t.Fatalf("%d rulesets for two families", len(st.Rulesets))
		}
		entries := map[string]int{}
		for i, rs := range st.Rulesets {
			checkRuleset(t, rs, in, fps, tooLarge, entries)
			checkRestore(t, Ruleset{}, rs)
			checkRestore(t, prev.Rulesets[i], rs)
			checkIPSetRestore(t, Ruleset{}, rs)
			checkIPSetRestore(t, prev.Rulesets[i], rs)
		}
		for key, n := range entries {
			if n > maxPolicyBlockEntries {
				t.Fatalf("policy %s uses %d ipBlock entries, more than the bound %d", key, n, maxPolicyBlockEntries)
			}
		}
	})
}

// checkPolicyErrors fails unless err joins only PolicyErrors of the given policies, an
// invalid one for exactly the policies with an invalid part, and returns the policies refused
// as too large.
func checkPolicyErrors(t *testing.T, err error, fps []fuzzPolicy) map[string]bool {
	t.Helper()
	var leaves []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		leaves = j.Unwrap()
	} else if err != nil {
		leaves = []error{err}
	}
	invalid, tooLarge := map[string]bool{}, map[string]bool{}
	for _, e := range leaves {
		var pe *PolicyError
		if !errors.As(e, &pe) || pe.Problem == "" {
			t.Fatalf("Compile error %v is not a PolicyError", e)
		}
		key := pe.Namespace + "/" + pe.Name
		switch {
		case errors.Is(e, ErrPolicyTooLarge):
			tooLarge[key] = true
		case errors.Is(e, ErrInvalidPolicy):
			invalid[key] = true
		default:
			t.Fatalf("PolicyError %v of no known kind", e)
		}
	}
	for _, p := range fps {
		key := p.np.Namespace + "/" + p.np.Name
		if invalid[key] != p.invalid {
			t.Fatalf("policy %s: reported invalid %v, want %v (error %v)", key, invalid[key], p.invalid, err)
		}
		delete(invalid, key)
		delete(tooLarge, key)
	}
	if len(invalid)+len(tooLarge) > 0 {
		t.Fatalf("errors name policies that do not exist: %v", err)
	}
	for _, e := range leaves {
		var pe *PolicyError
		if errors.As(e, &pe) && errors.Is(e, ErrPolicyTooLarge) {
			tooLarge[pe.Namespace+"/"+pe.Name] = true
		}
	}
	return tooLarge
}

// Rule parts, read the way the API defines them, independently of Compile's parser.

func validSelector(sel *metav1.LabelSelector) (labels.Selector, bool) {
	s, err := metav1.LabelSelectorAsSelector(sel)
	return s, err == nil
}

// validBlock parses an ipBlock, masked as the kernel would; ok is false when any part is no CIDR.
func validBlock(b *networkingv1.IPBlock) (cidr netip.Prefix, except []netip.Prefix, ok bool) {
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		return cidr, nil, false
	}
	for _, s := range b.Except {
		e, err := netip.ParsePrefix(s)
		if err != nil {
			return cidr, nil, false
		}
		except = append(except, e.Masked())
	}
	return cidr.Masked(), except, true
}

// validPort returns the numeric range of a valid port entry (0, 0 for every port or a named
// one), its protocol, and whether it is valid.
func validPort(p *networkingv1.NetworkPolicyPort) (first, last int32, proto corev1.Protocol, ok bool) {
	proto = corev1.ProtocolTCP
	if p.Protocol != nil && *p.Protocol != "" {
		proto = *p.Protocol
	}
	if proto != corev1.ProtocolTCP && proto != corev1.ProtocolUDP && proto != corev1.ProtocolSCTP {
		return 0, 0, proto, false
	}
	switch {
	case p.Port == nil:
		return 0, 0, proto, p.EndPort == nil
	case p.Port.Type == intstr.String:
		return 0, 0, proto, p.EndPort == nil
	}
	first, last = p.Port.IntVal, p.Port.IntVal
	if p.EndPort != nil {
		last = *p.EndPort
	}
	return first, last, proto, first >= 1 && last <= 65535 && first <= last
}

// namedPortNumbers returns the numbers the pods serve name under with proto.
func namedPortNumbers(pods []*corev1.Pod, name string, proto corev1.Protocol) []int32 {
	var out []int32
	for _, pod := range pods {
		for _, c := range pod.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.Name == name && cmpProto(cp.Protocol) == proto && !slices.Contains(out, cp.ContainerPort) {
					out = append(out, cp.ContainerPort)
				}
			}
		}
	}
	return out
}

func cmpProto(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// fuzzRule is one ingress or egress rule of the API.
type fuzzRule struct {
	peers []networkingv1.NetworkPolicyPeer
	ports []networkingv1.NetworkPolicyPort
}

func rulesOf(np *networkingv1.NetworkPolicy, dir string) []fuzzRule {
	var out []fuzzRule
	if dir == dirIngress {
		for _, r := range np.Spec.Ingress {
			out = append(out, fuzzRule{r.From, r.Ports})
		}
	} else {
		for _, r := range np.Spec.Egress {
			out = append(out, fuzzRule{r.To, r.Ports})
		}
	}
	return out
}

func isolates(np *networkingv1.NetworkPolicy, dir string) bool {
	if len(np.Spec.PolicyTypes) == 0 {
		return dir == dirIngress || len(np.Spec.Egress) > 0
	}
	want := networkingv1.PolicyTypeIngress
	if dir == dirEgress {
		want = networkingv1.PolicyTypeEgress
	}
	return slices.Contains(np.Spec.PolicyTypes, want)
}

// blockAdmits reports whether some valid ipBlock of rules of family fam holds all of p and
// none of its excepts overlap p.
func blockAdmits(rules []fuzzRule, p netip.Prefix) bool {
	for _, r := range rules {
		for _, peer := range r.peers {
			if peer.IPBlock == nil || peer.PodSelector != nil || peer.NamespaceSelector != nil {
				continue
			}
			cidr, except, ok := validBlock(peer.IPBlock)
			if !ok || cidr.Addr().Is4() != p.Addr().Is4() || cidr.Bits() > p.Bits() || !cidr.Contains(p.Addr()) {
				continue
			}
			if !slices.ContainsFunc(except, p.Overlaps) {
				return true
			}
		}
	}
	return false
}

// portAdmitted reports whether a --dport match of a policy chain comes from a valid port entry.
func portAdmitted(rules []fuzzRule, pods []*corev1.Pod, proto string, first, last int32) bool {
	for _, r := range rules {
		for i := range r.ports {
			f, l, pr, ok := validPort(&r.ports[i])
			if !ok || strings.ToLower(string(pr)) != proto {
				continue
			}
			if f != 0 && f <= first && last <= l {
				return true
			}
			if p := r.ports[i].Port; p != nil && p.Type == intstr.String && first == last &&
				slices.Contains(namedPortNumbers(pods, p.StrVal, pr), first) {
				return true
			}
		}
	}
	return false
}

// ruleBound is the most alternatives (iptables rules) the valid parts of rules allow in family
// fam: an invalid peer or port contributes none, so a rule whose peers or ports are all
// invalid admits nothing.
func ruleBound(rules []fuzzRule, pods []*corev1.Pod, fam corev1.IPFamily) (bound int, allowAll bool) {
	for _, r := range rules {
		peers := 1
		if len(r.peers) > 0 {
			var sel, blk bool
			for _, peer := range r.peers {
				hasSel := peer.PodSelector != nil || peer.NamespaceSelector != nil
				switch {
				case peer.IPBlock != nil && !hasSel:
					cidr, _, ok := validBlock(peer.IPBlock)
					blk = blk || ok && cidr.Addr().Is6() == (fam == corev1.IPv6Protocol)
				case peer.IPBlock == nil && hasSel:
					okPod, okNS := true, true
					if peer.PodSelector != nil {
						_, okPod = validSelector(peer.PodSelector)
					}
					if peer.NamespaceSelector != nil {
						_, okNS = validSelector(peer.NamespaceSelector)
					}
					sel = sel || okPod && okNS
				}
			}
			peers = b2i(sel) + b2i(blk)
		}
		ports := 1
		if len(r.ports) > 0 {
			ports = 0
			for i := range r.ports {
				_, _, proto, ok := validPort(&r.ports[i])
				switch p := r.ports[i].Port; {
				case !ok:
				case p != nil && p.Type == intstr.String:
					ports += len(namedPortNumbers(pods, p.StrVal, proto))
				default:
					ports++
				}
			}
		}
		bound += peers * ports
		allowAll = allowAll || len(r.peers) == 0 && len(r.ports) == 0
	}
	return bound, allowAll
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// builtinTargets are the iptables targets our rules may use besides our own chains.
var builtinTargets = []string{"ACCEPT", "DROP", "REJECT", "RETURN", "MARK", "NFLOG"}

// ruleTokens splits a rule as iptables-restore does: on spaces, a double-quoted string being
// one token. ok is false for an unbalanced quote.
func ruleTokens(rule string) (tokens []string, ok bool) {
	var cur strings.Builder
	quoted, inToken := false, false
	for _, c := range rule {
		switch {
		case c == '"':
			quoted, inToken = !quoted, true
		case c == ' ' && !quoted:
			if inToken {
				tokens = append(tokens, cur.String())
			}
			cur.Reset()
			inToken = false
		default:
			cur.WriteRune(c)
			inToken = true
		}
	}
	if inToken {
		tokens = append(tokens, cur.String())
	}
	return tokens, !quoted
}

// tokenAfter returns the token following flag in tokens, or "".
func tokenAfter(tokens []string, flag string) string {
	if i := slices.Index(tokens, flag); i >= 0 && i+1 < len(tokens) {
		return tokens[i+1]
	}
	return ""
}

// checkRuleset checks one family's compiled state against the API objects it came from, and
// adds to entries the ipBlock entries each policy uses.
func checkRuleset(t *testing.T, rs Ruleset, in Input, fps []fuzzPolicy, tooLarge map[string]bool, entries map[string]int) {
	t.Helper()
	v6 := rs.Family == corev1.IPv6Protocol
	chains := map[string][]string{}
	for _, ch := range rs.Chains {
		if _, dup := chains[ch.Name]; dup || len(ch.Name) > 28 || ch.Name == "" {
			t.Fatalf("chain name %q repeated, empty or longer than 28 characters", ch.Name)
		}
		chains[ch.Name] = ch.Rules
	}
	sets := map[string]IPSet{}
	for _, s := range rs.Sets {
		if _, dup := sets[s.Name]; dup || len(s.Name) > 31 || strings.HasPrefix(s.Name, ipv6SetPrefix) != v6 || s.Family != rs.Family {
			t.Fatalf("set %q repeated, too long or of the wrong family", s.Name)
		}
		sets[s.Name] = s
		for i, e := range s.Entries {
			var a netip.Addr
			if s.Type == setTypeNet {
				p, err := netip.ParsePrefix(e)
				if err != nil || p != p.Masked() || p.Bits() == 0 || p.String() != e {
					t.Fatalf("set %s entry %q is not a hash:net prefix", s.Name, e)
				}
				a = p.Addr()
			} else {
				var err error
				if a, err = netip.ParseAddr(e); err != nil || a.String() != e {
					t.Fatalf("set %s entry %q is not an address", s.Name, e)
				}
			}
			if a.Is6() != v6 || i > 0 && e == s.Entries[i-1] {
				t.Fatalf("set %s entry %q is of the wrong family or repeated", s.Name, e)
			}
		}
	}
	for name, rules := range chains {
		for _, rule := range rules {
			tokens, ok := ruleTokens(rule)
			if !ok || strings.ContainsAny(rule, "\n\r") {
				t.Fatalf("chain %s rule %q does not tokenize", name, rule)
			}
			if c := tokenAfter(tokens, "--comment"); len(c) > 255 {
				t.Fatalf("comment %q is longer than the kernel's 255", c)
			}
			if j := tokenAfter(tokens, "-j"); !hasKey(chains, j) && !slices.Contains(builtinTargets, j) {
				t.Fatalf("chain %s rule %q jumps to %q, which is neither declared nor built in", name, rule, j)
			}
			if s := tokenAfter(tokens, "--match-set"); s != "" {
				if _, ok := sets[s]; !ok {
					t.Fatalf("chain %s rule %q matches the undefined set %s", name, rule, s)
				}
			}
		}
	}

	for _, p := range fps {
		np := p.np
		key := np.Namespace + "/" + np.Name
		podSel, ok := validSelector(&np.Spec.PodSelector)
		if !ok {
			continue // Compile documents that such a policy selects nothing.
		}
		for _, dir := range []string{dirIngress, dirEgress} {
			name := policyChainName(rs.Family, np.Namespace, np.Name, dir)
			rules, exists := chains[name]
			if !isolates(np, dir) {
				if exists {
					t.Fatalf("policy %s has a %s chain but does not isolate %s", key, dir, dir)
				}
				continue
			}
			if !exists {
				t.Fatalf("policy %s isolates %s but has no chain", key, dir)
			}
			api := rulesOf(np, dir)
			bound, allowAll := ruleBound(api, in.Pods, rs.Family)
			if tooLarge[key] {
				bound, allowAll = 0, false
			}
			if len(rules) > bound {
				t.Fatalf("policy %s %s: %d rules where its valid parts allow at most %d:\n%s", key, dir, len(rules), bound, strings.Join(rules, "\n"))
			}
			if allowAll && !slices.Contains(rules, "-j MARK --set-xmark "+markMatched) {
				t.Fatalf("policy %s %s has a rule allowing everything but no such iptables rule", key, dir)
			}
			counted := map[string]bool{}
			for _, rule := range rules {
				if !strings.HasSuffix(rule, "-j MARK --set-xmark "+markMatched) {
					t.Fatalf("policy rule %q does not end by setting the matched mark", rule)
				}
				tokens, _ := ruleTokens(rule)
				if s := sets[tokenAfter(tokens, "--match-set")]; s.Type == setTypeNet {
					for _, e := range s.Entries {
						if !blockAdmits(api, netip.MustParsePrefix(e)) {
							t.Fatalf("policy %s %s admits %s, which no valid ipBlock holds", key, dir, e)
						}
					}
					if !counted[s.Name] {
						counted[s.Name] = true
						entries[key] += len(s.Entries)
					}
				}
				if d := tokenAfter(tokens, "--dport"); d != "" {
					lo, hi, _ := strings.Cut(d, ":")
					first, err1 := strconv.Atoi(lo)
					last, err2 := strconv.Atoi(cmpOrString(hi, lo))
					if err1 != nil || err2 != nil || !portAdmitted(api, in.Pods, tokenAfter(tokens, "-p"), int32(first), int32(last)) {
						t.Fatalf("policy %s %s: rule %q opens a port no valid entry names", key, dir, rule)
					}
				}
			}
		}

		// Fail closed: every local pod the policy selects goes through its chains.
		for _, pod := range in.Pods {
			info, ok := newPodInfo(pod)
			if !ok || pod.Namespace != np.Namespace || pod.Spec.NodeName != in.NodeName || !info.addr(rs.Family).IsValid() ||
				!podSel.Matches(labels.Set(pod.Labels)) {
				continue
			}
			ip := info.addr(rs.Family).String()
			for dir, side := range map[string]string{dirIngress: " dst ", dirEgress: " src "} {
				group := groupChainOf(rs, dir, ip)
				groupRules := chains[group]
				if !slices.Contains(groupRules, "-m mark ! --mark "+markMatched+" -j REJECT") {
					t.Fatalf("local pod %s/%s has no %s chain rejecting what no policy allowed", pod.Namespace, pod.Name, dir)
				}
				// FORWARD was searched; OUTPUT must send the same traffic through the chain.
				if !slices.Contains(chains[ChainOutput], "-m set --match-set "+podGroupSetName(rs.Family, dir, group)+side+"-j "+group) {
					t.Fatalf("%s does not send %s traffic of %s/%s through its chain", ChainOutput, dir, pod.Namespace, pod.Name)
				}
				if !isolates(np, dir) {
					continue
				}
				if !slices.Contains(groupRules, "-j "+policyChainName(rs.Family, np.Namespace, np.Name, dir)) ||
					slices.Contains(groupRules, "-j "+ChainDefault) {
					t.Fatalf("local pod %s/%s is selected by %s for %s but not isolated by it:\n%s",
						pod.Namespace, pod.Name, key, dir, strings.Join(groupRules, "\n"))
				}
			}
		}
	}
}

func hasKey[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}

func cmpOrString(a, b string) string {
	if a == "" {
		return b
	}
	return a
}

// tableModel is a filter table as iptables-restore --noflush changes it.
type tableModel map[string][]string

// foreignRule stands for the rules of other components in the built-in chains.
const foreignRule = "-m comment --comment \"someone else\" -j ACCEPT"

// newTableModel returns the table a sync of prev left: prev's chains, each built-in chain with
// a foreign rule, our jump at position 1 when prev has chains, and, in FORWARD, a leftover
// jump to our chain after the foreign rule as a kube-router migration leaves one.
func newTableModel(prev Ruleset) (tableModel, tableState) {
	m := tableModel{}
	cur := tableState{jumps: map[string][]builtinRule{}}
	for _, bc := range builtinChains() {
		m[bc[0]] = []string{foreignRule}
		if len(prev.Chains) > 0 {
			m[bc[0]] = []string{jumpRule(bc[0], bc[1]), foreignRule}
			cur.jumps[bc[0]] = []builtinRule{{pos: 1, rule: jumpRule(bc[0], bc[1])}}
		}
	}
	if len(prev.Chains) > 0 {
		m["FORWARD"] = append(m["FORWARD"], "-j "+ChainForward)
		cur.jumps["FORWARD"] = append(cur.jumps["FORWARD"], builtinRule{pos: 3, rule: "-j " + ChainForward})
	}
	for _, ch := range prev.Chains {
		m[ch.Name] = slices.Clone(ch.Rules)
		cur.ownChains = append(cur.ownChains, ch.Name)
	}
	slices.Sort(cur.ownChains)
	return m, cur
}

// restore applies an iptables-restore --noflush text to m, failing where the real command
// would: a line outside *filter ... COMMIT, a rule for a chain that does not exist, a delete
// of a rule the chain lacks, an insert past the end, a chain deleted while referenced.
func (m tableModel) restore(t *testing.T, text string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 2 || lines[0] != "*filter" || lines[len(lines)-1] != "COMMIT" {
		t.Fatalf("restore text is not one *filter ... COMMIT block:\n%s", text)
	}
	for _, line := range lines[1 : len(lines)-1] {
		op, rest, _ := strings.Cut(line, " ")
		switch {
		case strings.HasPrefix(line, ":"):
			name, policy, _ := strings.Cut(line[1:], " ")
			if len(name) > 28 || policy != "- [0:0]" {
				t.Fatalf("bad chain declaration %q", line)
			}
			m[name] = nil // created, or flushed
		case op == "-A" || op == "-D":
			chain, rule, _ := strings.Cut(rest, " ")
			rules, ok := m[chain]
			if !ok {
				t.Fatalf("%q: no chain %s", line, chain)
			}
			if op == "-A" {
				m[chain] = append(rules, rule)
				continue
			}
			i := slices.Index(rules, rule)
			if i < 0 {
				t.Fatalf("%q: the chain has no such rule", line)
			}
			m[chain] = slices.Delete(rules, i, i+1)
		case op == "-I":
			chain, rest, _ := strings.Cut(rest, " ")
			posText, rule, _ := strings.Cut(rest, " ")
			pos, err := strconv.Atoi(posText)
			rules, ok := m[chain]
			if !ok || err != nil || pos < 1 || pos > len(rules)+1 {
				t.Fatalf("%q: no chain or a bad position", line)
			}
			m[chain] = slices.Insert(rules, pos-1, rule)
		case op == "-X":
			if _, ok := m[rest]; !ok {
				t.Fatalf("%q: no such chain", line)
			}
			delete(m, rest)
		default:
			t.Fatalf("unexpected restore line %q", line)
		}
	}
	// iptables-restore resolves targets at COMMIT: a jump to a missing chain fails it all, and
	// deleting a chain that is still jumped to fails too.
	for chain, rules := range m {
		for _, rule := range rules {
			tokens, ok := ruleTokens(rule)
			j := tokenAfter(tokens, "-j")
			if _, exists := m[j]; !ok || !exists && !slices.Contains(builtinTargets, j) {
				t.Fatalf("after the restore %s holds %q, whose target does not exist", chain, rule)
			}
		}
	}
}

// checkRestore renders the restore that turns the table prev left into next's and replays it.
func checkRestore(t *testing.T, prev, next Ruleset) {
	t.Helper()
	m, cur := newTableModel(prev)
	known := map[string][]string{}
	for _, ch := range prev.Chains {
		known[ch.Name] = ch.Rules
	}
	m.restore(t, renderIPTables(next, cur, known))
	for _, ch := range next.Chains {
		if got := m[ch.Name]; !slices.Equal(got, ch.Rules) {
			t.Fatalf("after the restore chain %s holds\n%s\nwant\n%s", ch.Name, strings.Join(got, "\n"), strings.Join(ch.Rules, "\n"))
		}
	}
	own := 0
	for name := range m {
		if isOwnChain(name) {
			own++
		}
	}
	if own != len(next.Chains) {
		t.Fatalf("after the restore %d chains of ours remain, want %d", own, len(next.Chains))
	}
	for _, bc := range builtinChains() {
		want := []string{jumpRule(bc[0], bc[1]), foreignRule}
		if !slices.Equal(m[bc[0]], want) {
			t.Fatalf("after the restore %s holds %q, want our jump first and the foreign rule kept", bc[0], m[bc[0]])
		}
	}
}

// checkIPSetRestore replays the ipset restore texts of a sync on a model of the kernel's sets,
// starting from prev's, and checks that every set of next then holds exactly its entries.
func checkIPSetRestore(t *testing.T, prev, next Ruleset) {
	t.Helper()
	type kset struct {
		typ, family string
		maxelem     int
		members     map[string]bool
	}
	kernel := map[string]*kset{}
	var existing []string
	members := map[string][]string{}
	for _, s := range prev.Sets {
		fam := "inet"
		if s.Family == corev1.IPv6Protocol {
			fam = "inet6"
		}
		k := &kset{typ: s.Type, family: fam, maxelem: maxSetElements, members: map[string]bool{}}
		for _, e := range s.Entries {
			k.members[e] = true
		}
		kernel[s.Name] = k
		existing = append(existing, s.Name)
		members[s.Name] = s.Entries
	}
	slices.Sort(existing)
	restores := renderIPSetUpdate(next.Sets, existing, members, nil)
	for _, line := range strings.Split(strings.TrimSuffix(restores.create+restores.fill+restores.after, "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		switch {
		case f[0] == "create" && len(f) == 9 && f[3] == "family" && f[5] == "hashsize" && f[7] == "maxelem":
			maxelem, err := strconv.Atoi(f[8])
			if _, dup := kernel[f[1]]; dup || err != nil || len(f[1]) > 31 || (f[4] == "inet6") != strings.HasPrefix(f[1], ipv6SetPrefix) {
				t.Fatalf("bad create %q", line)
			}
			kernel[f[1]] = &kset{typ: f[2], family: f[4], maxelem: maxelem, members: map[string]bool{}}
		case (f[0] == "add" || f[0] == "del") && len(f) == 3:
			k := kernel[f[1]]
			if k == nil {
				t.Fatalf("%q: no such set", line)
			}
			var v6 bool
			if k.typ == setTypeNet {
				p, err := netip.ParsePrefix(f[2])
				if err != nil || p.Bits() == 0 {
					t.Fatalf("%q: hash:net takes a prefix other than /0", line)
				}
				v6 = p.Addr().Is6()
			} else {
				a, err := netip.ParseAddr(f[2])
				if err != nil {
					t.Fatalf("%q: hash:ip takes an address", line)
				}
				v6 = a.Is6()
			}
			if v6 != (k.family == "inet6") || f[0] == "add" && k.members[f[2]] || f[0] == "del" && !k.members[f[2]] {
				t.Fatalf("%q: wrong family, or adds a member twice or deletes a missing one", line)
			}
			if f[0] == "add" {
				k.members[f[2]] = true
				if len(k.members) > k.maxelem {
					t.Fatalf("%q: the set is full (maxelem %d)", line, k.maxelem)
				}
			} else {
				delete(k.members, f[2])
			}
		case f[0] == "flush" && len(f) == 2 && kernel[f[1]] != nil:
			kernel[f[1]].members = map[string]bool{}
		case f[0] == "rename" && len(f) == 3 && kernel[f[1]] != nil && kernel[f[2]] == nil:
			kernel[f[2]] = kernel[f[1]]
			delete(kernel, f[1])
		default:
			t.Fatalf("bad ipset restore line %q", line)
		}
	}
	for _, s := range next.Sets {
		k := kernel[s.Name]
		if k == nil || k.typ != s.Type || len(k.members) != len(s.Entries) {
			t.Fatalf("after the ipset restore set %s is missing or holds the wrong entries", s.Name)
		}
		for _, e := range s.Entries {
			if !k.members[e] {
				t.Fatalf("after the ipset restore set %s lacks %s", s.Name, e)
			}
		}
	}
}
